"""Debian 12 test machines with a real systemd, run under systemd-nspawn.

Used by the Molecule scenarios (create/destroy playbooks call `start`/`stop`)
and by the demo. Standard library only; Python 3.11+; must run as root.

    machines.py build [--force]      build the image (no-op when up to date)
    machines.py start NAME [--json]  boot target NAME, wait for sshd, print how to reach it
    machines.py stop NAME | --all    power off and remove every trace of the target(s)
    machines.py list [--json]        running targets
    machines.py info NAME [--json]   how to reach a running target
    machines.py ssh NAME [CMD...]    ssh into a target as the test user
    machines.py answer NAME CIDR [--move]  the target also answers on every address of CIDR (the local
                                     cloud's floating IPs); --move takes CIDR over from another target
    machines.py unanswer CIDR        no target answers on CIDR any more
    machines.py snapshot NAME IMAGE  keep a running target's changes as image IMAGE (derived-*), from which
                                     `start NAME --image IMAGE` boots later targets (the local cloud's snapshots)
    machines.py forget IMAGE | --unused [--keep A,B]  delete a derived image (refused while a target runs on it)
    machines.py key                  the path of the private key every target accepts (made by `build`)

See README.md next to this file for the layout and the reasons behind it.
"""

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Bump whenever the build steps below change in a way that changes the image:
# it is part of the image hash, so the next `build` rebuilds.
BUILD_VERSION = "2"

SUITE = "bookworm"
HERE = Path(__file__).resolve().parent
PACKAGES_FILE = HERE / "packages.txt"
CACHE = Path(os.environ.get("COURSEVM_MACHINES_CACHE", "/var/cache/coursevm/machines"))
RUN_DIR = Path("/run/coursevm/machines")
# Overlay upper/work dirs go here when /run cannot hold them (e.g. a tmpfs
# without the features overlayfs needs for an upper layer).
FALLBACK_DIR = Path("/var/tmp/coursevm/machines")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_GROUP = "coursevm"

USER = "vagrant"
PASSWORD = "vagrant"  # same as the VirtualBox course VM these targets replace
IMAGE_HOSTNAME = "coursevm"
SSH_PORT = 22
START_TIMEOUT = 60
STOP_TIMEOUT = 30
MAX_TARGETS = 256  # one 10.231.N.0/30 per target, N in 0..255

BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "python3", "python3-apt",
    "sudo", "openssh-server", "iproute2", "procps", "ca-certificates", "netbase", "locales",
]
# Units that only wait, fail or fight over a console in a container.
MASKED_UNITS = [
    "systemd-timesyncd.service",   # the host owns the clock; it would only fail
    "getty@tty1.service",          # no ttys in a container
    "console-getty.service",       # nspawn's console is passive, nobody logs in there
    "systemd-networkd-wait-online.service",  # addresses are set from outside, nothing to wait for
    # apt's periodic jobs would race the roles under test for the dpkg lock.
    "apt-daily.timer", "apt-daily-upgrade.timer",
]

NAME_RE = re.compile(r"[a-z0-9-]{1,40}")
# Images made by `snapshot` from a running target: its upper layer kept on top of the layers it ran on.
DERIVED_RE = re.compile(r"derived-[a-z0-9-]{1,64}")
HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "HOME": "/root",
}


# File descriptors every child of `run` inherits: the build lock, so that if
# the build is killed, its orphaned debootstrap/apt children keep holding the
# lock and the next build waits for them instead of deleting their tree.
_INHERITED_FDS = []


class Fail(Exception):
    """An error reported to the user as one line; no traceback."""


# --------------------------------------------------------------------------- helpers

def log(msg):
    print(f"[machines] {msg}", file=sys.stderr, flush=True)


