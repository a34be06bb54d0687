"""A student changes their own Jupyter password in Chromium, through nginx and Jupyter's sub-path, on the
one-student job's VM, and the operator's reset (playbooks/reset_password.yml through the job's day-two inventory)
still wins. The tests of this file run in order and leave the job's printed password in place at the end, so the
job's other tests are unaffected. Results are read from the page's data-result codes and from which password logs
in, not from its sentences. The job is tests/e2e/conftest.py's `local_job`.
"""

import csv
import io
import json
import os
import tempfile
import urllib.parse

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

import browser  # tests/support, on sys.path via conftest
import day_two
import html_ids
import jupyter_login
import secret_sweep
import target
from conftest import COURSE_USER, JOB_DIR, ROOT

NEW_PASSWORD = "a-students-own-choice"
USER = COURSE_USER
STUDENT_FILE = "/var/lib/jupyter/student-password.json"
SECRETS_DIR = JOB_DIR / "secrets"
INVENTORY = JOB_DIR / "inventory"
SHOTS = ROOT / "tests" / "output" / "screenshots"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")


def logs_in(site, password):
    return jupyter_login.login(site["url"], password)["login_ok"]


def run_playbook(playbook, *args):
    result = day_two.run(INVENTORY, playbook, *args, timeout=900)
    return result.returncode, result.stdout + result.stderr


def record(site):
    return yaml.safe_load((SECRETS_DIR / (site["name"] + ".yml")).read_text())


class Student:
    """One Chromium profile: the student's browser."""

    def __init__(self, site, profile):
        self.site = site
        self.driver = browser.chromium(profile)
        self.page = site["url"] + "coursevm/password"

    def until(self, condition, stage, timeout=120):
        return browser._until(self.driver, timeout, condition, stage)  # pylint: disable=protected-access

    def log_in(self, password):
        """True when the login page lets the student in (it leaves /login)."""
        field = self.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=password]")),
                           "the login page showed a password field")
        field.send_keys(password)
        field.send_keys("\n")
        try:
            self.until(lambda d: "/login" not in urllib.parse.urlparse(d.current_url).path
                       or d.find_elements(By.CSS_SELECTOR, ".error, .message.error, .alert"),
                       "the login page answered", timeout=60)
        except browser.BrowserStageFailed:
            pass
        return "/login" not in urllib.parse.urlparse(self.driver.current_url).path

    def change(self, current, new, repeat):
        """Fill the page's form as a person does; returns the page's result code."""
        self.driver.get(self.page)
        self.until(EC.presence_of_element_located((By.ID, "current_password")), "the password page opened")
        for field, value in (("current_password", current), ("new_password", new), ("repeat_password", repeat)):
            self.driver.find_element(By.ID, field).send_keys(value)
        self.driver.find_element(By.ID, "change_password").click()
        found = self.until(EC.presence_of_element_located((By.ID, "result")), "the page answered the form")
        return found.get_attribute("data-result")

    def shot(self, what):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / ("local-job-password-%s.png" % what)))


def test_student_changes_the_password_in_chromium(site, host):
    assert logs_in(site, site["password"]) and not host.file(STUDENT_FILE).exists
    with tempfile.TemporaryDirectory(prefix="coursevm-chromium-") as profile:
        student = Student(site, profile)
        try:
            # The page is behind the login: the student logs in and lands on it.
            student.driver.get(student.page)
            assert student.log_in(site["password"])
            assert urllib.parse.urlparse(student.driver.current_url).path.endswith("/coursevm/password")
            assert student.change("not-the-password", NEW_PASSWORD, NEW_PASSWORD) == "wrong-current"
            assert student.change(site["password"], NEW_PASSWORD, NEW_PASSWORD + "x") == "mismatch"
            assert student.change(site["password"], "short", "short") == "too-short"
            assert not host.file(STUDENT_FILE).exists
            assert logs_in(site, site["password"])
            assert student.change(site["password"], NEW_PASSWORD, NEW_PASSWORD) == "changed"
            student.shot("changed")
            # At once: the old password no longer logs in, the new one does.
            assert not logs_in(site, site["password"])
            assert logs_in(site, NEW_PASSWORD)
        except Exception:
            student.shot("failed")
            raise
        finally:
            student.driver.quit()
    # Kept where only the course user reaches it, as a hash.
    folder, kept = host.file(os.path.dirname(STUDENT_FILE)), host.file(STUDENT_FILE)
    assert (folder.user, folder.mode) == (USER, 0o700)
    assert (kept.user, kept.mode) == (USER, 0o600)
    assert NEW_PASSWORD not in kept.content_string

    # It survives a restart of Jupyter.
    pid = target.main_pid(host, "jupyter")
    host.run_expect([0], "systemctl restart jupyter")
    assert target.main_pid(host, "jupyter") != pid
    assert target.wait_until(lambda: host.socket("tcp://127.0.0.1:8888").is_listening, 120)
    with tempfile.TemporaryDirectory(prefix="coursevm-chromium-") as profile:
        student = Student(site, profile)
        try:
            student.driver.get(site["url"])
            assert not student.log_in(site["password"])
            student.driver.get(site["url"])
            assert student.log_in(NEW_PASSWORD)
        finally:
            student.driver.quit()


