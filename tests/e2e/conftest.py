import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
MACHINES = ["/usr/bin/python3", str(ROOT / "tests" / "machines" / "machines.py")]
# The README's first command, for one student, with Jupyter at a sub-path: the harder case (every path of Jupyter,
# OpenRefine and nbdime must carry the prefix). A cohort at / is tests/e2e/test_local_cohort.py.
JOB_BASE = "/jupyter/"
JOB_COMMAND = ("local", "-e", "jupyter_base_url=" + JOB_BASE)
# What the local job keeps: the student's record and handout, and the day-two inventory.
JOB_DIR = ROOT / ".build" / "local"
# The course account every service runs as on the VMs (the roles' default).
COURSE_USER = "oustudent"
# ssh to a test machine through its floating IP as the course team's account: each test machine makes new host
# keys, which are not the point of these tests (host keys are checked in test_local_cohort.py on the course's own
# known_hosts).
SSH_OPTIONS = ("-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20")


def machines_key():
    """The private key every test machine accepts (the course team's key of the local job)."""
    return subprocess.run([*MACHINES, "key"], capture_output=True, text=True, check=True).stdout.strip()


def ssh_vm(address, command, timeout=120):
    """Run a shell command on a VM as vagrant, through its floating IP; fails on a non-zero exit."""
    return subprocess.run(["ssh", "-i", machines_key(), *SSH_OPTIONS, "vagrant@" + address, command],
                          capture_output=True, text=True, timeout=timeout, check=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "stops_the_job: runs `./coursevm local-stop`; runs after every other test")


def pytest_collection_modifyitems(items):
    """The test that stops the one-student job runs last, whichever of the job's modules holds it."""
    items.sort(key=lambda item: item.get_closest_marker("stops_the_job") is not None)


def run_coursevm(*args, timeout=2400, env=None):
    return subprocess.run([str(ROOT / "coursevm"), *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env=env)


def printed(job):
    """(url, password) the one-student job printed."""
    url = re.search(r"URL:\s+(\S+)", job.stdout)
    password = re.search(r"Password:\s+(\S+)", job.stdout)
    assert url and password, job.stdout[-3000:] + job.stderr[-3000:]
    return url.group(1), password.group(1)


@pytest.fixture(scope="session")
def local_cloud():
    """openstacksdk connected to the running local cloud as the course project (call it after the job ran:
    the job starts the cloud)."""
    def connect():
        import openstack

        status = subprocess.run(["/usr/bin/python3", str(ROOT / "tests" / "cloud" / "cloud.py"), "status", "--json"],
                                capture_output=True, text=True, check=False)
        os.environ["OS_CLIENT_CONFIG_FILE"] = json.loads(status.stdout)["clouds_yaml"]
        return openstack.connect(cloud="coursevm-local")
    return connect


# Set by a test whose `./coursevm local-stop` passed, so the fixture does not stop the course a second time (a
# teardown.yml run that finds nothing still lists the project twice).
STOPPED = set()


@pytest.fixture(scope="session")
def local_job():
    """One run of the one-student job, shared by the job's test modules; stopped at the end unless the test
    that stops it did."""
    run = run_coursevm(*JOB_COMMAND)
    try:
        yield run
    finally:
        if "local" not in STOPPED:
            run_coursevm("local-stop", timeout=600)


@pytest.fixture(scope="session")
def site(local_job):
    """Where the student meets the one-student job's VM: its URL (Jupyter's sub-path included), address and
    password."""
    assert local_job.returncode == 0, local_job.stdout[-3000:] + local_job.stderr[-3000:]
    url, password = printed(local_job)
    address = urlparse(url).hostname
    return {"name": "student1", "address": address, "base": JOB_BASE, "landing": JOB_BASE + "tree",
            "url": url, "password": password}


@pytest.fixture(scope="session")
def host(site):
    """testinfra on the one-student job's VM over ssh through its floating IP, as the course team's account with sudo."""
    import testinfra

    return testinfra.get_host("ssh://vagrant@" + site["address"], ssh_identity_file=machines_key(), sudo=True,
                              ssh_extra_args=" ".join(SSH_OPTIONS))
