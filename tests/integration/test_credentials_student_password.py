"""The handout when a student changed their Jupyter password in the browser (role jupyter's coursevm/password page):
the record's `student_changed_at` reaches the CSV and the student's page, which say the recorded password is stale.

Controller side only, like test_credentials_handout.py: the VM's part (the role looking at the student's file and
removing it on a reset) is in tests/e2e/test_local_job_password.py.
"""

import csv
import io

import yaml

import html_ids  # tests/support, on sys.path via conftest
import role_check

URL = "http://192.0.2.10/"
CHANGED_AT = "2026-11-30T13:20:00Z"


def run(course, student):
    result = role_check.run_playbook(course["play"], {"credentials_student": student,
                                                      "credentials_secrets_dir": str(course["dir"]),
                                                      "credentials_url": URL}, "-v", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_student_who_chose_their_password_is_marked_stale(tmp_path):
    course = role_check.credentials_course(tmp_path)
    run(course, "s001")
    # s002's record as the role writes it after seeing the student's file on their VM.
    (course["dir"] / "s002.yml").write_text(yaml.safe_dump({
        "student": "s002", "name": "", "host": "s002", "url": URL, "ssh_user": "oustudent",
        "jupyter_password": "recorded-but-stale", "unix_password": "unix-password-2",
        "student_changed_at": CHANGED_AT}))
    (course["dir"] / "s002.yml").chmod(0o600)
    run(course, "s001")

    rows = list(csv.DictReader(io.StringIO((course["dir"] / "handout.csv").read_text(encoding="utf-8-sig"),
                                           newline="")))
    by_id = {row["student"]: row for row in rows}
    assert by_id["s002"]["student_changed_at"] == CHANGED_AT
    assert by_id["s002"]["jupyter_password"] == "recorded-but-stale"
    assert by_id["s001"]["student_changed_at"] == ""
    assert "student_changed_at" not in yaml.safe_load((course["dir"] / "s001.yml").read_text())

    stale = html_ids.Ids((course["dir"] / "handout" / "s002.html").read_text())
    fresh = html_ids.Ids((course["dir"] / "handout" / "s001.html").read_text())
    assert stale.attrs["password-stale"]["data-changed-at"] == CHANGED_AT
    assert "password-stale" not in fresh.attrs
    # Both pages tell the student where to change it.
    for page in (stale, fresh):
        assert page.attrs["password-page"]["href"] == URL + "coursevm/password"
