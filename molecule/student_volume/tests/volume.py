"""What the student_volume checks share: the machine's volume file on the controller, machines.py, and runs of
converge.yml with other options (the refusals and the rebuild run the role again, limited to the machine).

Imported by the tests of this folder (pytest puts it on sys.path): `import volume`."""

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
MACHINES = ROOT / "tests" / "machines" / "machines.py"
MOUNT = "/srv/coursevm-student"
NOTEBOOKS = "/home/oustudent/notebooks"
WORKSPACE = "/var/lib/openrefine"
USER, GROUP = "oustudent", "users"


def hostname(host):
    """The machine's inventory name (what machines.py and --limit take)."""
    return host.ansible.get_variables()["inventory_hostname"]


def machines(*args):
    """machines.py on the controller (attach, detach): stops the test with its stderr when it fails."""
    result = subprocess.run(["/usr/bin/python3", str(MACHINES), *args], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def volume_file(hostname):
    """The file prepare.yml attached as the machine's /dev/vdb."""
    return EPHEMERAL / ("%s-volume.img" % hostname)


def converge(hostname, **options):
    """converge.yml again on the machine alone, with `options` as extra vars: (rc, output, changed count)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, "--limit", hostname, str(SCENARIO / "converge.yml"),
                             "-e", json.dumps(options)],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    output = result.stdout + result.stderr
    recap = re.search(r"^%s\s*:\s*ok=\d+\s+changed=(\d+)" % re.escape(hostname), output, re.M)
    return result.returncode, output, int(recap.group(1)) if recap else None


def probe(host, device):
    """What blkid finds on `device`: {"TYPE": ..., "LABEL": ..., "UUID": ...}, empty when blank."""
    result = host.run("blkid -p -o export %s", device)
    assert result.rc in (0, 2), result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def fstab_lines(host, path):
    """The /etc/fstab entries that mount something on `path`."""
    return [line for line in host.file("/etc/fstab").content_string.splitlines()
            if len(line.split()) > 1 and line.split()[1] == path]