def run(cmd, *, check=True, capture=False, logfile=None, env=None, cwd=None):
    """Run a command. Output goes to `logfile` when given, so a failing build
    can point at the full log instead of flooding the terminal."""
    kwargs = {"env": env, "cwd": cwd, "stdin": subprocess.DEVNULL, "pass_fds": tuple(_INHERITED_FDS)}
    if capture:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elif logfile is not None:
        kwargs.update(stdout=logfile, stderr=subprocess.STDOUT)
    try:
        proc = subprocess.run([str(c) for c in cmd], check=False, **kwargs)
    except FileNotFoundError:
        raise Fail(f"command not found: {cmd[0]}")
    if check and proc.returncode != 0:
        detail = ""
        if capture and proc.stderr.strip():
            detail = ": " + proc.stderr.strip().splitlines()[-1]
        elif logfile is not None:
            detail = f" (see {logfile.name})"
        raise Fail(f"`{' '.join(map(str, cmd))}` exited with {proc.returncode}{detail}")
    return proc


@contextlib.contextmanager
def flock(path, inherit=False, shared=False):
    """Lock on a file; concurrent Molecule scenarios run several
    `start`/`stop`/`build` at once and must not trip over each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(path, "a") as f:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for the lock {path}")
            fcntl.flock(f, mode)
        if inherit:
            _INHERITED_FDS.append(f.fileno())
        try:
            yield
        finally:
            if inherit:
                _INHERITED_FDS.remove(f.fileno())
            fcntl.flock(f, fcntl.LOCK_UN)


def write_file(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # readers never see a half-written file


def mountpoints():
    """Mount points from /proc/self/mountinfo (octal escapes decoded)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp))
    return points


def mounts_under(path):
    p = str(path)
    return sorted({m for m in mountpoints() if m == p or m.startswith(p + "/")}, key=len, reverse=True)


def unmount_all(path):
    """Unmount everything at or below `path`, deepest first. A plain umount
    first; lazy only as a last resort so that leftovers are at least detached."""
    for _attempt in range(3):
        points = mounts_under(path)
        if not points:
            return
        for mp in points:
            if run(["umount", mp], check=False, capture=True).returncode != 0:
                time.sleep(0.2)
                run(["umount", "-l", mp], check=False, capture=True)
    if mounts_under(path):
        raise Fail(f"cannot unmount {mounts_under(path)[0]}")


def safe_rmtree(path):
    """rm -rf that first makes sure nothing is mounted inside: a build killed
    mid-debootstrap leaves /proc mounted in the tree, and rmtree would then
    walk into the host's /proc."""
    if not os.path.lexists(path):
        return
    unmount_all(path)
    shutil.rmtree(path)


def require_root():
    if os.geteuid() != 0:
        raise Fail("must run as root (it mounts, creates network namespaces and cgroups)")


def check_name(name):
    if not NAME_RE.fullmatch(name or ""):
        raise Fail(f"invalid target name {name!r}: use 1-40 of [a-z0-9-]")


# --------------------------------------------------------------------------- image

def package_list_text():
    try:
        return PACKAGES_FILE.read_text()
    except OSError as e:
        raise Fail(f"cannot read {PACKAGES_FILE}: {e.strerror}")


def parse_packages(text):
    pkgs = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pkgs.append(line)
    return pkgs


def key_path():
    return CACHE / "id_ed25519"


def ensure_key():
    """The test key lives in the cache, not in the image dir, so it survives
    rebuilds and instance configs written by Molecule stay valid."""
    key = key_path()
    if not key.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "coursevm-test", "-f", key], capture=True)
        log(f"generated test key {key}")
    os.chmod(key, 0o600)
    return Path(str(key) + ".pub").read_text().strip()


def image_hash(pubkey, packages_text):
    """packages.txt + BUILD_VERSION decide the image. The public key is mixed
    in too: if someone deletes the key, the next build makes a new one and the
    image must be rebuilt, or nobody could log in."""
    h = hashlib.sha256()
    for part in (BUILD_VERSION, packages_text, pubkey):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def images_for(digest):
    """Complete images for these inputs, oldest first. Several can exist after
    `build --force` while targets still run on the older one: an image in use
    is never renamed or deleted, because it is a live overlay's lower layer."""
    return sorted(p for p in CACHE.glob(f"image-{digest}-*") if (p / "rootfs").is_dir())


