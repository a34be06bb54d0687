"""Bad values for the credentials role stop the play at its checks, before any task that changes anything.

The role runs against the controller itself, in check mode as a second guard: if a check ever let a bad value
through, nothing would be changed here either, and the test would still fail on the missing message. The
secrets folder the role would create on the controller must not exist afterwards.
"""

import re

import pytest

import role_check  # tests/support, on sys.path via conftest

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8GgCjPkKXmzGFwaRQvYxk9WwFj6eFXaxjL8iSDBwS9 student@laptop"
RSA_BLOB = ("AAAAB3NzaC1yc2EAAAADAQABAAABAQC7" + "x" * 300)
# Well-formed in shape, refused by the collection's one key rule (plugins/module_utils/ssh_keys.py); the role's
# former regex-and-base64-prefix check let these through while the roster refused them.
RSA_1024 = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PD"
            "w8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PD"
            "w8PDw8PDww== x")
ED25519_CUT = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8GgCjPkKXmzGFwaRQvYxk9WwFj6eFXaxjL8iQ= student@laptop"

GOOD = {"credentials_student": "s001", "credentials_ssh_keys": [ED25519], "credentials_default_account": "nobody-here"}

KEY_MSG = "is not an OpenSSH public key line"
# The refusal names the option (and the id, which is no secret).
STUDENT_MSG = "credentials_student '"
CASES = {
    "key that is not base64": ({"credentials_ssh_keys": ["ssh-ed25519 not*base64*at*all student"]}, KEY_MSG),
    "key type only": ({"credentials_ssh_keys": ["ssh-ed25519"]}, KEY_MSG),
    "unknown key type": ({"credentials_ssh_keys": ["ssh-dss " + RSA_BLOB]}, KEY_MSG),
    "private key pasted": ({"credentials_ssh_keys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}, KEY_MSG),
    "blob of another type": ({"credentials_ssh_keys": ["ssh-ed25519 " + RSA_BLOB]}, KEY_MSG),
    "truncated blob": ({"credentials_ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1"]}, KEY_MSG),
    "RSA key of 1024 bits (the old check let it through)": ({"credentials_ssh_keys": [RSA_1024]}, KEY_MSG),
    "ed25519 body cut short (the old check let it through)": ({"credentials_ssh_keys": [ED25519_CUT]}, KEY_MSG),
    "two keys in one entry": ({"credentials_ssh_keys": [ED25519 + "\n" + ED25519]}, KEY_MSG),
    "one bad key among good ones": ({"credentials_ssh_keys": [ED25519, "ssh-rsa AAAA== x"]}, KEY_MSG),
    "short jupyter password": ({"credentials_jupyter_password": "short-pw"}, "shorter than credentials_password_min_length"),
    "short jupyter_password from elsewhere": ({"jupyter_password": "elevenchars"}, "shorter than credentials_password_min_length"),
    "short unix password": ({"credentials_unix_password": "abc"}, "shorter than credentials_password_min_length"),
    "generated length below minimum": ({"credentials_generated_length": 8}, "credentials_generated_length (8) is below"),
    "student id with a space": ({"credentials_student": "alice smith"}, STUDENT_MSG),
    "student id with a slash": ({"credentials_student": "../etc/passwd"}, STUDENT_MSG),
    "student id with upper case": ({"credentials_student": "Alice"}, STUDENT_MSG),
    "student id with a semicolon": ({"credentials_student": "a;reboot"}, STUDENT_MSG),
    "student id too long": ({"credentials_student": "s" * 32}, STUDENT_MSG),
    # `is match('...$')` let this one through: "$" also matches before a trailing newline.
    "student id with a trailing newline": ({"credentials_student": "s001\n"}, STUDENT_MSG),
    "student id with an underscore (the roster refuses it)": ({"credentials_student": "s_001"}, STUDENT_MSG),
    "root as the student's account": ({"credentials_user": "root"}, "credentials_user 'root'"),
    "default account is the student's": ({"credentials_default_account": "oustudent"}, "credentials_default_account 'oustudent' must be"),
    "unknown rotation": ({"credentials_rotate": ["ssh"]}, "credentials_rotate may list only"),
    "unknown default account action": ({"credentials_default_account_action": "delete"}, "credentials_default_account_action"),
    "missing vault password file": ({"credentials_vault_password_file": "/nonexistent/vault-pass"}, "an existing file"),
    "relative secrets folder": ({"credentials_secrets_dir": "secrets"}, "must be absolute paths on the controller"),
    "relative handout pages folder": ({"credentials_handout_html_dir": "handout"}, "must be absolute paths on the controller"),
    "student name on two lines": ({"credentials_student_name": "Ada\nByron"}, "credentials_student_name must be"),
    "student name that is not text": ({"credentials_student_name": ["Ada"]}, "credentials_student_name"),
    "url that is not http": ({"credentials_url": "ftp://host/"}, "an http(s) URL"),
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("bad-input"), "coursevm.openstack.credentials")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_fails_before_any_change(playbook, tmp_path, case):
    overrides, message = CASES[case]
    secrets_dir = tmp_path / "secrets"
    result = role_check.run_check(playbook, {"credentials_secrets_dir": str(secrets_dir), **GOOD, **overrides})
    # Nothing after the checks ran: the first task that would change anything makes the secrets folder.
    role_check.assert_refused(result, message, "Create the course's secrets folder")
    assert not secrets_dir.exists()


@pytest.mark.parametrize("student", ["s001", "20231234", "ab-12"])
def test_good_values_pass_the_checks(playbook, tmp_path, student):
    """The control: the same play with good values gets past every check (then stops, in check mode, at the
    first task that needs the machine to be a course VM). A university id of digits is a student id: what the
    roster accepts, the credentials role accepts."""
    result = role_check.run_check(playbook, {"credentials_secrets_dir": str(tmp_path / "secrets"), **GOOD,
                                             "credentials_student": student})
    output = result.stdout + result.stderr
    assert "Create the course's secrets folder" in output, output
    assert not re.search(r"FAILED! => .*(must be|shorter than|is not an OpenSSH)", output), output
