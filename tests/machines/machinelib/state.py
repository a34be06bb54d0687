"""A target's state (RUN_DIR/NAME/state.json): reading and writing it, the list of targets, whether one runs."""

import json

from . import common
from .common import NAME_RE, Fail, check_name, write_file


def state_dir(name):
    return common.RUN_DIR / name


def load_state(name):
    try:
        return json.loads((state_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def save_state(st):
    write_file(state_dir(st["name"]) / "state.json", json.dumps(st, indent=2) + "\n")


def all_states():
    if not common.RUN_DIR.is_dir():
        return []
    out = []
    for d in sorted(common.RUN_DIR.iterdir()):
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


def running_state(name):
    check_name(name)
    st = load_state(name)
    if not st or not is_running(st):
        raise Fail(f"{name} is not running")
    return st
