"""The controller side of the credentials role: records, vault encryption, rotation and the handout.

Runs the role's secrets and handout task files against the controller alone (they never touch a VM), with a real
ansible-vault password file.
"""

import csv
import io
import re
import stat
import subprocess

import yaml

import role_check  # tests/support, on sys.path via conftest

STUDENT = "s042"


def run(course, extra=None, verbosity="-v"):
    extra_vars = {"credentials_student": STUDENT, "credentials_secrets_dir": str(course["dir"]),
                  "credentials_url": "http://192.0.2.10/", **(extra or {})}
    result = role_check.run_playbook(course["play"], extra_vars, verbosity)
    return result.returncode, result.stdout + result.stderr


def view_text(course, name):
    out = subprocess.run(["ansible-vault", "view", "--vault-password-file", str(course["vault"]),
                          str(course["dir"] / name)], capture_output=True, check=True)
    return out.stdout.decode("utf-8-sig")


def view(course):
    return yaml.safe_load(view_text(course, STUDENT + ".yml"))


def test_vault_encrypted_records_round_trip_and_stay_unchanged(course):
    rc, output = run(course, {"credentials_vault_password_file": str(course["vault"])}, "-vv")
    assert rc == 0, output
    record = course["dir"] / (STUDENT + ".yml")
    text = record.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;coursevm")
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(course["dir"].stat().st_mode) == 0o700
    data = view(course)
    assert data["student"] == STUDENT and data["url"] == "http://192.0.2.10/"
    assert re.fullmatch(r"[A-Za-z0-9]{20}", data["jupyter_password"])
    # Generated in this run and never printed, even at -vv.
    assert data["jupyter_password"] not in output and data["unix_password"] not in output
    handout = course["dir"] / "handout.csv"
    assert stat.S_IMODE(handout.stat().st_mode) == 0o600
    # Vault-encrypted like the records (test_credentials_handout.py has the rest of the handout's tests).
    assert handout.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;coursevm")
    rows = list(csv.reader(io.StringIO(view_text(course, "handout.csv"), newline="")))
    assert rows[1] == [STUDENT, "", "http://192.0.2.10/", "oustudent", data["jupyter_password"], data["unix_password"],
                       ""]
    # A second run reads the vault back and rewrites nothing (vault text would differ at each encryption).
    rc, output = run(course, {"credentials_vault_password_file": str(course["vault"])})
    assert rc == 0, output
    assert record.read_text() == text
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", output), output


def test_vault_records_without_the_password_file_are_refused(course):
    assert run(course, {"credentials_vault_password_file": str(course["vault"])})[0] == 0
    before = (course["dir"] / (STUDENT + ".yml")).read_text()
    rc, output = run(course)
    assert rc != 0
    assert "is vault-encrypted: set credentials_vault_password_file" in re.sub(r"\s+", " ", output)
    assert (course["dir"] / (STUDENT + ".yml")).read_text() == before


def test_rotation_changes_only_the_named_secret(course):
    assert run(course)[0] == 0
    record = course["dir"] / (STUDENT + ".yml")
    before = yaml.safe_load(record.read_text())
    rc, output = run(course, {"credentials_rotate": ["jupyter"]})
    assert rc == 0, output
    after = yaml.safe_load(record.read_text())
    assert after["jupyter_password"] != before["jupyter_password"]
    assert after["unix_password"] == before["unix_password"]


def test_a_given_password_wins_and_is_recorded(course):
    rc, output = run(course, {"credentials_jupyter_password": "chosen-by-the-teacher"})
    assert rc == 0, output
    assert yaml.safe_load((course["dir"] / (STUDENT + ".yml")).read_text())["jupyter_password"] == "chosen-by-the-teacher"
    assert "chosen-by-the-teacher" not in output


def test_a_file_of_another_student_is_never_overwritten(course):
    course["dir"].mkdir(mode=0o700)
    record = course["dir"] / (STUDENT + ".yml")
    record.write_text("student: someone-else\njupyter_password: keep-me-please\n")
    rc, output = run(course)
    assert rc != 0
    assert "does not hold the secrets of student 's042'" in re.sub(r"\s+", " ", output)
    assert "keep-me-please" in record.read_text()
