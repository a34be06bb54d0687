"""The long-running processes cloud.py starts: pid files, spawn, stop, process groups, memory use."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from . import common
from .common import STOP_TIMEOUT, log


def pidfile(name):
    return common.RUN / f"{name}.pid"


def _starttime(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def running_pid(name):
    """The pid of our process `name`, if it still runs (pid and start time both match)."""
    try:
        pid, start = pidfile(name).read_text().split()
    except (OSError, ValueError):
        return None
    return int(pid) if _starttime(int(pid)) == start else None


def spawn(name, cmd, env=None):
    """Start a long-running process in its own session; remember it by pid and start time."""
    common.RUN.mkdir(parents=True, exist_ok=True)
    common.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(common.LOG_DIR / f"{name}.log", "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=common.HOME)
    pidfile(name).write_text(f"{proc.pid} {_starttime(proc.pid)}\n")
    return proc


def stop_process(name, sig=signal.SIGTERM):
    pid = running_pid(name)
    if pid is None:
        pidfile(name).unlink(missing_ok=True)
        return False
    # The process leads its own session (start_new_session), so its group holds only what it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and group_alive(pid):
        reap(pid)
        time.sleep(0.1)
    if group_alive(pid):
        log(f"{name} did not stop within {STOP_TIMEOUT}s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while group_alive(pid):
            reap(pid)
            time.sleep(0.1)
    pidfile(name).unlink(missing_ok=True)
    return True


def reap(pid):
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def group_alive(pgid):
    return bool(group_pids(pgid))


def group_pids(pgid):
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stop_signal(name):
    # uwsgi without a master treats SIGTERM as "reload"; SIGINT ends it.
    return signal.SIGTERM if name == "mariadb" else signal.SIGINT
