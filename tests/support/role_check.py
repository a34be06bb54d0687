"""Bad-input tests of a role: run it on the controller itself, in check mode as a second guard, and check
that a bad value stops the play at the role's checks, before any task that would change anything."""

import json
import os
import re
import shutil
import subprocess
import textwrap

import pytest


def write_playbook(folder, role):
    """A play that runs `role` on localhost over the local connection; returns its path."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook not on PATH: run through ./coursevm test")
    path = folder / "play.yml"
    path.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          roles:
            - %s
        """ % role))
    return path


def run_check(playbook, extra_vars, verbosity=None, options=()):
    """ansible-playbook --check with extra_vars as JSON (and a `verbosity` such as "-vvv", or more `options`);
    the plain-text output, uncoloured."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "--check", *options, str(playbook),
         "-e", json.dumps(extra_vars)] + ([verbosity] if verbosity else []),
        capture_output=True, text=True, env=env, timeout=300, check=False)


def assert_refused(result, message, first_change):
    """The play failed with `message`, changed nothing, and never reached the task named `first_change`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in re.sub(r"\s+", " ", output), output
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert recap and recap.group(1) == "0", output
    assert first_change not in output


def assert_refused_before(result, first_change):
    """The play failed, changed nothing, and never reached the task named `first_change` (what a test asserts
    when the refusal's wording is not the point)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert recap and recap.group(1) == "0", output
    assert first_change not in output, output
    return output


def refusal(playbook, extra_vars, first_change):
    """Run like run_check, with the JSON callback; assert the play was refused before the task named
    `first_change` with nothing changed, and return (name of the task that refused, its message)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "--check", str(playbook), "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    # The JSON document, without the lines profile_tasks (ansible.cfg) writes around it.
    report = json.loads(re.search(r"^\{$.*^\}$", result.stdout, re.M | re.S).group(0))
    assert report["stats"]["localhost"]["changed"] == 0, result.stdout
    tasks = [task for play in report["plays"] for task in play["tasks"]]
    assert first_change not in [task["task"]["name"] for task in tasks], result.stdout
    failed = [task for task in tasks if task["hosts"].get("localhost", {}).get("failed")]
    assert failed, result.stdout
    host = failed[-1]["hosts"]["localhost"]
    # A loop's message is in its failed item.
    messages = [host.get("msg", "")] + [item.get("msg", "") for item in host.get("results", []) if item.get("failed")]
    return failed[-1]["task"]["name"], " ".join(m for m in messages if isinstance(m, str))
