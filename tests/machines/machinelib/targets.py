"""Targets: start (overlay mount, cgroups, systemd-nspawn, wait for sshd), stop and teardown, list, info, ssh."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import common, volumes
from .common import (CGROUP_GROUP, HOSTNAME_RE, NAME_RE, PASSWORD, SSH_PORT, START_TIMEOUT, STOP_TIMEOUT, USER, Fail,
                     check_name, flock, log, require_root, run, safe_rmtree, unmount_all, write_file)
from .image import hosts_file, images_lock, key_path
from .layers import image_layers
from .network import allocate_index, netns_name, setup_network
from .state import all_states, is_running, load_state, proc_start_time, running_state, save_state, state_dir


def info_of(st):
    return {
        "instance": st["name"],
        "address": st["address"],
        "port": SSH_PORT,
        "user": USER,
        "identity_file": str(key_path()),
        "password": PASSWORD,
        "answers": st.get("answers", []),
    }


def emit(st, as_json, verb="running"):
    info = info_of(st)
    if as_json:
        print(json.dumps(info))
    else:
        print(f"{st['name']} {verb}: ssh -i {info['identity_file']} {USER}@{info['address']} "
              f"(password {PASSWORD})")


def cgroup_hierarchies():
    """Where a target's cgroups are created. nspawn splits the cgroup it starts
    in into `supervisor/` (itself) and `payload/` (the container's systemd,
    which builds init.scope, system.slice, ... below). Started from the host's
    root cgroup, as happens without systemd as PID 1, every target would share
    the host-wide /payload. So each nspawn starts in its own directory, in the
    name=systemd and the unified hierarchy (hybrid hosts, like the test VMs)
    or in the single cgroup2 tree."""
    root = common.CGROUP_ROOT
    if (root / "cgroup.controllers").exists():
        return [root]
    hier = [root / h for h in ("systemd", "unified") if (root / h / "cgroup.procs").exists()]
    if not hier:
        raise Fail(f"no name=systemd or cgroup2 hierarchy under {root}")
    return hier


def cgroup_pids(cg):
    pids = set()
    for dirpath, _dirs, files in os.walk(cg):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def remove_cgroup(cg, timeout=60):
    """Kill whatever is left in the cgroup tree, then remove it bottom-up
    (systemd in the container created init.scope, system.slice, ... below it).
    Killed processes take a moment to leave their cgroup, much longer on a busy
    machine (a whole Jupyter and JVM tearing down): kill and retry until the
    tree is gone or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while cg.is_dir():
        for pid in cgroup_pids(cg):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):  # busy still, or already gone
                os.rmdir(dirpath)
        if not cg.is_dir():
            return
        if time.monotonic() > deadline:
            raise Fail(f"cannot remove cgroup {cg}: processes {sorted(cgroup_pids(cg))} still in it after {timeout}s")
        time.sleep(0.2)


def mount_overlay(st, layers):
    lower = ":".join(str(layer) for layer in layers)
    for base in (state_dir(st["name"]), common.FALLBACK_DIR / st["name"]):
        upper, work, merged = base / "upper", base / "work", base / "merged"
        for d in (upper, work, merged):
            d.mkdir(parents=True, exist_ok=True)
        st["overlay"] = str(base)
        st["merged"] = str(merged)
        save_state(st)
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        if run(["mount", "-t", "overlay", "overlay", "-o", opts, merged],
               check=False, capture=True).returncode == 0:
            return merged
        log(f"overlay under {base} failed, trying the next location")
    raise Fail("cannot mount overlayfs under /run or /var/tmp")


def personalise(merged, hostname):
    # Written through the overlay, so only the upper layer changes.
    write_file(merged / "etc/hostname", hostname + "\n")
    write_file(merged / "etc/hosts", hosts_file(hostname))


