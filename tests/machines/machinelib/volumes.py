"""Volumes of the local cloud inside a running target, as real block devices.

A Cinder volume of the local cloud is a file (tests/cloud/plugins/coursevm_cloud/cinder_files.py). `attach`
gives it a loop device on the host and makes the device node (e.g. /dev/vdb) in the target's own mount
namespace, so what the target writes to it goes into the file, and stays there after `detach` (or after the
target is stopped). The kernel has no device-mapper, NBD or LIO here (docs/cinder-plan.md), but loop devices
work, and the targets' device cgroup allows every device.

The target has no udev: the node exists under the name given, while /sys/block shows loopN.
"""

import os
import re
import stat
import subprocess
from pathlib import Path

from . import common
from .common import Fail, flock, require_root, run
from .state import load_state, is_running, save_state

DEVICE_RE = re.compile(r"/dev/(vd|sd|xvd)[b-z]")


def init_pid(st):
    """The target's PID 1 (the child of systemd-nspawn), whose mount namespace the device node goes into."""
    children = Path(f"/proc/{st['pid']}/task/{st['pid']}/children")
    try:
        pids = children.read_text().split()
    except OSError:
        pids = []
    if not pids:
        raise Fail(f"{st['name']} has no init process (is it still booting?)")
    return int(pids[0])


def running(name):
    st = load_state(name)
    if not st or not is_running(st):
        raise Fail(f"{name} is not running")
    return st


def attach(name, path, device):
    """Give the target `device`, backed by the file `path` (a volume of the local cloud)."""
    require_root()
    if not DEVICE_RE.fullmatch(device):
        raise Fail(f"device {device!r} must be /dev/vdX, /dev/sdX or /dev/xvdX with X in b-z")
    path = os.path.realpath(path)
    if not os.path.isfile(path):
        raise Fail(f"{path} is not a file")
    with flock(common.RUN_DIR / ".locks" / name):
        st = running(name)
        volumes = st.setdefault("volumes", {})
        if device in volumes:
            if volumes[device]["file"] == path:
                return  # already attached: nothing to do
            raise Fail(f"{name} already has {device} (from {volumes[device]['file']})")
        loop = run(["losetup", "--find", "--show", path], capture=True).stdout.strip()
        try:
            rdev = os.stat(loop).st_rdev
            run(["nsenter", "-t", str(init_pid(st)), "-m", "--", "sh", "-ec",
                 'rm -f "$1"; mknod "$1" b "$2" "$3"', "mknod", device,
                 str(os.major(rdev)), str(os.minor(rdev))], capture=True)
        except BaseException:
            run(["losetup", "-d", loop], check=False, capture=True)
            raise
        volumes[device] = {"file": path, "loop": loop}
        save_state(st)


def detach(name, device):
    """Take `device` away from the target (unmounted inside first, lazily) and free its loop device."""
    require_root()
    with flock(common.RUN_DIR / ".locks" / name):
        st = load_state(name) or {}
        entry = (st.get("volumes") or {}).get(device)
        if entry is None:
            return
        if is_running(st):
            subprocess.run(["nsenter", "-t", str(init_pid(st)), "-m", "--", "sh", "-c",
                            'umount -l "$1" 2>/dev/null; rm -f "$1"', "detach", device],
                           stdin=subprocess.DEVNULL, capture_output=True, check=False)
        release(entry)
        del st["volumes"][device]
        save_state(st)


def release(entry):
    """Free the loop device of an attachment, if it still backs the same file."""
    loop = entry.get("loop")
    if loop and os.path.exists(loop) and stat.S_ISBLK(os.stat(loop).st_mode):
        backing = Path(f"/sys/block/{os.path.basename(loop)}/loop/backing_file")
        try:
            same = os.path.realpath(backing.read_text().strip()) == entry["file"]
        except OSError:
            same = False
        if same:
            run(["losetup", "-d", loop], check=False, capture=True)


def release_all(st):
    """Every loop device a target's volumes hold (its stop)."""
    for entry in (st.get("volumes") or {}).values():
        release(entry)
