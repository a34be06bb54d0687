"""Run the day-two tools (ansible-inventory, ansible-playbook) against a course `./coursevm local` deployed,
as an operator does: with the inventory the command wrote (.build/local[-<course>]/inventory) and the local
cloud's clouds.yaml."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ansible_env():
    status = subprocess.run(["/usr/bin/python3", str(ROOT / "tests" / "cloud" / "cloud.py"), "status", "--json"],
                            capture_output=True, text=True, check=True)
    site = next((ROOT / ".venv" / "lib").glob("python3.*/site-packages"))
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH="%s:%s" % (ROOT / ".build" / "collections", site),
                OS_CLIENT_CONFIG_FILE=json.loads(status.stdout)["clouds_yaml"])


def run(inventory, playbook, *args, timeout=1200, env=None):
    """ansible-inventory (playbook None) or ansible-playbook playbooks/<playbook> with ``-i inventory``; env adds
    to the environment."""
    tool = "ansible-inventory" if playbook is None else "ansible-playbook"
    target = [] if playbook is None else [str(ROOT / "playbooks" / playbook)]
    return subprocess.run([str(ROOT / ".venv" / "bin" / tool), "-i", str(inventory), *target, *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(ansible_env(), **(env or {})))
