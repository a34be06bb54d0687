"""Fake servers backed by real machines: the link between the local cloud and tests/machines.

Nova's fake hypervisor boots nothing. A server booted from an image whose property `coursevm_machine` is set
(`base`: the machine image tests/machines builds; `derived-<id>`: a snapshot made by this cloud) gets a real
Debian 12 machine of its own, named `vm-<server uuid>`, started by the fake driver's spawn and stopped by its
destroy. Each floating IP associated with the server's port reaches that machine (a /32 `answer` route), set by
Neutron's floating IP callback, or by spawn for the addresses associated before the server existed. A snapshot
of such a server keeps the machine's disk as a derived machine image, and the snapshot image names it.

Servers of other images stay purely fake (a cohort of 50 in the scale tests starts no machine). Both services
find machines.py through COURSEVM_MACHINES, set by cloud.py; without it nothing here runs.
"""

import os
import subprocess
import sys
from pathlib import Path

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

MACHINES_ENV = "COURSEVM_MACHINES"
PROPERTY = "coursevm_machine"
RUN_DIR = Path("/run/coursevm/machines")
TIMEOUT = 180


class MachineError(Exception):
    pass


def enabled():
    path = os.environ.get(MACHINES_ENV)
    return bool(path) and os.path.isfile(path)


def machine_name(server_id):
    return "vm-" + server_id


def derived_image_name(image_id):
    return "derived-" + image_id


def has_machine(server_id):
    """Cheap: a state file exists (no subprocess for servers without a machine)."""
    return (RUN_DIR / machine_name(server_id) / "state.json").is_file()


def any_machine():
    return RUN_DIR.is_dir() and any(RUN_DIR.glob("vm-*"))


def machines(*args):
    """Run machines.py with the system Python (standard library only); its one-line error on failure."""
    cmd = ["/usr/bin/python3", os.environ[MACHINES_ENV], *args]
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    for key in list(env):
        if key.startswith("PYTHON") or key.startswith("VIRTUAL_ENV"):
            env.pop(key)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        raise MachineError((proc.stderr.strip().splitlines() or ["machines.py failed"])[-1])
    return proc.stdout


def answer(server_id, address):
    """The server's machine answers on ADDRESS (taken over from any other machine). False without one."""
    if not has_machine(server_id):
        return False
    machines("answer", "--move", machine_name(server_id), address + "/32")
    return True


def unanswer(address):
    if any_machine():
        machines("unanswer", address + "/32")


def log_failure(what, err):
    LOG.warning("coursevm machine link: %s failed: %s", what, err)
    print("coursevm machine link: %s failed: %s" % (what, err), file=sys.stderr)
