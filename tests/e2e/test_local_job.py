"""The README's first command, as a person runs it: `./coursevm local` prints a URL and a password, and a real
Chromium logs in with them, opens a new notebook and runs a cell. Needs root (test machines) and Chromium."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "output" / "screenshots"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")


@pytest.fixture(scope="module")
def local_job():
    run = subprocess.run([str(ROOT / "coursevm"), "local"], capture_output=True, text=True, timeout=1200,
                         check=False)
    try:
        yield run
    finally:
        subprocess.run([str(ROOT / "coursevm"), "local-stop"], capture_output=True, timeout=120, check=False)


def test_local_job_prints_url_and_password(local_job):
    assert local_job.returncode == 0, local_job.stdout[-3000:] + local_job.stderr[-3000:]
    assert re.search(r"URL:\s+http://\d+\.\d+\.\d+\.\d+/", local_job.stdout)
    assert re.search(r"Password:\s+\S{12,}", local_job.stdout)


def test_chromium_logs_in_and_runs_a_cell(local_job):
    from browser import run_first_cell  # tests/support, on sys.path via conftest

    url = re.search(r"URL:\s+(\S+)", local_job.stdout).group(1)
    password = re.search(r"Password:\s+(\S+)", local_job.stdout).group(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "local-job-notebook.png"
    assert run_first_cell(url, password, shot) == "2"
    assert shot.stat().st_size > 10_000


def test_openrefine_and_nbdime_are_behind_the_same_login(local_job):
    from jupyter_login import login  # tests/support

    url = re.search(r"URL:\s+(\S+)", local_job.stdout).group(1)
    password = re.search(r"Password:\s+(\S+)", local_job.stdout).group(1)
    browser = login(url, password)["_session"][0]
    for path, marker in (("proxy/3334/", b"OpenRefine"), ("proxy/8899/", b"<title>nbdime")):
        with browser.open(url + path, timeout=60) as resp:
            assert resp.status == 200 and marker in resp.read(), path