def current_image():
    """The newest image for the current inputs, or a clear error. Call with
    the images lock held (see start)."""
    pub = Path(str(key_path()) + ".pub")
    if not pub.exists():
        raise Fail(f"no test key in {CACHE}; run `machines.py build` first")
    images = images_for(image_hash(pub.read_text().strip(), package_list_text()))
    if not images:
        raise Fail(f"no image for the current packages.txt in {CACHE}; run `machines.py build` first")
    return images[-1]


def images_lock(shared=False):
    """Held (shared) by `start` from choosing an image until its state file
    names it, and (exclusive) by `build` while it adds or deletes images, so
    a build never deletes an image a target is just starting on."""
    return flock(CACHE / "images.lock", shared=shared)


def host_mirror():
    """The Debian mirror this host already uses for bookworm (so builds work
    behind whatever mirror/proxy this machine is set up with)."""
    if os.environ.get("COURSEVM_DEBIAN_MIRROR"):
        return os.environ["COURSEVM_DEBIAN_MIRROR"], "$COURSEVM_DEBIAN_MIRROR"
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(d.iterdir())
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".list" or f.name == "sources.list":
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb" and line[2] == SUITE:
                    return line[1], str(f)
        elif f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields, key = {}, None
                for line in stanza.splitlines():
                    if line.startswith("#"):
                        continue
                    if line[:1].isspace() and key:
                        fields[key] += " " + line.strip()
                    elif ":" in line:
                        key, val = line.split(":", 1)
                        key = key.strip().lower()
                        fields[key] = val.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" in fields.get("types", "").split() and SUITE in fields.get("suites", "").split():
                    return fields.get("uris", "").split()[0], str(f)
    raise Fail(f"no '{SUITE}' source in /etc/apt; set COURSEVM_DEBIAN_MIRROR to a Debian mirror URL")


def images_in_use():
    used = {st.get("image") for st in all_states()}
    for d in derived_images():
        with contextlib.suppress(OSError, ValueError, KeyError):
            used.add(json.loads((d / "manifest.json").read_text())["base"])
    return used


