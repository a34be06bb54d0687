"""A student's first minutes, in a real headless Chromium (Debian's chromium + chromedriver via Selenium):
open the URL, log in with the password, open a new notebook, run `1+1`, see `2`.

No driver or browser is downloaded: Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver.
"""

import json
import tempfile
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying hosts this closed machine cannot reach.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900", "--ignore-certificate-errors"]


def chromium(user_data_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + ["--user-data-dir=" + user_data_dir]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _xsrf_fetch(driver, method, url, body=None):
    """fetch() from inside the logged-in page, so the request carries the session cookie and _xsrf token."""
    script = """
        const [method, url, body, done] = arguments;
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
        fetch(url, {method, body, headers: {'X-XSRFToken': decodeURIComponent(xsrf),
                                             'Content-Type': 'application/json'}})
          .then(r => done(r.status)).catch(e => done(String(e)));
    """
    return driver.execute_async_script(script, method, url, body)


class BrowserStageFailed(AssertionError):
    """A step of the student's first minutes did not happen in time; says which step and what the page showed."""


def _page_state(driver):
    """What a person looking at the page would report: where it is, its title, any dialog, the kernel status."""
    def texts(css):
        try:
            return [e.text.strip()[:200] for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip()]
        except Exception:  # pylint: disable=broad-except  # the page may be mid-navigation
            return []
    try:
        where = "url=%s title=%r" % (driver.current_url, driver.title)
    except Exception:  # pylint: disable=broad-except
        where = "url=? (the browser did not answer)"
    return "%s dialogs=%s kernel=%s outputs=%s" % (
        where, texts(".jp-Dialog"), texts(".jp-KernelStatus, .jp-Notebook-ExecutionIndicator"),
        texts(".jp-OutputArea-output"))


def _until(driver, timeout, condition, stage):
    """Wait for condition; a timeout names the stage and describes the page instead of a bare TimeoutException."""
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException as exc:
        raise BrowserStageFailed("%s: not within %s s; %s" % (stage, timeout, _page_state(driver))) from exc


def _type_and_run(driver, timeout, code, attempts=5):
    """Type into the first cell and run it. The page re-renders the cell while the kernel connects, which makes
    a found element stale: find it again and replace (select-all) whatever a half-finished attempt typed."""
    for attempt in range(attempts):
        try:
            editor = _until(driver, timeout, EC.element_to_be_clickable((By.CSS_SELECTOR, ".jp-Cell .cm-content")),
                            "the first cell's editor became clickable")
            editor.click()
            editor.send_keys(Keys.CONTROL, "a")
            editor.send_keys(code)
            editor.send_keys(Keys.SHIFT, Keys.RETURN)
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


RERUN_AFTER = 20  # seconds without output or a busy prompt before the first cell is run again


def _never_ran(driver):
    """The first cell's prompt is still "[ ]:": neither queued ("[*]:") nor run ("[1]:")."""
    prompts = driver.find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-InputPrompt")
    return bool(prompts) and prompts[0].text.strip().replace(" ", "") in ("[]:", "")


def run_first_cell(base_url, password, screenshot, notebook="browser-test.ipynb", timeout=180):
    """Log in at base_url (ending with '/'), create and open a notebook, run 1+1; return the output text.

    The timeout is per step and generous: on a loaded two-core machine JupyterLab's bundles and the first kernel
    start take long. A step that does not happen raises BrowserStageFailed naming it, with the page's state."""
    with tempfile.TemporaryDirectory(prefix="coursevm-chromium-") as profile:
        driver = chromium(profile)
        driver.set_script_timeout(30)
        try:
            driver.get(base_url)
            # An anonymous visitor lands on the login page, whatever URL they were given.
            field = _until(driver, timeout, EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=password]")),
                           "the login page showed a password field")
            field.send_keys(password)
            field.send_keys(Keys.RETURN)
            _until(driver, timeout, lambda d: "/login" not in urllib.parse.urlparse(d.current_url).path,
                   "the password was accepted (the page left /login)")
            # A new, empty notebook with a Python kernel, then opened the way the file browser opens it.
            empty = {"type": "notebook", "content": {
                "cells": [], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}}
            status = _xsrf_fetch(driver, "PUT", base_url + "api/contents/" + notebook, json.dumps(empty))
            assert status in (200, 201), "creating the notebook through the page failed: %s" % status
            driver.get(base_url + "notebooks/" + notebook)
            # Wait for the kernel before typing, so Shift+Enter is not lost while it starts. A page whose theme
            # stylesheet did not arrive (a request lost on a loaded machine) shows an error dialog instead and
            # renders no kernel status: reload it as a user would, twice at most.
            for reload in range(3):
                found = _until(driver, timeout,
                               lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                               or d.find_elements(By.CSS_SELECTOR,
                                                  ".jp-Notebook-ExecutionIndicator[data-status='idle']")
                               or d.find_elements(By.XPATH, "//*[contains(@class,'jp-KernelStatus') "
                                                            "and contains(., 'Idle')]"),
                               "the notebook opened and its kernel became idle (or a dialog showed)")
                if "jp-Dialog" not in (found[0].get_attribute("class") or "").split() or reload == 2:
                    break
                driver.refresh()
            if driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
                raise BrowserStageFailed("the notebook page kept showing a dialog; %s" % _page_state(driver))
            _type_and_run(driver, timeout, "1+1")
            deadline = time.monotonic() + timeout
            text = ""
            rerun_at = time.monotonic() + RERUN_AFTER
            while time.monotonic() < deadline and not text:
                outputs = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                text = outputs[0].text.strip() if outputs else ""
                if not text and time.monotonic() > rerun_at and _never_ran(driver):
                    # Shift+Enter can reach a kernel shown idle whose connection is still being made: the cell
                    # moves on but never runs (its prompt stays "[ ]:"). A person runs it again; so does this.
                    _type_and_run(driver, timeout, "1+1")
                    rerun_at = time.monotonic() + RERUN_AFTER
                time.sleep(0.5)
            driver.save_screenshot(str(screenshot))
            if not text:
                raise BrowserStageFailed("running 1+1 showed no output within %s s; %s" % (timeout, _page_state(driver)))
            return text
        except Exception:
            driver.save_screenshot(str(screenshot))
            raise
        finally:
            driver.quit()
