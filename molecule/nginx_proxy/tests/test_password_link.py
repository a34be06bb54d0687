"""A student finds the password page from Jupyter's own menus (issue 14), in a real headless Chromium through nginx:
logged in, Help > Change password in Notebook 7's file browser (where a student lands) and in JupyterLab opens
<prefix>coursevm/password in a new tab, with the page's form. On both machines: at /jupyter/ over HTTPS and at / over
HTTP, so the link follows the base URL. The item comes from the jupyter role's settings override (no build).
"""

import json
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
import browser  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "molecule-jupyter-pw"
SHOTS = ROOT / "tests" / "output" / "screenshots"
OVERRIDES = "/opt/jupyter/share/jupyter/lab/settings/overrides.d/coursevm-password.json"
TIMEOUT = 180  # per step: JupyterLab's bundles are slow to start on a loaded two-core machine


class Student:
    """One logged-in Chromium profile on one machine."""

    def __init__(self, host, profile):
        variables = host.ansible.get_variables()
        self.name = variables["inventory_hostname"]
        self.prefix = variables["nginx_proxy_base_url"]
        self.base = "%s://%s%s" % ("https" if variables["molecule_tls"] else "http", variables["ansible_host"],
                                   self.prefix)
        self.driver = browser.chromium(profile)

    def until(self, condition, stage):
        return browser._until(self.driver, TIMEOUT, condition, stage)  # pylint: disable=protected-access

    def log_in(self):
        self.driver.get(self.base + "tree")
        field = self.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=password]")),
                           "the login page showed a password field")
        field.send_keys(PASSWORD + "\n")
        self.until(lambda d: "/login" not in urllib.parse.urlparse(d.current_url).path, "the password was accepted")

    def follow_help_item(self, page, label):
        """Open `page`, then Help > `label` as a person does (menus clicked, not commands run); returns the path of
        the tab it opened once that tab shows the password form."""
        self.driver.switch_to.window(self.driver.window_handles[0])
        self.driver.get(self.base + page)
        self.until(EC.element_to_be_clickable((By.XPATH, "//li[contains(@class,'lm-MenuBar-item')]"
                                                         "[.//*[normalize-space(text())='Help']]")),
                   "the %s page showed its Help menu" % page).click()
        item = self.until(EC.element_to_be_clickable((By.XPATH, "//li[contains(@class,'lm-Menu-item')]"
                                                                "[.//*[normalize-space(text())='%s']]" % label)),
                          "the Help menu of %s showed %r" % (page, label))
        before = set(self.driver.window_handles)
        item.click()
        self.until(lambda d: set(d.window_handles) - before, "a new tab opened")
        self.driver.switch_to.window((set(self.driver.window_handles) - before).pop())
        self.until(EC.presence_of_element_located((By.ID, "current_password")), "the password page opened")
        return urllib.parse.urlparse(self.driver.current_url).path

    def shot(self, what):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / ("molecule-%s-password-link-%s.png" % (self.name, what))))


@pytest.fixture(scope="module")
def student(host):
    with tempfile.TemporaryDirectory(prefix="coursevm-chromium-") as profile:
        person = Student(host, profile)
        try:
            person.log_in()
            yield person
        finally:
            person.driver.quit()


@pytest.mark.parametrize("page", ["tree", "lab"])
def test_help_menu_leads_to_the_password_page(student, page):
    try:
        path = student.follow_help_item(page, "Change password")
        assert path == student.prefix + "coursevm/password"
        # The form a student changes the password with, behind the login the student came in through.
        for field in ("current_password", "new_password", "repeat_password", "change_password"):
            assert student.driver.find_elements(By.ID, field), field
    except Exception:
        student.shot(page)
        raise
    finally:
        for handle in student.driver.window_handles[1:]:
            student.driver.switch_to.window(handle)
            student.driver.close()


def test_the_menu_item_is_a_root_owned_settings_override(host):
    override = host.file(OVERRIDES)
    assert (override.user, override.group, override.mode) == ("root", "root", 0o644)
    item = json.loads(override.content_string)["@jupyterlab/mainmenu-extension:plugin"]["menus"][0]["items"][0]
    prefix = host.ansible.get_variables()["nginx_proxy_base_url"]
    assert item["command"] == "help:open" and item["args"]["url"] == prefix + "coursevm/password"