def build(force):
    require_root()
    for tool in ("debootstrap", "apt-ftparchive", "ssh-keygen"):
        if not shutil.which(tool):
            raise Fail(f"{tool} not found; apt-get install debootstrap apt-utils openssh-client")
    t0 = time.monotonic()
    pubkey = ensure_key()
    # Read once: the file may be edited while a build runs, and the image
    # must contain exactly what its hash says.
    packages_text = package_list_text()
    pkgs = parse_packages(packages_text)
    digest = image_hash(pubkey, packages_text)
    with flock(CACHE / "build.lock", inherit=True):
        existing = images_for(digest)
        if existing and not force:
            with images_lock():
                remove_old_images(keep=existing[-1])
            print(f"image up to date: {existing[-1]} ({time.monotonic() - t0:.1f}s)")
            return
        # Anything named .build-* is a build that was killed: never trusted, only removed.
        for stale in CACHE.glob(".build-*"):
            log(f"removing unfinished build {stale}")
            safe_rmtree(stale)
        tmp = CACHE / f".build-{digest}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            with open(tmp / "build.log", "w") as logfile:
                build_rootfs(tmp / "rootfs", pubkey, pkgs, logfile, t0)
            write_file(tmp / "manifest.json", json.dumps({
                "hash": digest, "build_version": BUILD_VERSION, "suite": SUITE,
                "packages": pkgs,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2) + "\n")
            # The timestamp keeps names unique (--force) and sorts newest last.
            image = CACHE / f"image-{digest}-{time.strftime('%Y%m%dT%H%M%S')}"
            with images_lock():
                # The rename is the commit point: an image-* dir is complete by construction.
                os.rename(tmp, image)
                fd = os.open(CACHE, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
                remove_old_images(keep=image)
        except BaseException:
            # Leave the log for a post-mortem but make sure nothing stays mounted.
            unmount_all(tmp)
            raise
    print(f"built {image} in {time.monotonic() - t0:.0f}s")


def remove_old_images(keep):
    """Call with the images lock held."""
    in_use = images_in_use()
    for old in CACHE.glob("image-*"):
        if old != keep and str(old) not in in_use:
            log(f"removing old image {old}")
            safe_rmtree(old)


def build_rootfs(root, pubkey, pkgs, logfile, t0):
    def step(msg):
        log(f"[{time.monotonic() - t0:5.0f}s] {msg}")

    def chroot(*cmd, **kw):
        return run(["chroot", root, *cmd], env=CHROOT_ENV, logfile=logfile, **kw)

    mirror, where = host_mirror()
    step(f"debootstrap {SUITE} from {mirror} (mirror taken from {where}); log: {logfile.name}")
    # Keep downloaded .debs across rebuilds; debootstrap verifies them against the Release file.
    debcache = CACHE / "debootstrap-cache"
    debcache.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
         f"--cache-dir={debcache}", SUITE, root, mirror], logfile=logfile)

    with chroot_mounts(root):
        step(f"downloading {' '.join(pkgs)} with their dependencies")
        chroot("apt-get", "update")
        # --reinstall makes apt fetch a listed package even if the base system
        # already has it, so every line of packages.txt ends up in the repo.
        chroot("apt-get", "install", "-y", "--download-only", "--reinstall", *pkgs)

        step("creating the local apt repository /srv/localrepo")
        repo = root / "srv/localrepo"
        repo.mkdir(parents=True)
        os.chmod(repo, 0o755)  # apt reads file: repos as the _apt user
        debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
        for deb in debs:
            shutil.copy2(deb, repo)
        with open(repo / "Packages", "w") as f:
            run(["apt-ftparchive", "packages", "."], cwd=repo, logfile=f)
        release = run(["apt-ftparchive", "release", "."], cwd=repo, capture=True).stdout
        write_file(repo / "Release", release)
        size = sum(d.stat().st_size for d in debs) / 2**20
        step(f"  {len(debs)} packages, {size:.0f} MB")

        # From here on the image only knows the local repo: a role that needs a
        # package missing from packages.txt fails in tests instead of silently
        # reaching for a mirror the targets cannot reach.
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        for f in (root / "etc/apt/sources.list.d").glob("*"):
            f.unlink()
        write_file(root / "etc/apt/sources.list.d/localrepo.list",
                   "# Test image: packages from tests/machines/packages.txt only.\n"
                   "deb [trusted=yes] file:/srv/localrepo ./\n")
        for f in (root / "var/lib/apt/lists").glob("*"):
            if f.is_file():
                f.unlink()
        chroot("apt-get", "update")
        # Self-check: everything in packages.txt installs from the local repo alone.
        chroot("apt-get", "install", "--dry-run", "-y", *pkgs)
        chroot("apt-get", "clean")

        step("configuring the image (user, ssh, units, locale)")
        configure_image(root, pubkey, chroot)
    step("rootfs done")


@contextlib.contextmanager
def chroot_mounts(root):
    """/proc for the chroot steps (apt and systemctl look at it). Always unmounted
    again; a killed build's leftover mount is handled by safe_rmtree."""
    run(["mount", "-t", "proc", "proc", root / "proc"])
    try:
        yield
    finally:
        unmount_all(root / "proc")


