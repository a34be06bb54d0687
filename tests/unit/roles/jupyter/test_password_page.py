"""The student's password page (roles/jupyter/files/coursevm_password) inside a real Jupyter Server.

A ServerApp is configured as the role's jupyter_server_config.py configures it and served by tornado's test
server; requests log in, fetch the page for its _xsrf token and post forms, as a browser does. What is checked is
behaviour: status codes, the result code, which password logs in, the file's mode and record.
"""

import datetime
import os
import re
import stat
import sys
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip("jupyter_server")  # in the controller venv (requirements.txt); the skip guard flags a skip
from jupyter_server.auth.security import passwd  # noqa: E402
from jupyter_server.serverapp import ServerApp  # noqa: E402
from tornado.testing import AsyncHTTPTestCase  # noqa: E402
from traitlets.config import Config  # noqa: E402

FILES = Path(__file__).resolve().parents[4] / "roles" / "jupyter" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))

from coursevm_password import store  # noqa: E402  # pylint: disable=wrong-import-position

OPERATOR_PASSWORD = "operator-given-1"
NEW_PASSWORD = "students-own-choice"
# Hashed once for the whole module: argon2 with Jupyter's parameters takes a moment.
OPERATOR_HASH = passwd(OPERATOR_PASSWORD)


# ------------------------------------------------------------------ pure functions

@pytest.mark.parametrize("new, repeat, problem", [
    ("long-enough", "long-enough", None),
    ("long-enough", "long-enougH", store.MISMATCH),
    ("short", "short", store.TOO_SHORT),
    ("", "", store.TOO_SHORT),
    ("x" * (store.MAX_LENGTH + 1), "x" * (store.MAX_LENGTH + 1), store.TOO_LONG),
    (" long-enough", " long-enough", store.EDGE_WHITESPACE),
    ("long-enough\t", "long-enough\t", store.EDGE_WHITESPACE),
    ("long enough inside", "long enough inside", None),
])
def test_new_password_problem(new, repeat, problem):
    assert store.new_password_problem(new, repeat, 8) == problem


def test_min_length_zero_still_refuses_empty():
    assert store.new_password_problem("", "", 0) == store.TOO_SHORT


def test_override_written_atomically_0600_and_bound_to_the_operator_hash(tmp_path):
    path = tmp_path / "student-password.json"
    when = datetime.datetime(2026, 11, 30, 13, 0, tzinfo=datetime.timezone.utc)
    store.write_override(str(path), "argon2:student", OPERATOR_HASH, now=when)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["student-password.json"]  # no temporary file left
    record = store.read_override(str(path), OPERATOR_HASH)
    assert record["hashed_password"] == "argon2:student"
    assert record["changed_at"] == "2026-11-30T13:00:00Z"
    assert OPERATOR_HASH not in path.read_text()  # only its fingerprint
    # A new operator hash (a reset) makes the student's file stale: the operator wins.
    assert store.read_override(str(path), passwd("operator-reset-2")) is None


@pytest.mark.parametrize("content", [
    "", "not json", "[]", '{"format": 2, "hashed_password": "argon2:x", "replaces": "%s"}',
    '{"format": 1, "hashed_password": "sha1:x:y", "replaces": "%s"}',
    '{"format": 1, "hashed_password": "", "replaces": "%s"}',
])
def test_malformed_override_does_not_apply(tmp_path, content):
    path = tmp_path / "student-password.json"
    path.write_text(content.replace("%s", store.fingerprint(OPERATOR_HASH)) if "%s" in content else content)
    assert store.read_override(str(path), OPERATOR_HASH) is None
    assert store.read_override(str(tmp_path / "missing.json"), OPERATOR_HASH) is None
    assert store.read_override("", OPERATOR_HASH) is None


# ------------------------------------------------------------------ the page inside a Jupyter Server

