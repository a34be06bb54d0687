"""deploy.yml as AWX and Automation Platform run it: through ansible-runner (the library their job runs use), with a
private data directory holding the extra variables, the environment and no command line. It is the README's main
job for the one-student course `./coursevm local` deployed (tests/e2e/conftest.py's local_job), given what that
command gives ansible-playbook; run again, so it must change nothing. Checked from runner's artifacts: the status
and return code, the event stream (a recap with no change and no failure for the student's VM and the controller),
and the handout path the job reports, which must name the 0600 handout holding the student's URL. It runs at -vvv,
as a CI log would keep it, and neither its output nor its events hold a secret the job made or was given (issue
14), nor does health.yml's at -vvv."""

import csv
import json
import os
import re
import stat
from pathlib import Path

import pytest

import day_two
import secret_sweep
from conftest import JOB_DIR, ROOT, machines_key, printed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")

COURSE = "local"
STUDENT = "student1"


def extravars():
    """What `./coursevm local` passes deploy.yml with -e (coursevm's `common` and `cohort_roster`)."""
    key = machines_key()
    found = {"cohort_course": COURSE, "cohort_admin_private_key_file": key,
             "credentials_secrets_dir": str(JOB_DIR / "secrets"), "cohort_roster": str(JOB_DIR / "roster.csv")}
    for name in ("admin-keys.json", "options.json"):
        found.update(json.loads((JOB_DIR / name).read_text()))
    return found


@pytest.fixture(scope="module")
def runner_job(local_job, tmp_path_factory):
    import ansible_runner

    assert local_job.returncode == 0, local_job.stdout[-3000:] + local_job.stderr[-3000:]
    # The day-two tools' settings, not their whole environment: runner is given only what the job needs.
    env = day_two.ansible_env()
    envvars = {key: env[key] for key in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "OS_CLIENT_CONFIG_FILE")}
    # runner starts ansible-playbook from PATH: the controller venv's, as AWX's execution environment has.
    envvars["PATH"] = "%s:%s" % (ROOT / ".venv" / "bin", os.environ["PATH"])
    private = tmp_path_factory.mktemp("runner")
    result = ansible_runner.run(private_data_dir=str(private), project_dir=str(ROOT / "playbooks"),
                                playbook=str(ROOT / "playbooks" / "deploy.yml"),
                                inventory=str(ROOT / "inventory" / "local"), extravars=extravars(),
                                envvars=envvars, quiet=True, timeout=1500, verbosity=3)
    events = list(result.events)
    return result, events


def test_runner_reports_success_and_keeps_its_artifacts(runner_job):
    result, events = runner_job
    assert (result.status, result.rc) == ("successful", 0), result.stdout.read()[-4000:]
    artifacts = Path(result.config.artifact_dir)
    assert (artifacts / "rc").read_text().strip() == "0"
    assert (artifacts / "status").read_text().strip() == "successful"
    assert sorted((artifacts / "job_events").glob("*.json")), "runner kept no event"
    # Every event is in the stream, in order, from the play's start to its recap.
    kinds = [e["event"] for e in events if e["event"] != "verbose"]
    assert kinds[0] == "playbook_on_start" and kinds[-1] == "playbook_on_stats", kinds[:3] + kinds[-3:]
    assert "runner_on_failed" not in kinds and "runner_on_unreachable" not in kinds


def test_deploy_through_runner_changes_nothing(runner_job):
    """A second run of the job, now through runner: provisioning and configuration find everything in place."""
    result = runner_job[0]
    host = "%s-%s" % (COURSE, STUDENT)
    assert host in result.stats["ok"] and "localhost" in result.stats["ok"], result.stats
    for count in ("changed", "failures", "dark"):
        assert not any(result.stats.get(count, {}).values()), (count, result.stats)


def test_the_handout_in_the_events_is_0600_and_keeps_the_printed_url_and_password(runner_job, local_job):
    events = runner_job[1]
    messages = [e["event_data"]["res"].get("msg", "") for e in events
                if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Say where the passwords are"]
    assert len(messages) == 1, [e["event_data"].get("task") for e in events if e["event"] == "runner_on_ok"]
    found = re.search(r"handout (/\S+?),", messages[0])
    assert found, messages[0]
    handout = Path(found.group(1))
    assert handout.parent == JOB_DIR / "secrets"
    assert stat.S_IMODE(handout.stat().st_mode) == 0o600
    with handout.open(newline="", encoding="utf-8-sig") as rows:  # with a BOM, for spreadsheet programs
        found = dict((row["student"], (row["url"], row["jupyter_password"])) for row in csv.DictReader(rows))
    # The second run kept the URL and the password the first run printed.
    assert found == {STUDENT: printed(local_job)}


def secrets():
    key = machines_key()
    found = secret_sweep.recorded(JOB_DIR / "secrets")
    # The job made a Jupyter and a Unix password at least; the sweep must see them to mean anything.
    assert sum("jupyter_password" in place or "unix_password" in place for place in found) >= 2, sorted(found)
    found.update(secret_sweep.private_key(key))
    return found


def test_nothing_secret_is_printed_at_vvv(runner_job):
    result, events = runner_job
    with open(Path(result.config.artifact_dir) / "stdout", encoding="utf-8") as stdout:
        text = stdout.read()
    assert "<localhost> EXEC" in text or "ESTABLISH" in text, "not a -vvv run"
    assert secret_sweep.printed(text + json.dumps(events), secrets()) == []


def test_health_prints_no_secret_at_vvv(runner_job):
    health = day_two.run(JOB_DIR / "inventory", "health.yml", "-vvv", "-e",
                         "health_report_dir=%s" % (JOB_DIR / "health-vvv"), timeout=900)
    assert health.returncode == 0, health.stdout[-3000:] + health.stderr[-3000:]
    assert secret_sweep.printed(health.stdout + health.stderr, secrets()) == []
