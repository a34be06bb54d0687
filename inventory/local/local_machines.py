#!/usr/bin/env python3
"""Ansible inventory script: the local Debian 12 test machines started by tests/machines/machines.py.

Each running machine whose name starts with `coursevm-local` becomes a host of the group `course_vms`,
reached over ssh as the image's default `vagrant` account with sudo (as a freshly imported course VM is).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MACHINES = os.path.join(HERE, "..", "..", "tests", "machines", "machines.py")


def running_machines():
    try:
        out = subprocess.run(["/usr/bin/python3", MACHINES, "list", "--json"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.stderr.write("local_machines: cannot list machines: %s\n" % exc)
        return []
    return json.loads(out or "[]")


def inventory():
    hostvars = {}
    for machine in running_machines():
        if not machine["instance"].startswith("coursevm-local"):
            continue
        hostvars[machine["instance"]] = {
            "ansible_host": machine["address"],
            "ansible_port": machine["port"],
            "ansible_user": machine["user"],
            "ansible_ssh_private_key_file": machine["identity_file"],
            "ansible_become": True,
        }
    return {"course_vms": {"hosts": sorted(hostvars)}, "_meta": {"hostvars": hostvars}}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--host":
        print(json.dumps({}))
    else:
        print(json.dumps(inventory(), indent=2))
