"""A student changes their own Jupyter password in Chromium, through nginx, and the operator's reset still wins.

Runs on the controller (testinfra) against each platform (at / and at a sub-path). The tests of this file run in
order and leave the scenario's password (PASSWORD) in place at the end: the operator's reset gives it back, so the
other files' tests are unaffected. Results are read from the page's data-result codes and from which password logs
in, not from its sentences.
"""

import csv
import html.parser
import importlib.util
import io
import json
import os
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "molecule-web-password"
NEW_PASSWORD = "a-students-own-choice"
USER = "oustudent"
STUDENT_FILE = "/var/lib/jupyter/student-password.json"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SECRETS_DIR = EPHEMERAL / "secrets"
SHOTS = ROOT / "tests" / "output" / "screenshots"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "support" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


browser = _load("browser")
jupyter_login = _load("jupyter_login")
target = _load("target")


@pytest.fixture(scope="module")
def site(host):
    variables = host.ansible.get_variables()
    return {"name": variables["inventory_hostname"], "base": variables["jupyter_base_url"],
            "url": "http://%s%s" % (variables["ansible_host"], variables["jupyter_base_url"])}


def logs_in(site, password):
    return jupyter_login.login(site["url"], password)["login_ok"]


def run_playbook(playbook, extra_vars):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, str(playbook), "-e", json.dumps(extra_vars)],
                            capture_output=True, text=True, env=env, timeout=900, check=False)
    return result.returncode, result.stdout + result.stderr


def record(site):
    return yaml.safe_load((SECRETS_DIR / (site["name"] + ".yml")).read_text())


class _Ids(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.attrs = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.attrs[attrs["id"]] = attrs


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
        self.driver.save_screenshot(str(SHOTS / ("password-%s-%s.png" % (self.site["name"], what))))


def test_student_changes_the_password_in_chromium(site, host):
    assert logs_in(site, PASSWORD) and not host.file(STUDENT_FILE).exists
    with tempfile.TemporaryDirectory(prefix="coursevm-chromium-") as profile:
        student = Student(site, profile)
        try:
            # The page is behind the login: the student logs in and lands on it.
            student.driver.get(student.page)
            assert student.log_in(PASSWORD)
            assert urllib.parse.urlparse(student.driver.current_url).path.endswith("/coursevm/password")
            assert student.change("not-the-password", NEW_PASSWORD, NEW_PASSWORD) == "wrong-current"
            assert student.change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x") == "mismatch"
            assert student.change(PASSWORD, "short", "short") == "too-short"
            assert not host.file(STUDENT_FILE).exists
            assert logs_in(site, PASSWORD)
            assert student.change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD) == "changed"
            student.shot("changed")
            # At once: the old password no longer logs in, the new one does.
            assert not logs_in(site, PASSWORD)
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
            assert not student.log_in(PASSWORD)
            student.driver.get(site["url"])
            assert student.log_in(NEW_PASSWORD)
        finally:
            student.driver.quit()


def test_the_record_and_the_handout_say_the_recorded_password_is_stale(site):
    play = EPHEMERAL / "record-credentials.yml"
    play.write_text(yaml.safe_dump([{
        "name": "The credentials role alone, as configure.yml runs it", "hosts": site["name"], "become": True,
        "tasks": [{"name": "Record the student's secrets",
                   "ansible.builtin.include_role": {"name": "coursevm.openstack.credentials"}}]}]))
    rc, output = run_playbook(play, {})
    assert rc == 0, output
    changed_at = record(site)["student_changed_at"]
    assert changed_at.endswith("Z")
    rows = list(csv.DictReader(io.StringIO((SECRETS_DIR / "handout.csv").read_text(encoding="utf-8-sig"),
                                           newline="")))
    assert {row["student"]: row["student_changed_at"] for row in rows}[site["name"]] == changed_at
    page = _Ids((SECRETS_DIR / "handout" / (site["name"] + ".html")).read_text())
    assert page.attrs["password-stale"]["data-changed-at"] == changed_at
    assert page.attrs["password-page"]["href"] == site["url"] + "coursevm/password"
    # The student's password is nowhere on the controller.
    for path in SECRETS_DIR.rglob("*"):
        assert path.is_dir() or NEW_PASSWORD not in path.read_text(encoding="utf-8-sig")


def test_the_operators_reset_wins(site, host):
    assert logs_in(site, NEW_PASSWORD)
    # The scenario's own password again, so the other tests keep working; a reset to the same password is the
    # hardest case (Jupyter's config does not change, so nothing restarts).
    rc, output = run_playbook(ROOT / "playbooks" / "reset_password.yml", {
        "student": site["name"], "new_password": PASSWORD, "jupyter_install_from": "wheelhouse"})
    assert rc == 0, output
    assert NEW_PASSWORD not in output
    assert not host.file(STUDENT_FILE).exists
    assert logs_in(site, PASSWORD)
    assert not logs_in(site, NEW_PASSWORD)
    assert "student_changed_at" not in record(site)
    page = _Ids((SECRETS_DIR / "handout" / (site["name"] + ".html")).read_text())
    assert "password-stale" not in page.attrs