def configure_image(root, pubkey, chroot):
    # Empty machine-id: every target boots with a fresh transient id, as a
    # cloned VM would after first boot; a fixed id would be shared by all.
    write_file(root / "etc/machine-id", "", 0o444)
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # An empty resolv.conf (not a symlink): targets have no DNS, and lookups
    # must fail at once instead of timing out against a copied host resolver.
    rc = root / "etc/resolv.conf"
    if rc.is_symlink() or rc.exists():
        rc.unlink()
    write_file(rc, "")
    # The hostname must resolve locally, or Ansible's fact gathering waits
    # ~10 s on DNS. `start` rewrites both files per target.
    write_file(root / "etc/hostname", IMAGE_HOSTNAME + "\n")
    write_file(root / "etc/hosts", hosts_file(IMAGE_HOSTNAME))

    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    chroot("systemctl", "enable", "ssh.service")

    # en_US.UTF-8 because Debian's ssh client forwards LANG (SendEnv LANG LC_*);
    # without it every remote Python/Perl warns about the locale.
    lg = root / "etc/locale.gen"
    lg.write_text(lg.read_text().replace("# en_US.UTF-8 UTF-8", "en_US.UTF-8 UTF-8"))
    chroot("locale-gen")
    write_file(root / "etc/default/locale", "LANG=C.UTF-8\n")

    chroot("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", USER)
    subprocess.run(["chroot", str(root), "chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True,
                   env=CHROOT_ENV, check=True, stdout=subprocess.DEVNULL)
    write_file(root / f"etc/sudoers.d/{USER}", f"{USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    home = root / "home" / USER
    uid, gid = home.stat().st_uid, home.stat().st_gid
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    write_file(ssh_dir / "authorized_keys", pubkey + "\n", 0o600)
    for p in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(p, uid, gid)

    # Host keys once at build time: every target shares them, which is fine
    # for throw-away test machines and saves key generation at each boot.
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        chroot("ssh-keygen", "-A")
    # PasswordAuthentication stays at Debian's default (yes) on purpose: the
    # roles under test are expected to turn it off.


def hosts_file(hostname):
    return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n")


# --------------------------------------------------------------------------- derived images (snapshots)

def check_derived_name(image):
    if not DERIVED_RE.fullmatch(image or ""):
        raise Fail(f"invalid derived image name {image!r}: use derived-[a-z0-9-]{{1,64}}")


def image_layers(spec):
    """The base image and the overlay's lower layers (top first) for SPEC: `base` (the current built image)
    or the name of a derived image. Call with the images lock held."""
    if spec in (None, "", "base"):
        image = current_image()
        return image, [image / "rootfs"]
    check_derived_name(spec)
    try:
        manifest = json.loads((CACHE / spec / "manifest.json").read_text())
    except (OSError, ValueError):
        raise Fail(f"no derived image {spec} in {CACHE}")
    layers = [Path(p) for p in manifest["layers"]]
    for layer in layers:
        if not layer.is_dir():
            raise Fail(f"derived image {spec} needs {layer}, which is gone; make the snapshot again")
    return Path(manifest["base"]), layers


def derived_images():
    return sorted(p for p in CACHE.glob("derived-*") if (p / "manifest.json").is_file())


def snapshot(name, image):
    """Keep what a running target changed (its overlay's upper layer) as derived image IMAGE, stacked on the
    layers the target runs on, so later targets boot with everything it had on disk."""
    require_root()
    check_derived_name(image)
    t0 = time.monotonic()
    with flock(RUN_DIR / ".locks" / name):
        st = running_state(name)
        dest = CACHE / image
        if dest.exists():
            raise Fail(f"derived image {image} already exists")
        tmp = CACHE / f".snap-{image}-{os.getpid()}"
        safe_rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            run(["sync"], capture=True)
            # -a keeps owners, modes, xattrs (overlayfs' opaque-directory marks) and the whiteouts (0/0
            # character devices) that hide the lower layers' deleted files.
            run(["cp", "-a", str(Path(st["overlay"]) / "upper"), str(tmp / "upper")], capture=True)
            lower = st.get("layers") or [str(Path(st["image"]) / "rootfs")]
            write_file(tmp / "manifest.json", json.dumps({
                "base": st["image"], "layers": [str(dest / "upper"), *lower], "from": name,
                "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2) + "\n")
            with images_lock():
                os.rename(tmp, dest)
        except BaseException:
            safe_rmtree(tmp)
            raise
    log(f"{name} kept as {image} in {time.monotonic() - t0:.1f}s")
    print(dest)


def forget(image):
    """Delete a derived image unless a target runs on it or another derived image stands on it."""
    require_root()
    check_derived_name(image)
    dest = CACHE / image
    with images_lock():
        if not dest.exists():
            return False
        upper = str(dest / "upper")
        users = [st["name"] for st in all_states() if upper in st.get("layers", [])]
        users += [d.name for d in derived_images()
                  if d != dest and upper in json.loads((d / "manifest.json").read_text())["layers"]]
        if users:
            raise Fail(f"{image} is in use by {', '.join(users)}")
        safe_rmtree(dest)
    log(f"forgot {image}")
    return True


def forget_unused(keep=()):
    """Delete every derived image no target runs on, but those in KEEP (newest first, so chains go top down)."""
    for d in reversed(derived_images()):
        if d.name not in keep:
            with contextlib.suppress(Fail):
                forget(d.name)


# --------------------------------------------------------------------------- targets

def state_dir(name):
    return RUN_DIR / name


def load_state(name):
    try:
        return json.loads((state_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def save_state(st):
    write_file(state_dir(st["name"]) / "state.json", json.dumps(st, indent=2) + "\n")


def all_states():
    if not RUN_DIR.is_dir():
        return []
    out = []
    for d in sorted(RUN_DIR.iterdir()):
        if d.is_dir() and NAME_RE.fullmatch(d.name):
            st = load_state(d.name)
            out.append(st if st else {"name": d.name})
    return out


def proc_start_time(pid, zombies=False):
    """Start time of a live process (or also of a zombie), or None. Used with
    the pid to recognise our nspawn even if the pid number was reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X") and not zombies:
        return None
    return fields[19]


def is_running(st):
    pid = st.get("pid")
    return bool(pid) and proc_start_time(pid) == st.get("pid_start")


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
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    hier = [CGROUP_ROOT / h for h in ("systemd", "unified") if (CGROUP_ROOT / h / "cgroup.procs").exists()]
    if not hier:
        raise Fail(f"no name=systemd or cgroup2 hierarchy under {CGROUP_ROOT}")
    return hier


def cgroup_pids(cg):
    pids = set()
    for dirpath, _dirs, files in os.walk(cg):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def remove_cgroup(cg):
    """Kill whatever is left in the cgroup tree, then remove it bottom-up
    (systemd in the container created init.scope, system.slice, ... below it)."""
    if not cg.is_dir():
        return
    deadline = time.monotonic() + 10
    while (pids := cgroup_pids(cg)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda w: len(w[0]), reverse=True):
        for _attempt in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)  # killed processes take a moment to leave the cgroup
    if cg.exists():
        raise Fail(f"cannot remove cgroup {cg}")


def netns_name(name):
    # /run/netns entries are plain file names (no 15-char limit like
    # interfaces), so cvm-NAME always fits; interfaces are named by index.
    return f"cvm-{name}"


def host_used_indexes():
    """Indexes already taken on the host, also by leftovers without state."""
    used = set()
    out = run(["ip", "-j", "addr", "show"], capture=True).stdout
    for link in json.loads(out or "[]"):
        m = re.fullmatch(r"cvmh(\d+)", link.get("ifname", ""))
        if m:
            used.add(int(m.group(1)))
        for a in link.get("addr_info", []):
            m = re.fullmatch(r"10\.231\.(\d+)\.\d+", a.get("local", ""))
            if m:
                used.add(int(m.group(1)))
    return used


def allocate_index():
    used = host_used_indexes() | {st["index"] for st in all_states() if "index" in st}
    for n in range(MAX_TARGETS):
        if n not in used:
            return n
    raise Fail(f"all {MAX_TARGETS} target slots in 10.231.0.0/16 are taken")


def setup_network(st):
    ns, veth, n = st["netns"], st["veth"], st["index"]
    run(["ip", "netns", "add", ns], capture=True)
    # The target side is created straight inside the namespace as eth0, as a VM would have.
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns], capture=True)
    run(["ip", "addr", "add", f"10.231.{n}.1/30", "dev", veth], capture=True)
    run(["ip", "link", "set", veth, "up"], capture=True)
    run(["ip", "-n", ns, "addr", "add", f"10.231.{n}.2/30", "dev", "eth0"], capture=True)
    run(["ip", "-n", ns, "link", "set", "eth0", "up"], capture=True)
    run(["ip", "-n", ns, "link", "set", "lo", "up"], capture=True)
    # Deliberately no default route: targets must not reach the internet.


def mount_overlay(st, layers):
    lower = ":".join(str(layer) for layer in layers)
    for base in (state_dir(st["name"]), FALLBACK_DIR / st["name"]):
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
    with flock(RUN_DIR / ".locks" / name):
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
            with images_lock(shared=True), flock(RUN_DIR / ".alloc.lock"):
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
                kept = RUN_DIR / f"{name}.failed-console.log"
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
    # Whatever survived (e.g. after SIGKILL of nspawn) is still in the target's cgroups.
    cgroups = st.get("cgroups") or [str(h / CGROUP_GROUP / name) for h in cgroup_hierarchies()]
    for cg in cgroups:
        remove_cgroup(Path(cg))
        # The shared parent goes when the last target goes; it fails harmlessly otherwise.
        with contextlib.suppress(OSError):
            Path(cg).parent.rmdir()
    for base in {st.get("overlay"), str(state_dir(name)), str(FALLBACK_DIR / name)} - {None}:
        unmount_all(base)
    ns = st.get("netns") or netns_name(name)
    if Path(f"/run/netns/{ns}").exists():
        run(["ip", "netns", "del", ns], capture=True)
    # Deleting the namespace destroys its veth end and with it the pair; this is for odd leftovers.
    if st.get("veth") and Path(f"/sys/class/net/{st['veth']}").exists():
        run(["ip", "link", "del", st["veth"]], check=False, capture=True)
    for base in {st.get("overlay"), str(FALLBACK_DIR / name)} - {None}:
        safe_rmtree(base)
    safe_rmtree(state_dir(name))


def stop(name):
    require_root()
    check_name(name)
    with flock(RUN_DIR / ".locks" / name):
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


def route_device(address):
    """The host's outgoing interface for an address (what `ip route get` says)."""
    out = run(["ip", "-j", "route", "get", str(address)], capture=True).stdout
    return (json.loads(out or "[{}]") or [{}])[0].get("dev")


def parse_answer_cidr(cidr):
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as e:
        raise Fail(f"answer: '{cidr}' is not an IPv4 network address with a prefix, e.g. 172.24.4.0/24 ({e})")
    if net.prefixlen < 16:
        raise Fail(f"answer: {cidr} is larger than a /16; refusing to route that much into one machine")
    for reserved in ("10.231.0.0/16", "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16"):
        if net.overlaps(ipaddress.IPv4Network(reserved)):
            raise Fail(f"answer: {cidr} overlaps {reserved}, which the host or the targets' links use")
    return net


def drop_answer(st, cidr):
    """Undo one `answer` of a target (its routes and its record). Call with the target's lock held."""
    run(["ip", "route", "del", cidr, "dev", st["veth"]], check=False, capture=True)
    run(["ip", "-n", st["netns"], "route", "del", "local", cidr, "dev", "lo", "table", "local"],
        check=False, capture=True)
    st["answers"] = [a for a in st.get("answers", []) if a != cidr]
    save_state(st)


def unanswer(cidr, keep=None):
    """No target (but KEEP) answers on CIDR any more. True when one did."""
    require_root()
    net = parse_answer_cidr(cidr)
    dropped = False
    for st in all_states():
        if st["name"] == keep or net.with_prefixlen not in st.get("answers", []):
            continue
        with flock(RUN_DIR / ".locks" / st["name"]):
            st = load_state(st["name"])
            if st and net.with_prefixlen in st.get("answers", []):
                drop_answer(st, net.with_prefixlen)
                log(f"{st['name']} no longer answers on {net.with_prefixlen}")
                dropped = True
    return dropped


def answer(name, cidr, move=False):
    """Make a running target answer on every address of CIDR, as if it held them all: an AnyIP `local` route
    inside its namespace, and a host route sending the range into its veth. The local cloud's fake hypervisor
    boots no VM, so this is how its floating IPs reach a real machine (one /32 per floating IP). MOVE takes
    the range over from another target that answers on it. Undone by `unanswer` or `stop` (the veth goes)."""
    require_root()
    net = parse_answer_cidr(cidr)
    cidr = net.with_prefixlen
    if move:
        unanswer(cidr, keep=name)
    with flock(RUN_DIR / ".locks" / name):
        st = running_state(name)
        probes = [net[0]] if net.num_addresses == 1 else [net[1], net[-2]]
        if cidr in st.get("answers", []) and route_device(probes[0]) == st["veth"]:
            return False
        # Refuse a range the host already reaches some other way than its default route (a local network,
        # another target's claim): the route below would take it over.
        routes = json.loads(run(["ip", "-j", "route", "show"], capture=True).stdout or "[]")
        for r in routes:
            dst = r.get("dst", "default")
            if dst == "default" or r.get("dev") == st["veth"]:
                continue
            other = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            if isinstance(other, ipaddress.IPv4Network) and other.overlaps(net):
                raise Fail(f"answer: the host already routes {dst} via {r.get('dev')}, which overlaps {cidr}")
        run(["ip", "-n", st["netns"], "route", "replace", "local", cidr, "dev", "lo"], capture=True)
        run(["ip", "route", "replace", cidr, "via", st["address"], "dev", st["veth"]], capture=True)
        for probe in probes:
            if route_device(probe) != st["veth"]:
                run(["ip", "route", "del", cidr, "dev", st["veth"]], check=False, capture=True)
                raise Fail(f"answer: {probe} would not go to {name} ({st['veth']}); route removed again")
        st["answers"] = sorted(set(st.get("answers", [])) | {cidr})
        save_state(st)
    log(f"{name} answers on {cidr}")
    return True


def running_state(name):
    check_name(name)
    st = load_state(name)
    if not st or not is_running(st):
        raise Fail(f"{name} is not running")
    return st


def ssh(name, cmd):
    st = running_state(name)
    argv = ["ssh", "-i", str(key_path()), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-p", str(SSH_PORT), f"{USER}@{st['address']}", *cmd]
    os.execvp(argv[0], argv)


# --------------------------------------------------------------------------- CLI

def main(argv=None):
    ap = argparse.ArgumentParser(prog="machines.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build", help="build the image unless it is up to date")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p = sub.add_parser("start", help="boot a target and wait for sshd")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--image", default="base", help="base (the built image, default) or a derived image")
    p.add_argument("--hostname", help="the target's host name (default: NAME)")
    p = sub.add_parser("stop", help="power a target off and remove it")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true")
    p = sub.add_parser("list", help="running targets")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("info", help="how to reach a running target")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("answer", help="the target also answers on every address of CIDR")
    p.add_argument("name")
    p.add_argument("cidr")
    p.add_argument("--move", action="store_true", help="take CIDR over from the target answering on it")
    p = sub.add_parser("unanswer", help="no target answers on CIDR any more")
    p.add_argument("cidr")
    p = sub.add_parser("snapshot", help="keep a running target's changes as a derived image")
    p.add_argument("name")
    p.add_argument("image", help="derived-[a-z0-9-]{1,64}")
    p = sub.add_parser("forget", help="delete a derived image")
    p.add_argument("image", nargs="?")
    p.add_argument("--unused", action="store_true", help="every derived image no target runs on")
    p.add_argument("--keep", default="", help="with --unused: comma-separated derived images to keep anyway")
    sub.add_parser("key", help="the path of the private key every target accepts")
    p = sub.add_parser("ssh", help="ssh into a target")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "build":
            build(args.force)
        elif args.cmd == "start":
            start(args.name, args.json, args.image, args.hostname)
        elif args.cmd == "stop":
            if args.all == bool(args.name):
                raise Fail("stop needs either NAME or --all")
            stop_all() if args.all else stop(args.name)
        elif args.cmd == "list":
            list_targets(args.json)
        elif args.cmd == "info":
            emit(running_state(args.name), args.json)
        elif args.cmd == "answer":
            answer(args.name, args.cidr, args.move)
        elif args.cmd == "unanswer":
            unanswer(args.cidr)
        elif args.cmd == "snapshot":
            snapshot(args.name, args.image)
        elif args.cmd == "forget":
            if args.unused == bool(args.image):
                raise Fail("forget needs either IMAGE or --unused")
            if args.unused:
                forget_unused(keep=set(filter(None, args.keep.split(","))))
            else:
                forget(args.image)
        elif args.cmd == "key":
            if not key_path().is_file():
                raise Fail(f"no test key in {CACHE}; run `machines.py build` first")
            print(key_path())
        elif args.cmd == "ssh":
            ssh(args.name, args.command)
    except Fail as e:
        print(f"machines.py: error: {e}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError) as e:
        print(f"machines.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("machines.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
