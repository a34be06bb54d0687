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


def run_check(playbook, extra_vars, options=()):
    """ansible-playbook --check with extra_vars as JSON (and `options`, e.g. "-vvv"); the plain-text output,
    uncoloured."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "--check", *options, str(playbook),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=300, check=False)


def assert_refused(result, message, first_change):
    """The play failed with `message`, changed nothing, and never reached the task named `first_change`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in re.sub(r"\s+", " ", output), output
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert recap and recap.group(1) == "0", output
    assert first_change not in output
