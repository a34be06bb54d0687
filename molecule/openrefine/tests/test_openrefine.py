"""What a student and an operator would check on the converged machine (runs with testinfra over ssh)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
import target  # noqa: E402  (tests/support is not a package)

USER = "oustudent"
WORKSPACE = "/var/lib/openrefine"
BASE = "http://127.0.0.1:3334/"

# A tiny HTTP client run on the target with its own python3: prints status, content type and body.
FETCH = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
try:
    with urllib.request.urlopen(request, timeout=30) as resp:
        status, ctype, body = resp.status, resp.headers.get("Content-Type", ""), resp.read()
except urllib.error.HTTPError as err:
    status, ctype, body = err.code, err.headers.get("Content-Type", ""), err.read()
except OSError as err:
    status, ctype, body = 0, "", str(err).encode()
print(json.dumps({"status": status, "content_type": ctype, "body": body.decode("utf-8", "replace")}))
"""


def fetch(host, url, headers=None):
    return json.loads(host.check_output("python3 -c %s %s %s", FETCH, url, json.dumps(headers or {})))


def main_pid(host):
    return target.main_pid(host, "openrefine")


def answers(host):
    return fetch(host, BASE + "command/core/get-version")["status"] == 200


def test_service_is_active_and_enabled(host):
    target.assert_active_and_enabled(host, "openrefine")


def test_java_is_the_main_process_and_runs_as_the_course_user(host):
    pid = target.assert_main_process_runs_as(host, "openrefine", USER)
    assert host.check_output("ps -o comm= -p %s", str(pid)).strip() == "java"
    # Every process of the unit runs as the course user.
    units = [line.split() for line in host.check_output("ps -e -o unit=,user=").splitlines()]
    users = {user for unit, user in units if unit == "openrefine.service"}
    assert users == {USER}


def test_listens_on_loopback_port_3334_only(host):
    assert target.listening_addresses(host, main_pid(host)) == ["127.0.0.1:3334"]


def test_front_page_is_openrefine(host):
    page = fetch(host, BASE)
    assert page["status"] == 200
    assert page["content_type"].startswith("text/html")
    assert "<title>OpenRefine</title>" in page["body"]


def test_version_command_answers_json(host):
    answer = fetch(host, BASE + "command/core/get-version")
    assert answer["status"] == 200
    assert "json" in answer["content_type"]
    version = json.loads(answer["body"])
    assert version["version"].startswith("3."), version
    assert version["full_name"].startswith("OpenRefine"), version


def test_a_foreign_host_header_is_refused(host):
    # OpenRefine's guard against DNS rebinding stays on: only loopback names are served.
    assert fetch(host, BASE, {"Host": "attacker.example"})["status"] != 200
    assert fetch(host, BASE, {"Host": "localhost:3334"})["status"] == 200


def test_openrefine_logs_to_the_journal_and_runs_headless(host):
    log = host.check_output("journalctl -u openrefine --no-pager -b")
    assert "Starting Server bound to '127.0.0.1:3334'" in log
    assert "Running in headless mode" in log
    assert "No appenders could be found" not in log.rsplit("Picked up JAVA_TOOL_OPTIONS", 1)[-1]


def test_workspace_belongs_to_the_course_user(host):
    folder = host.file(WORKSPACE)
    assert folder.is_directory and folder.user == USER and folder.group == "users"
    assert folder.mode == 0o750


def test_systemd_brings_openrefine_back_after_kill_9(host):
    target.assert_back_after_kill_9(host, "openrefine", answers, timeout=180, interval=2)


def test_workspace_comes_back_after_deletion_and_restart(host):
    target.assert_folder_made_again_on_restart(host, "openrefine", WORKSPACE, USER, answers, timeout=180, interval=2)


@pytest.mark.parametrize("setting", ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                                     "Restart=on-failure", "User=oustudent", "StateDirectory=openrefine",
                                     "ReadWritePaths=/var/lib/openrefine"])
def test_unit_is_hardened(host, setting):
    key, value = setting.split("=")
    assert host.check_output("systemctl show -p %s --value openrefine", key) == value
