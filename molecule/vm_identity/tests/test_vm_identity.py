"""A VM that still held its builder's secrets holds its own after vm_identity (testinfra over ssh)."""

import json
import os
import re
import subprocess
from pathlib import Path

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PATHS = {"ssh_ed25519": "/etc/ssh/ssh_host_ed25519_key", "ssh_rsa": "/etc/ssh/ssh_host_rsa_key",
         "ssh_ecdsa": "/etc/ssh/ssh_host_ecdsa_key", "machine_id": "/etc/machine-id"}


def checksum(host, path):
    return host.check_output("sha256sum %s" % path).split()[0]


def test_every_secret_differs_from_the_builders(host):
    builder = json.loads((EPHEMERAL / "builder.json").read_text())
    assert sorted(builder) == sorted(PATHS)
    for name, path in PATHS.items():
        assert checksum(host, path) != builder[name], name


def test_host_keys_are_private_and_the_machine_id_is_well_formed(host):
    for name in ("ssh_ed25519", "ssh_rsa", "ssh_ecdsa"):
        key = host.file(PATHS[name])
        assert key.user == "root" and key.mode == 0o600, name
    assert re.fullmatch(r"[0-9a-f]{32}", host.file("/etc/machine-id").content_string.strip())


def test_sshd_serves_the_new_host_key(host):
    address = host.backend.get_variables()["ansible_host"]
    scanned = subprocess.run(["ssh-keyscan", "-t", "ed25519", address], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
    assert scanned[-1] == host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()[1]
    assert host.service("ssh").is_running
