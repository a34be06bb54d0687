"""The collection's one SSH public key rule (plugins/module_utils/ssh_keys.py) and everything that applies it:
the roster filter, the cohort module's check, and the Jinja test the credentials and heat_stack roles use.

Before the rule was folded into one place, the credentials role checked keys with a regex and a base64 prefix
in Jinja; the cases marked below are those where it and the roster disagreed. The stricter correct answer won.
"""

import base64
import struct
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter.roster import roster
from ansible_collections.coursevm.openstack.plugins.module_utils.ssh_keys import (
    is_ssh_public_key, ssh_public_key_problem)
from ansible_collections.coursevm.openstack.plugins.modules.cohort import check_students
from ansible_collections.coursevm.openstack.plugins.test import ssh_keys as jinja_tests
from ansible_collections.coursevm.openstack.plugins.test.ssh_keys import ssh_public_key

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8GgCjPkKXmzGFwaRQvYxk9WwFj6eFXaxjL8iSDBwS9 student@laptop"


def _field(data):
    return struct.pack(">I", len(data)) + data


def _blob(*fields):
    return base64.b64encode(b"".join(_field(f) for f in fields)).decode()


def rsa_key(bits):
    """A well-formed ssh-rsa line whose modulus has exactly ``bits`` bits."""
    modulus = b"\x00" + b"\xc3" * (bits // 8)
    return "ssh-rsa %s rsa%d@test" % (_blob(b"ssh-rsa", b"\x01\x00\x01", modulus), bits)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Real keys of every type ssh-keygen makes here: {kind: (public line, private text)}."""
    folder = tmp_path_factory.mktemp("keys")
    keys = {}
    for kind, args in (("ed25519", []), ("rsa", ["-b", "2048"]), ("ecdsa", ["-b", "521"])):
        path = folder / kind
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", kind + "@test", "-t", kind, "-f", str(path)] + args,
                       check=True)
        keys[kind] = ((folder / (kind + ".pub")).read_text().strip(), path.read_text())
    return keys


# Keys the old credentials check (regex + Jinja base64 prefix) accepted and the roster refused: now refused by all.
TRUNCATED_ED25519 = "ssh-ed25519 %s x" % base64.b64encode(base64.b64decode(ED25519.split()[1])[:-4]).decode()
SHORT_ED25519 = "ssh-ed25519 %s x" % _blob(b"ssh-ed25519", b"\x01" * 31)
SLIPPED_THROUGH_CREDENTIALS = {
    "RSA of 1024 bits": rsa_key(1024),
    "ed25519 body cut short (68 base64 characters still)": TRUNCATED_ED25519,
    "ed25519 key of 31 bytes": SHORT_ED25519,
}
# Keys the roster and the cohort module accepted (the rest taken as a comment) and the credentials check
# refused: a second key or a private key's line hidden after a line break. Now refused by all.
SLIPPED_THROUGH_ROSTER = {
    "two keys in one entry": ED25519 + "\n" + ED25519.replace("student@laptop", "other"),
    "a carriage return inside": ED25519.replace(" student", "\rstudent"),
}
REFUSED = {
    "empty": "",
    "type only": "ssh-ed25519",
    "not base64": "ssh-ed25519 not*base64*at*all x",
    "unknown type": "ssh-dss " + _blob(b"ssh-dss", b"x" * 40),
    "type and body disagree": "ssh-rsa " + ED25519.split()[1],
    "ecdsa curve and type disagree": "ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"x"),
    "authorized_keys options in front": 'from="10.0.0.1" ' + ED25519,
    "private key header": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "not text": None,
    **SLIPPED_THROUGH_CREDENTIALS,
    **SLIPPED_THROUGH_ROSTER,
}
ACCEPTED = {
    "ed25519": ED25519,
    "without a comment": " ".join(ED25519.split()[:2]),
    "RSA of 2048 bits": rsa_key(2048),
    "a trailing newline (a YAML block scalar)": ED25519 + "\n",
    "a comment with spaces": ED25519 + " from the lab",
    # sshd reads fields split by any run of blanks; the old credentials regex wanted exactly one space.
    "a tab between the fields": ED25519.replace(" ", "\t", 1),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(case):
    assert ssh_public_key_problem(REFUSED[case])
    assert not ssh_public_key(REFUSED[case])


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted(case):
    assert ssh_public_key_problem(ACCEPTED[case]) is None
    assert ssh_public_key(ACCEPTED[case])


def test_real_keys_of_every_type_pass_and_their_private_halves_do_not(made):
    for public, private in made.values():
        assert is_ssh_public_key(public)
        assert "is a private key" in ssh_public_key_problem(private)


def test_rsa_needs_2048_bits():
    assert "RSA key of 2047 bits" in ssh_public_key_problem(rsa_key(2048).replace(
        rsa_key(2048).split()[1], _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x7f" + b"\xff" * 255)))
    assert "RSA key of 1024 bits; at least 2048" in ssh_public_key_problem(rsa_key(1024))


def test_no_problem_quotes_the_key():
    """A problem names what is wrong, never the text: it may be a secret pasted in the wrong place."""
    for case in ("hunter2-secret AAAA", "Hunter2 " + ED25519.split()[1]):
        problem = ssh_public_key_problem(case)
        assert "unknown key type" in problem and "unter2" not in problem
    assert "'ssh-dss'" in ssh_public_key_problem(REFUSED["unknown type"])  # a key type is no secret
    for key in REFUSED.values():
        if key and len(key.split()) > 1 and len(key.split()[1]) > 20:
            assert key.split()[1] not in ssh_public_key_problem(key)


def _roster_accepts(key):
    try:
        roster("s1,Ada,ada@example.edu,\"%s\"\n" % key.replace('"', '""'))
        return True
    except AnsibleFilterError:
        return False


@pytest.mark.parametrize("case", sorted(set(REFUSED) | set(ACCEPTED)))
def test_roster_cohort_and_the_jinja_test_agree(case):
    key = REFUSED.get(case, ACCEPTED.get(case))
    if not isinstance(key, str) or not key.strip():
        return  # an empty cell is "no key" to the roster and the cohort module, not a bad one
    expected = case in ACCEPTED
    assert ssh_public_key(key) is expected
    assert _roster_accepts(key) is expected
    assert (check_students([{"id": "s1", "ssh_public_key": key}], [], "present") == []) is expected
    assert (check_students([{"id": "s1"}], [key], "present") == []) is expected


def test_the_jinja_test_is_registered():
    assert jinja_tests.TestModule().tests() == {"ssh_public_key": ssh_public_key}