def test_the_record_and_the_handout_say_the_recorded_password_is_stale(site, tmp_path):
    play = tmp_path / "record-credentials.yml"
    play.write_text(yaml.safe_dump([{
        "name": "The credentials role alone, as configure.yml runs it", "hosts": "course_vms", "become": True,
        "tasks": [{"name": "Record the student's secrets",
                   "ansible.builtin.include_role": {"name": "coursevm.openstack.credentials"}}]}]))
    rc, output = run_playbook(play)
    assert rc == 0, output
    changed_at = record(site)["student_changed_at"]
    assert changed_at.endswith("Z")
    rows = list(csv.DictReader(io.StringIO((SECRETS_DIR / "handout.csv").read_text(encoding="utf-8-sig"),
                                           newline="")))
    assert {row["student"]: row["student_changed_at"] for row in rows}[site["name"]] == changed_at
    page = html_ids.Ids((SECRETS_DIR / "handout" / (site["name"] + ".html")).read_text())
    assert page.attrs["password-stale"]["data-changed-at"] == changed_at
    assert page.attrs["password-page"]["href"] == site["url"] + "coursevm/password"
    # The student's password is nowhere on the controller.
    for path in SECRETS_DIR.rglob("*"):
        assert path.is_dir() or NEW_PASSWORD not in path.read_text(encoding="utf-8-sig")


def test_the_operators_reset_wins(site, host, tmp_path):
    assert logs_in(site, NEW_PASSWORD)
    # The job's printed password again, so the other tests keep working; a reset to the same password is the
    # hardest case (Jupyter's config does not change, so nothing restarts). As an extra-vars file: never on a
    # command line.
    extra = tmp_path / "reset.json"
    extra.write_text(json.dumps({"student": site["name"], "new_password": site["password"]}))
    extra.chmod(0o600)
    rc, output = run_playbook("reset_password.yml", "-vvv", "-e", "@%s" % extra)
    assert rc == 0, output
    assert NEW_PASSWORD not in output
    # At -vvv, as a CI log keeps it: the new password shown to the operator once, on purpose, and nowhere else;
    # nor any other password the job recorded.
    assert secret_sweep.shown_on_purpose(output)["reset_password.yml"] == 1
    assert secret_sweep.printed(output, secret_sweep.recorded(SECRETS_DIR)) == []
    assert not host.file(STUDENT_FILE).exists
    assert logs_in(site, site["password"])
    assert not logs_in(site, NEW_PASSWORD)
    assert "student_changed_at" not in record(site)
    page = html_ids.Ids((SECRETS_DIR / "handout" / (site["name"] + ".html")).read_text())
    assert "password-stale" not in page.attrs


def test_a_refused_reset_changes_nothing_and_prints_no_password_at_vvv(site, tmp_path):
    """A failing input: a new password under the minimum length is refused before the VM is touched, and
    neither it nor a recorded one is printed."""
    before = record(site)
    short = "Sh0rt-pw"
    extra = tmp_path / "reset.json"
    extra.write_text(json.dumps({"student": site["name"], "new_password": short}))
    extra.chmod(0o600)
    rc, output = run_playbook("reset_password.yml", "-vvv", "-e", "@%s" % extra)
    assert rc != 0 and "jupyter_password" in output, output[-3000:]
    assert short not in output and secret_sweep.shown_on_purpose(output)["reset_password.yml"] == 0
    assert secret_sweep.printed(output, secret_sweep.recorded(SECRETS_DIR)) == []
    assert record(site) == before
    assert logs_in(site, site["password"])
