"""What a student, an operator and an attacker meet on the converged machine (testinfra over ssh).

The tests run in file order: the reset and the -vv re-run change the student's secrets, so they come last and
read the secrets back from the controller's file each time.
"""

import base64
import csv
import html
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from passlib.hash import sha512_crypt

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
import target  # noqa: E402  (tests/support is not a package)

STUDENT = "cvm-cred-1"
USER = "oustudent"
BASE = "http://127.0.0.1:8888/"
# Runs on the VM as `python3 -c`: the probe itself (standard library only), which prints the same JSON as
# tests/support/jupyter_login.py (that wrapper loads it by path, which the VM does not have).
LOGIN_SCRIPT = (ROOT / "plugins" / "module_utils" / "jupyter_probe.py").read_text()
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SECRETS_DIR = EPHEMERAL / "secrets"
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10"]
# A second sshd, started by a test, that allows passwords: it shows which passwords the accounts accept.
PASSWORD_PORT = "2222"


def secrets():
    return yaml.safe_load((SECRETS_DIR / (STUDENT + ".yml")).read_text())


@pytest.fixture(scope="module")
def address():
    config = yaml.safe_load((EPHEMERAL / "instance_config.yml").read_text())
    return next(item["address"] for item in config if item["instance"] == STUDENT)


def ssh_with_password(address, user, password, port="22"):
    """ssh as a person typing a password (OpenSSH's askpass, no sshpass); returns (rc, stderr)."""
    askpass = EPHEMERAL / "askpass.sh"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$CVM_TEST_PASSWORD"\n')
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0",
               CVM_TEST_PASSWORD=password)
    result = subprocess.run(
        ["ssh", *SSH_OPTS, "-p", port, "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
         "-o", "PreferredAuthentications=password,keyboard-interactive", "%s@%s" % (user, address), "id -un"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60, check=False)
    return result.returncode, result.stdout.strip(), result.stderr


def login(host, password):
    return json.loads(host.check_output("python3 -c %s %s %s", LOGIN_SCRIPT, BASE, password))


def run_playbook(playbook, extra_vars, verbosity=None):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    argv = ["ansible-playbook", "-i", inventory, str(playbook), "-e", json.dumps(extra_vars)]
    if verbosity:
        argv.append(verbosity)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    return result.returncode, result.stdout + result.stderr


def test_secrets_are_recorded_on_the_controller_owner_only():
    assert stat.S_IMODE(SECRETS_DIR.stat().st_mode) == 0o700
    record = SECRETS_DIR / (STUDENT + ".yml")
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    data = secrets()
    assert data["student"] == STUDENT and data["ssh_user"] == USER
    assert len(data["jupyter_password"]) == 20 and len(data["unix_password"]) == 20
    assert data["jupyter_password"] != data["unix_password"]


def handout_text(name="handout.csv"):
    """A handout file's text (UTF-8, the CSV with a byte-order mark; no vault in this scenario)."""
    return (SECRETS_DIR / name).read_bytes().decode("utf-8-sig")


def test_handout_lists_the_student_with_url_and_passwords():
    handout = SECRETS_DIR / "handout.csv"
    assert stat.S_IMODE(handout.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(handout_text(), newline="")))
    data = secrets()
    assert rows[0] == ["student", "name", "url", "ssh_user", "jupyter_password", "unix_password",
                       "student_changed_at"]
    assert rows[1:] == [[STUDENT, "", data["url"], USER, data["jupyter_password"], data["unix_password"], ""]]


def test_handout_page_of_the_student_is_owner_only_with_url_and_password():
    page = SECRETS_DIR / "handout" / (STUDENT + ".html")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert stat.S_IMODE(page.parent.stat().st_mode) == 0o700
    data = secrets()
    text = handout_text("handout/%s.html" % STUDENT)
    assert 'id="jupyter-password">%s<' % html.escape(data["jupyter_password"]) in text
    assert 'href="%s"' % html.escape(data["url"]) in text
    assert data["unix_password"] not in text


def test_no_secret_in_plain_text_on_the_vm(host):
    data = secrets()
    for value in (data["jupyter_password"], data["unix_password"]):
        # The secret goes over as base64: sudo logs the command line into the journal, which is searched too.
        encoded = base64.b64encode(value.encode()).decode()
        found = host.run('grep -rlF -- "$(echo %s | base64 -d)" /etc /home /root /var/lib /var/log /var/tmp /tmp /run',
                         encoded)
        assert found.rc == 1, found.stdout  # grep: 1 = no file holds it


KEY_ONLY = ("passwordauthentication no", "permitrootlogin no", "kbdinteractiveauthentication no",
            "permitemptypasswords no")


def test_sshd_effective_settings(host):
    effective = host.check_output("sshd -T")
    for line in KEY_ONLY:
        assert line in effective.splitlines(), effective
    # One key-only drop-in, under the name cloud-init gives it at first boot; the former name is gone.
    dropin = host.file("/etc/ssh/sshd_config.d/00-coursevm.conf")
    assert dropin.user == "root" and dropin.mode == 0o644
    assert "Ansible managed" in dropin.content_string
    assert not host.file("/etc/ssh/sshd_config.d/00-coursevm-hardening.conf").exists