class PasswordPageTest(AsyncHTTPTestCase):
    """One server per test, configured like the role's config file; base_url is a sub-path as behind nginx."""

    BASE = "/jupyter/"

    def setUp(self):
        self.tmp = Path(self.enterContext(__import__("tempfile").TemporaryDirectory()))
        for name in ("config", "data", "runtime"):
            (self.tmp / name).mkdir()
        self.state = self.tmp / "state"
        self.state.mkdir(mode=0o700)
        self.password_file = self.state / "student-password.json"
        self.env = {"JUPYTER_CONFIG_DIR": str(self.tmp / "config"), "JUPYTER_DATA_DIR": str(self.tmp / "data"),
                    "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"), "JUPYTER_NO_CONFIG": "1"}
        self.saved_env = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        ServerApp.clear_instance()
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def get_app(self):
        config = Config()
        config.ServerApp.base_url = self.BASE
        config.ServerApp.root_dir = str(self.tmp)
        config.ServerApp.open_browser = False
        config.ServerApp.identity_provider_class = "coursevm_password.identity.CourseVMPasswordIdentityProvider"
        config.ServerApp.jpserver_extensions = {"coursevm_password": True}
        config.IdentityProvider.token = ""
        config.PasswordIdentityProvider.hashed_password = OPERATOR_HASH
        config.PasswordIdentityProvider.password_required = True
        config.PasswordIdentityProvider.allow_password_change = False
        config.CourseVMPasswordIdentityProvider.student_password_file = str(self.password_file)
        config.CourseVMPasswordIdentityProvider.min_password_length = 12
        self.serverapp = ServerApp(config=config)
        self.serverapp.initialize(argv=[], new_httpserver=False, find_extensions=False)
        return self.serverapp.web_app

    # A browser, reduced: a cookie jar and forms.
    def browser(self):
        return _Browser(self)

    def test_page_needs_a_login(self):
        response = self.fetch(self.BASE + "coursevm/password", follow_redirects=False)
        assert response.code == 302
        assert urllib.parse.urlparse(response.headers["Location"]).path == self.BASE + "login"

    def test_post_without_xsrf_is_refused(self):
        browser = self.browser()
        assert browser.login(OPERATOR_PASSWORD)
        response = browser.post("coursevm/password", {"current_password": OPERATOR_PASSWORD,
                                                      "new_password": NEW_PASSWORD,
                                                      "repeat_password": NEW_PASSWORD}, xsrf=False)
        assert response.code == 403
        assert not self.password_file.exists()

    def test_refusals_change_nothing(self):
        browser = self.browser()
        assert browser.login(OPERATOR_PASSWORD)
        page = browser.get("coursevm/password")
        assert page.code == 200 and 'data-min-length="12"' in page.body.decode()
        cases = [
            ({"current_password": "not-the-password", "new_password": NEW_PASSWORD,
              "repeat_password": NEW_PASSWORD}, 403, store.WRONG_CURRENT),
            ({"current_password": OPERATOR_PASSWORD, "new_password": NEW_PASSWORD,
              "repeat_password": NEW_PASSWORD + "x"}, 400, store.MISMATCH),
            ({"current_password": OPERATOR_PASSWORD, "new_password": "eleven-char",
              "repeat_password": "eleven-char"}, 400, store.TOO_SHORT),
        ]
        for form, code, result in cases:
            response = browser.post("coursevm/password", form)
            assert (response.code, _result(response)) == (code, result)
            for value in form.values():
                assert value not in response.body.decode()  # no password is echoed
        assert not self.password_file.exists()
        assert self.browser().login(OPERATOR_PASSWORD)

    def test_change_takes_effect_at_once_and_signs_other_sessions_out(self):
        browser, other = self.browser(), self.browser()
        assert browser.login(OPERATOR_PASSWORD) and other.login(OPERATOR_PASSWORD)
        response = browser.post("coursevm/password", {"current_password": OPERATOR_PASSWORD,
                                                      "new_password": NEW_PASSWORD,
                                                      "repeat_password": NEW_PASSWORD})
        assert (response.code, _result(response)) == (200, store.CHANGED)
        assert stat.S_IMODE(self.password_file.stat().st_mode) == 0o600
        assert NEW_PASSWORD not in self.password_file.read_text()
        assert not self.browser().login(OPERATOR_PASSWORD)
        assert self.browser().login(NEW_PASSWORD)
        # The browser that changed it stays logged in; a session opened with the old password does not.
        assert browser.get("api/status").code == 200
        assert other.get("api/status").code == 403
        # Changing it again needs the new one as the current password.
        again = browser.post("coursevm/password", {"current_password": OPERATOR_PASSWORD,
                                                   "new_password": "a-third-password",
                                                   "repeat_password": "a-third-password"})
        assert _result(again) == store.WRONG_CURRENT

    def test_operator_wins_when_the_file_goes_or_the_hash_changes(self):
        browser = self.browser()
        assert browser.login(OPERATOR_PASSWORD)
        assert _result(browser.post("coursevm/password", {"current_password": OPERATOR_PASSWORD,
                                                          "new_password": NEW_PASSWORD,
                                                          "repeat_password": NEW_PASSWORD})) == store.CHANGED
        # The operator's reset, as the credentials role does it: the file goes, at once the operator's works.
        self.password_file.unlink()
        assert self.browser().login(OPERATOR_PASSWORD)
        assert not self.browser().login(NEW_PASSWORD)
        # A file left behind from before an operator's new hash never applies.
        store.write_override(str(self.password_file), passwd(NEW_PASSWORD), passwd("an-older-operator-hash"))
        assert not self.browser().login(NEW_PASSWORD)

    def test_unwritable_state_keeps_the_old_password(self):
        os.chmod(self.state, 0o500)
        self.addCleanup(os.chmod, self.state, 0o700)
        if os.access(self.state, os.W_OK):  # root ignores modes; make the target a folder instead
            self.password_file.mkdir()
        browser = self.browser()
        assert browser.login(OPERATOR_PASSWORD)
        response = browser.post("coursevm/password", {"current_password": OPERATOR_PASSWORD,
                                                      "new_password": NEW_PASSWORD,
                                                      "repeat_password": NEW_PASSWORD})
        assert (response.code, _result(response)) == (500, store.NOT_SAVED)
        assert self.browser().login(OPERATOR_PASSWORD)


def _result(response):
    found = re.search(r'data-result="([a-z-]+)"', response.body.decode())
    return found.group(1) if found else None


class _Browser:
    def __init__(self, case):
        self.case = case
        self.cookies = {}

    def _keep(self, response):
        for header in response.headers.get_list("Set-Cookie"):
            name, unused, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "expires=" in header.lower() and value in ('""', ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def _headers(self):
        return {"Cookie": "; ".join("%s=%s" % kv for kv in self.cookies.items())}

    def get(self, path):
        response = self.case.fetch(self.case.BASE + path, headers=self._headers(), follow_redirects=False)
        self._keep(response)
        return response

    def post(self, path, form, xsrf=True):
        if xsrf and "_xsrf" not in self.cookies:
            self.get("coursevm/password")
        body = dict(form, _xsrf=self.cookies.get("_xsrf", "")) if xsrf else dict(form)
        response = self.case.fetch(self.case.BASE + path, method="POST", body=urllib.parse.urlencode(body),
                                   headers=self._headers(), follow_redirects=False)
        self._keep(response)
        return response

    def login(self, password):
        """True when the login form accepts the password (it then redirects away from /login)."""
        self.get("login")
        response = self.post("login", {"password": password})
        return response.code == 302 and "/login" not in response.headers.get("Location", "")
