"""Bad values for the vm_identity role stop the play at its check, before any task that reads or changes a
secret. The role runs against the controller itself, in check mode as a second guard (see role_check)."""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

SHA = "0" * 64
MESSAGE = "vm_identity_builder_checksums must map secret names"

CASES = {
    "a checksum that is not sha256": {"ssh_ed25519": "abc"},
    "an upper-case checksum": {"machine_id": "A" * 64},
    "a checksum with a trailing newline": {"machine_id": SHA + "\n"},
    "an unknown secret name": {"ssh_dsa": SHA},
    "a path instead of a name": {"/etc/machine-id": SHA},
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("bad-input"), "coursevm.openstack.vm_identity")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_checksums_fail_before_any_change(playbook, case):
    result = role_check.run_check(playbook, {"vm_identity_builder_checksums": CASES[case]})
    role_check.assert_refused(result, MESSAGE, "Read the checksums of the VM's own secrets")
