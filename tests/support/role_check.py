"""Run a role on the controller itself, for the integration tests: bad-input tests run it in check mode as a
second guard and check that a bad value stops the play at the role's checks, before any task that would change
anything; the credentials tests run its controller-side task files for real (credentials_course)."""

import json
import os
import re
import shutil
import subprocess
import textwrap

import pytest


def write_playbook(folder, role, tasks_from=()):
    """A play that runs `role` on localhost over the local connection (only the task files `tasks_from`, in
    order, when given); returns its path."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook not on PATH: run through ./coursevm test")
    path = folder / "play.yml"
    play = textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
        """)
    if tasks_from:
        play += ("  tasks:\n"
                 "    - ansible.builtin.include_role:\n"
                 "        name: %s\n"
                 "        tasks_from: \"{{ item }}\"\n"
                 "      loop: %s\n" % (role, json.dumps(list(tasks_from))))
    else:
        play += "  roles:\n    - %s\n" % role
    path.write_text(play)
    return path


def run_playbook(playbook, extra_vars, verbosity=None, options=(), timeout=300):
    """ansible-playbook on localhost with extra_vars as JSON (and a `verbosity` such as "-vvv", or more
    `options`); the CompletedProcess, its output plain text, uncoloured."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", *options, str(playbook),
         "-e", json.dumps(extra_vars)] + ([verbosity] if verbosity else []),
        capture_output=True, text=True, env=env, timeout=timeout, check=False)


def run_check(playbook, extra_vars, verbosity=None, options=()):
    """run_playbook in check mode."""
    return run_playbook(playbook, extra_vars, verbosity, ("--check", *options))


def credentials_course(folder):
    """The credentials role's controller side (validate, secrets, handout task files: they never touch a VM) as
    a play in `folder`, with an ansible-vault password file: {"play", "vault", "dir" (the secrets folder)}."""
    folder.mkdir(parents=True, exist_ok=True)
    play = write_playbook(folder, "coursevm.openstack.credentials", ["validate.yml", "secrets.yml", "handout.yml"])
    vault = folder / "vault-pass"
    vault.write_text("a vault password for the test\n")
    return {"play": play, "vault": vault, "dir": folder / "secrets"}


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
