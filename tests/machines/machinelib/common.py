"""Settings and helpers every other module of machines.py uses: Fail, log, run, file locks, file writing,
unmounting, safe_rmtree, root and name checks.

The locations of state on the host (CACHE, RUN_DIR, FALLBACK_DIR, CGROUP_ROOT) are read as `common.NAME` at
call time by the other modules, so that one override here (a test's monkeypatch) applies everywhere.
"""

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Bump whenever the build steps (image.py) change in a way that changes the image:
# it is part of the image hash, so the next `build` rebuilds.
BUILD_VERSION = "2"

SUITE = "bookworm"
HERE = Path(__file__).resolve().parent.parent  # tests/machines, the folder of machines.py
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
