"""A secret given where it does not belong is refused without being printed, even at -vvv (what a CI log keeps).

Each case runs a role against the controller in check mode, like the bad-input tests, and looks for the secret's
text in everything the run printed.
"""

import subprocess

import pytest

import role_check  # tests/support, on sys.path via conftest

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8GgCjPkKXmzGFwaRQvYxk9WwFj6eFXaxjL8iSDBwS9 student@laptop"


def private_key(folder, *keygen_args):
    """A fresh private key made by ssh-keygen (PEM text) and the lines of its base64 body."""
    path = folder / "id"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "student@laptop", "-f", str(path), *keygen_args],
                   check=True, capture_output=True)
    text = path.read_text()
    body = [line for line in text.splitlines() if line and not line.startswith("-----")]
    assert len(body) > 3, text
    return text, body


KEYS = {
    "OpenSSH private key": ("-t", "ed25519"),
    "RSA private key (PEM)": ("-t", "rsa", "-b", "2048", "-m", "PEM"),
}


@pytest.fixture(scope="module")
def credentials_play(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("secrets"), "coursevm.openstack.credentials")


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("position", [0, 1])
def test_a_pasted_private_key_is_refused_unprinted(credentials_play, tmp_path, kind, position):
    text, body = private_key(tmp_path, *KEYS[kind])
    keys = [text] if position == 0 else [ED25519, text]
    extra = {"credentials_student": "s001", "credentials_ssh_keys": keys, "credentials_default_account": "nobody-here",
             "credentials_secrets_dir": str(tmp_path / "secrets")}
    output = role_check.assert_refused_before(role_check.run_check(credentials_play, extra, "-vvv"),
                                              "Create the course's secrets folder")
    leaked = [line for line in body if line in output]
    assert not leaked, output
    # Not even part of a line (a label or message cut at some length).
    assert not [line for line in body[1:] if line[:24] in output], output
    # The refusal says which entry to fix.
    assert "credentials_ssh_keys[%d]" % position in output, output


def test_good_keys_are_accepted_at_vvv(credentials_play, tmp_path):
    """The control: the rewritten check still passes good keys (and the play goes on to the first change)."""
    extra = {"credentials_student": "s001", "credentials_ssh_keys": [ED25519, ED25519.replace("student@laptop", "x")],
             "credentials_default_account": "nobody-here", "credentials_secrets_dir": str(tmp_path / "secrets")}
    result = role_check.run_check(credentials_play, extra, "-vvv")
    assert "Create the course's secrets folder" in result.stdout, result.stdout + result.stderr


@pytest.fixture(scope="module")
def egress_play(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("secrets"), "coursevm.openstack.egress_proxy")


# Proxy URLs that are refused, each with a password (or a token as the user) that must not be printed.
PROXY_URLS = {
    "password, bad port": ("http://user:s3cret-pw@proxy:99999", "s3cret-pw"),
    "password with a colon": ("http://user:s3cret:pw@proxy:99999", "s3cret"),
    "password with a slash": ("http://user:s3cret/pw@proxy:3128", "s3cret"),
    "password with a space": ("http://user:s3cret pw@proxy:3128", "s3cret"),
    "token as the user": ("http://t0ken-abcdef@proxy:99999", "t0ken-abcdef"),
    "no scheme": ("user:s3cret-pw@proxy:3128", "s3cret-pw"),
}


@pytest.mark.parametrize("case", sorted(PROXY_URLS))
def test_a_proxy_password_is_not_printed(egress_play, case):
    url, secret = PROXY_URLS[case]
    result = role_check.run_check(egress_play, {"egress_proxy_url": url}, "-vvv")
    output = role_check.assert_refused_before(result, "Point apt at the proxy")
    assert secret not in output, output
    assert "egress_proxy_url" in output


# A password that is too short: the refusal names the option and the minimum, and the password is never printed.
# (role, options, the option the refusal must name, the first task after the checks)
SHORT_PASSWORDS = {
    "jupyter_password": ("jupyter", {"jupyter_password": "Sh0rt-pw-x", "jupyter_password_min_length": 13},
                         "jupyter_password", "Install the packages the venv needs"),
    "credentials_jupyter_password": ("credentials", {"credentials_jupyter_password": "Sh0rt-pw-x",
                                                     "credentials_password_min_length": 13},
                                     "credentials_jupyter_password", "Create the course's secrets folder"),
    "credentials_unix_password": ("credentials", {"credentials_unix_password": "Sh0rt-pw-x",
                                                  "credentials_password_min_length": 13},
                                  "credentials_unix_password", "Create the course's secrets folder"),
}


@pytest.mark.parametrize("case", sorted(SHORT_PASSWORDS))
def test_a_short_password_is_refused_naming_the_option_and_the_minimum(tmp_path, case):
    role, options, option, first_change = SHORT_PASSWORDS[case]
    play = role_check.write_playbook(tmp_path, "coursevm.openstack." + role)
    extra = {"credentials_student": "s001", "credentials_secrets_dir": str(tmp_path / "secrets"), **options}
    _task, message = role_check.refusal(play, extra, first_change)
    assert option in message and "13" in message, message
    output = role_check.assert_refused_before(role_check.run_check(play, extra, "-vvv"), first_change)
    assert "Sh0rt-pw-x" not in output
    assert "Sh0rt-pw-x" not in message