def test_a_later_drop_in_cannot_let_passwords_back_in(host):
    # The drop-in (the same settings cloud-init writes) before an image's drop-in that allows everything: sshd
    # keeps the first value. PermitEmptyPasswords is the case cloud-init's file used to leave to the image.
    folder = "/tmp/cvm-sshd-order"
    host.run_test("rm -rf %s && mkdir -p %s/d && cp /etc/ssh/sshd_config.d/00-coursevm.conf %s/d/", folder, folder,
                  folder)
    host.run_test("printf '%%s\\n' 'PasswordAuthentication yes' 'KbdInteractiveAuthentication yes' "
                  "'PermitRootLogin yes' 'PermitEmptyPasswords yes' > %s/d/50-image.conf", folder)
    host.run_test("printf '%%s\\n' 'Include %s/d/*.conf' 'HostKey /etc/ssh/ssh_host_ed25519_key' > %s/sshd_config",
                  folder, folder)
    try:
        effective = host.check_output("sshd -T -f %s/sshd_config", folder).splitlines()
    finally:
        host.run("rm -rf %s", folder)
    for line in KEY_ONLY:
        assert line in effective, effective


def test_only_the_students_key_is_authorized(host):
    keys = host.file("/home/%s/.ssh/authorized_keys" % USER)
    assert keys.user == USER and keys.mode == 0o600
    expected = (EPHEMERAL / "student_ed25519.pub").read_text().split()[:2]
    lines = [line.split()[:2] for line in keys.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == [expected]


def test_ssh_with_the_students_key_works(address):
    result = subprocess.run(
        ["ssh", *SSH_OPTS, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(EPHEMERAL / "student_ed25519"),
         "%s@%s" % (USER, address), "id -un"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == USER


def test_password_login_is_refused_even_with_the_right_password(address):
    rc, out, err = ssh_with_password(address, USER, secrets()["unix_password"])
    assert rc != 0 and out == ""
    assert "Permission denied (publickey)" in err, err


@pytest.fixture()
def password_sshd(host):
    """A throw-away sshd allowing passwords (command-line -o wins over every config file)."""
    host.run_test("systemd-run --unit=cvm-password-sshd /usr/sbin/sshd -D -p %s -o PasswordAuthentication=yes",
                  PASSWORD_PORT)
    assert target.wait_until(lambda: host.socket("tcp://0.0.0.0:%s" % PASSWORD_PORT).is_listening, 20)
    yield
    host.run("systemctl stop cvm-password-sshd")


def test_default_password_no_longer_works_and_students_does(host, address, password_sshd):
    # The control: the throw-away sshd does take the student's own Unix password...
    rc, out, err = ssh_with_password(address, USER, secrets()["unix_password"], PASSWORD_PORT)
    assert rc == 0 and out == USER, err
    # ...and refuses the image's default vagrant/vagrant, whose password is locked.
    rc, out, err = ssh_with_password(address, "vagrant", "vagrant", PASSWORD_PORT)
    assert rc != 0 and out == "", err
    assert "Permission denied" in err
    assert host.check_output("passwd -S vagrant").split()[1] == "L"


def test_unix_hash_is_sha512_crypt(host):
    field = host.check_output("getent shadow %s", USER).split(":")[1]
    assert field.startswith("$6$rounds=656000$")


def test_jupyter_accepts_the_recorded_password(host):
    assert login(host, secrets()["jupyter_password"])["login_ok"]
    assert not login(host, "not-the-password-at-all")["login_ok"]


def test_reset_gives_a_new_jupyter_password_and_refuses_the_old_one(host):
    before = secrets()
    pid_before = target.main_pid(host, "jupyter")
    rc, output = run_playbook(ROOT / "playbooks" / "reset_password.yml", {
        "student": STUDENT, "reset_password_hosts": "all", "jupyter_install_from": "wheelhouse",
        "credentials_secrets_dir": str(SECRETS_DIR)})
    assert rc == 0, output
    after = secrets()
    assert after["jupyter_password"] != before["jupyter_password"]
    assert after["unix_password"] == before["unix_password"]  # only the Jupyter one unless reset_unix=true
    # Shown to the operator once, in the task made for it.
    assert output.count(after["jupyter_password"]) == 1, output
    assert "Jupyter password " + after["jupyter_password"] in output
    assert target.main_pid(host, "jupyter") != pid_before  # restarted
    assert target.wait_until(lambda: host.socket("tcp://127.0.0.1:8888").is_listening, 60)
    assert login(host, after["jupyter_password"])["login_ok"]
    old = login(host, before["jupyter_password"])
    assert not old["login_ok"] and old["api_status"] == 403
    handout = handout_text()
    assert after["jupyter_password"] in handout and before["jupyter_password"] not in handout
    page = handout_text("handout/%s.html" % STUDENT)
    assert after["jupyter_password"] in page and before["jupyter_password"] not in page


def test_no_generated_secret_appears_in_the_play_output_at_vv(host, address):
    before = secrets()
    rc, output = run_playbook(ROOT / "molecule" / "credentials" / "converge.yml",
                              {"credentials_rotate": ["jupyter", "unix"]}, "-vv")
    assert rc == 0, output
    after = secrets()
    # Both secrets were generated in this very run...
    assert after["jupyter_password"] != before["jupyter_password"]
    assert after["unix_password"] != before["unix_password"]
    # ...applied (Jupyter and PAM take them)...
    assert login(host, after["jupyter_password"])["login_ok"]
    field = host.check_output("getent shadow %s", USER).split(":")[1]
    assert sha512_crypt.verify(after["unix_password"], field)
    # ...and never printed, new or old, whatever the verbosity.
    for value in (after["jupyter_password"], after["unix_password"], before["jupyter_password"],
                  before["unix_password"]):
        assert value not in output
    assert "censored" in output or "no_log" in output