def launch(st):
    sd = state_dir(st["name"])
    cgroups = [h / CGROUP_GROUP / st["name"] for h in cgroup_hierarchies()]
    for cg in cgroups:
        for attempt in range(5):
            try:
                cg.mkdir(parents=True, exist_ok=True)
                break
            except FileNotFoundError:
                # A concurrent `stop` removed the shared parent just as it was
                # created (see teardown); create it again.
                time.sleep(0.05)
    st["cgroups"] = [str(c) for c in cgroups]
    save_state(st)

    def enter_cgroups():
        # Runs in the child between fork and exec: nspawn must start inside
        # its own cgroups (see cgroup_hierarchies) and, with --keep-unit and no
        # systemd on the host, nobody else would move it there.
        for cg in cgroups:
            with open(cg / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    cmd = ["systemd-nspawn", "-D", st["merged"], "-M", st["name"], "-b",
           "--register=no", "--keep-unit", f"--network-namespace-path=/run/netns/{st['netns']}",
           "--resolv-conf=off", "--console=passive"]
    with open(sd / "console.log", "ab") as out:
        # New session, no controlling terminal: the target outlives this command.
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=enter_cgroups, close_fds=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise Fail(f"cannot launch systemd-nspawn in {cgroups[0]}: {e}")
    st["pid"] = proc.pid
    st["pid_start"] = proc_start_time(proc.pid)
    save_state(st)
    # Popen would warn on garbage collection about a still-running child; it is detached on purpose.
    proc.returncode = 0


def ssh_banner(address, timeout=1.0):
    try:
        with socket.create_connection((address, SSH_PORT), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_ssh(st, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ssh_banner(st["address"]):
            return True
        if not is_running(st):
            return False
        time.sleep(0.2)
    return False


def start(name, as_json, image_spec="base", hostname=None):
    require_root()
    check_name(name)
    hostname = hostname or name
    if not HOSTNAME_RE.fullmatch(hostname):
        raise Fail(f"invalid host name {hostname!r}: use [a-z0-9-], at most 63, not starting or ending with -")
    if not shutil.which("systemd-nspawn"):
        raise Fail("systemd-nspawn not found; apt-get install systemd-container")
    t0 = time.monotonic()
    with images_lock(shared=True):
        image_layers(image_spec)  # fail early and clearly, before touching anything
    with flock(common.RUN_DIR / ".locks" / name):
        st = load_state(name)
        if st and is_running(st):
            if not wait_for_ssh(st, START_TIMEOUT):
                raise Fail(f"{name} is running but sshd does not answer; see {state_dir(name)}/console.log")
            emit(st, as_json, "already running")
            return
        if st or state_dir(name).exists() or Path(f"/run/netns/{netns_name(name)}").exists():
            log(f"cleaning up stale remains of {name}")
            teardown(name, st or {})
        try:
            with images_lock(shared=True), flock(common.RUN_DIR / ".alloc.lock"):
                image, layers = image_layers(image_spec)
                n = allocate_index()
                st = {"name": name, "index": n, "address": f"10.231.{n}.2",
                      "host_address": f"10.231.{n}.1", "netns": netns_name(name),
                      "veth": f"cvmh{n}", "image": str(image), "layers": [str(p) for p in layers],
                      "image_spec": image_spec or "base", "pid": None, "pid_start": None}
                save_state(st)  # records the index and the layers before the lock is released
                setup_network(st)
            merged = mount_overlay(st, layers)
            personalise(merged, hostname)
            launch(st)
            if not wait_for_ssh(st, START_TIMEOUT):
                kept = common.RUN_DIR / f"{name}.failed-console.log"
                with contextlib.suppress(OSError):
                    shutil.copy(state_dir(name) / "console.log", kept)
                why = "exited" if not is_running(st) else f"no ssh banner within {START_TIMEOUT}s"
                raise Fail(f"{name} did not come up ({why}); console log kept in {kept}")
        except BaseException:
            with contextlib.suppress(Fail):
                teardown(name, load_state(name) or st or {})
            raise
    if not as_json:
        log(f"{name} up in {time.monotonic() - t0:.1f}s")
    emit(st, as_json, "running")


def teardown(name, st):
    """Remove every trace of a target. Idempotent and tolerant of partial state
    (a start that died half-way), because it is also how stale remains go."""
    pid = st.get("pid")
    if pid and is_running(st):
        # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a clean poweroff.
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while is_running(st) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_running(st):
            log(f"{name} did not power off within {STOP_TIMEOUT}s, killing it")
            os.kill(pid, signal.SIGKILL)
    # The detached nspawn is an orphan whose exit only PID 1 can reap; some
    # PID 1s do that lazily (about 1 s on the test VMs). Wait briefly so that
    # `stop` returns with no <defunct> nspawn in `ps`, but never hang on it.
    deadline = time.monotonic() + 3
    while pid and proc_start_time(pid, zombies=True) == st.get("pid_start") and time.monotonic() < deadline:
        time.sleep(0.1)
    # The loop devices of its volumes (their data is in the volumes' files).
    volumes.release_all(st)
    # Whatever survived (e.g. after SIGKILL of nspawn) is still in the target's cgroups.
    cgroups = st.get("cgroups") or [str(h / CGROUP_GROUP / name) for h in cgroup_hierarchies()]
    for cg in cgroups:
        remove_cgroup(Path(cg))
        # The shared parent goes when the last target goes; it fails harmlessly otherwise.
        with contextlib.suppress(OSError):
            Path(cg).parent.rmdir()
    for base in {st.get("overlay"), str(state_dir(name)), str(common.FALLBACK_DIR / name)} - {None}:
        unmount_all(base)
    ns = st.get("netns") or netns_name(name)
    if Path(f"/run/netns/{ns}").exists():
        run(["ip", "netns", "del", ns], capture=True)
    # Deleting the namespace destroys its veth end and with it the pair; this is for odd leftovers.
    if st.get("veth") and Path(f"/sys/class/net/{st['veth']}").exists():
        run(["ip", "link", "del", st["veth"]], check=False, capture=True)
    for base in {st.get("overlay"), str(common.FALLBACK_DIR / name)} - {None}:
        safe_rmtree(base)
    safe_rmtree(state_dir(name))


def stop(name):
    require_root()
    check_name(name)
    with flock(common.RUN_DIR / ".locks" / name):
        st = load_state(name)
        was_running = bool(st and is_running(st))
        t0 = time.monotonic()
        teardown(name, st or {})
    if was_running:
        log(f"{name} stopped in {time.monotonic() - t0:.1f}s")
    elif st:
        log(f"{name} had died; removed what was left of it")
    else:
        log(f"{name} was not running")


def stop_all():
    require_root()
    for st in all_states():
        stop(st["name"])
    # Sweep remains that have no state dir any more (e.g. state removed by hand).
    for ns in Path("/run/netns").glob("cvm-*") if Path("/run/netns").is_dir() else []:
        name = ns.name[4:]
        if NAME_RE.fullmatch(name):
            stop(name)
    for h in cgroup_hierarchies():
        group = h / CGROUP_GROUP
        if group.is_dir():
            for cg in group.iterdir():
                if cg.is_dir():
                    remove_cgroup(cg)
            with contextlib.suppress(OSError):
                group.rmdir()


def memory_mb(st):
    """Proportional set size of everything in the target: shared pages split
    fairly between targets, so the numbers add up."""
    total = 0
    for cg in st.get("cgroups", [])[:1]:
        for pid in cgroup_pids(Path(cg)):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
    return total / 1024


def list_targets(as_json):
    states = all_states()
    if as_json:
        print(json.dumps([dict(info_of(st), running=is_running(st)) for st in states if "address" in st]))
        return
    for st in states:
        if "address" not in st:
            print(f"{st['name']:20} (broken state; run `machines.py stop {st['name']}`)")
        elif is_running(st):
            print(f"{st['name']:20} {st['address']:14} pid {st['pid']:<8} {memory_mb(st):6.0f} MB")
        else:
            print(f"{st['name']:20} {st['address']:14} dead (run `machines.py stop {st['name']}`)")


def ssh(name, cmd):
    st = running_state(name)
    argv = ["ssh", "-i", str(key_path()), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-p", str(SSH_PORT), f"{USER}@{st['address']}", *cmd]
    os.execvp(argv[0], argv)
