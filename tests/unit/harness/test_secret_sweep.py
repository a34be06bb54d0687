"""The -vvv secret sweep of the e2e tests (tests/support/secret_sweep.py) finds a recorded secret anywhere but in
the two places that show one on purpose, and reads every plaintext secret of a record (not hashes, public keys or
paths): a sweep that found nothing because it looked at nothing would pass every leak."""

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
import secret_sweep  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Xy7-secret-pw"
SECRETS = {"s1.yml.jupyter_password": PASSWORD}


def test_a_record_yields_its_plaintext_secrets_only(tmp_path):
    (tmp_path / "s1.yml").write_text(yaml.safe_dump({
        "jupyter_password": PASSWORD, "unix_password": "unix-pw-123456", "jupyter_password_hash": "argon2:$x",
        "url": "http://192.0.2.7/", "databases": {"postgresql": {"course_password": "pg-pw-123456"}},
        "ssh_public_keys": ["ssh-ed25519 AAAA student"], "student_changed_at": "2026-12-01T00:00:00Z"}))
    (tmp_path / "handout.csv").write_text("not a record\n")
    (tmp_path / "postgresql").mkdir()
    (tmp_path / "postgresql" / "s1.yml").write_text(yaml.safe_dump({"host": "192.0.2.7",
                                                                    "passwords": {"course": "pg-role-pw-1234"}}))
    found = secret_sweep.recorded(tmp_path)
    assert sorted(found.values()) == sorted([PASSWORD, "unix-pw-123456", "pg-pw-123456", "pg-role-pw-1234"])
    assert "s1.yml.databases.postgresql.course_password" in found


def test_a_private_keys_body_lines_are_secrets(tmp_path):
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * 70 + "\n" + "B" * 40 + "\n=\n"
                   "-----END OPENSSH PRIVATE KEY-----\n")
    assert sorted(secret_sweep.private_key(key).values()) == ["A" * 70, "B" * 40]


def test_a_secret_anywhere_else_is_found():
    for text in ('"jupyter_password": "%s"' % PASSWORD, "ok: [x] => {\"msg\": \"%s\"}" % PASSWORD,
                 "    Password: %s and more\n" % PASSWORD):
        assert secret_sweep.printed(text, SECRETS) == ["s1.yml.jupyter_password"], text


def test_the_places_that_show_a_secret_on_purpose_are_not_leaks_and_are_counted():
    local_one = "  Jupyter is ready.\n    URL:      http://192.0.2.7/\n    Password: %s\n" % PASSWORD
    local_many = "    student1   URL: http://192.0.2.7/             Password: %s\n" % PASSWORD
    reset = 'ok: [c-student2] => {\n    "msg": "Student student2: http://192.0.2.7/ Jupyter password %s"\n}\n' % PASSWORD
    for text in (local_one, local_many, reset):
        assert secret_sweep.printed(text, SECRETS) == [], text
    assert secret_sweep.shown_on_purpose(local_one + local_many + reset) == {"coursevm local": 2,
                                                                             "reset_password.yml": 1}
    # Shown on purpose once does not excuse the same secret elsewhere in the run.
    assert secret_sweep.printed(reset + '"new_password": "%s"' % PASSWORD, SECRETS) == ["s1.yml.jupyter_password"]
