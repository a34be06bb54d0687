"""Run a role on the controller itself, for the integration tests: bad-input tests run it in check mode as a
second guard and check that a bad value stops the play at the role's checks, before any task that would change
anything; the credentials tests run its controller-side task files for real (credentials_course)."""

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap

import pytest
import yaml


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
    `options`); the CompletedProcess, its output plain text, uncoloured. In a batch's recording pass it runs
    nothing: it stops the test (Recorded), so a case the batch leaves out runs once, in the test's own run."""
    if _BATCH.recording:
        raise Recorded(str(playbook))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", *options, str(playbook),
         "-e", json.dumps(extra_vars)] + ([verbosity] if verbosity else []),
        capture_output=True, text=True, env=env, timeout=timeout, check=False)


def run_check(playbook, extra_vars, verbosity=None, options=()):
    """run_playbook in check mode (answered from the module's batch when it ran this case: see Batch)."""
    if not verbosity and not options:
        outcome = _BATCH.answer("check", playbook, extra_vars)
        if outcome is not None:
            return outcome.completed()
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


def role_playbook(role, tasks_from=(), name="playbook"):
    """A module-scoped fixture called `name`: the play write_playbook makes for `role` (only the task files
    `tasks_from`, when given), written once per module.

        playbook = role_check.role_playbook("coursevm.openstack.postgresql")
        checks_only = role_check.role_playbook("coursevm.openstack.postgresql", ["validate.yml"], "checks_only")
    """
    @pytest.fixture(scope="module", name=name)
    def fixture(tmp_path_factory):
        return write_playbook(tmp_path_factory.mktemp(role.rsplit(".", 1)[-1] + "-" + name), role, tasks_from)
    return fixture


def assert_secret_refused(playbook, extra_vars, option, secret, first_change):
    """A bad secret is refused before `first_change` and, even at -vvv, the output names `option` but never holds
    the secret."""
    output = assert_refused_before(run_check(playbook, extra_vars, "-vvv"), first_change)
    assert option in output, output
    assert secret not in output, output


def assert_refused_naming(playbook, extra_vars, options, first_change):
    """refusal()'s checks, and its message names each of `options` (an option's name, never a value); returns
    the message."""
    _task, message = refusal(playbook, extra_vars, first_change)
    for option in options:
        assert option in message, message
    return message


def refusal(playbook, extra_vars, first_change):
    """Run like run_check, with the JSON callback; assert the play was refused before the task named
    `first_change` with nothing changed, and return (name of the task that refused, its message)."""
    outcome = _BATCH.answer("refusal", playbook, extra_vars)
    if outcome is not None:
        return outcome.refusal(first_change)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "--check", str(playbook), "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    # The JSON document, without the lines profile_tasks (ansible.cfg) writes around it.
    report = json.loads(re.search(r"^\{$.*^\}$", result.stdout, re.M | re.S).group(0))
    return Outcome("localhost", report).refusal(first_change)


# Batches. Each ansible-playbook costs about 2 s of CPU before its first task (Python, Ansible and the collections
# loading), and the bad-input tests run hundreds of them. A test module that sets `BATCHED = True` has its cases
# run together first (tests/integration/conftest.py): every test of the module is called once in a recording pass,
# in which run_check and refusal only note their (playbook, extra_vars) and stop the test; then each playbook
# runs once in check mode over an inventory of one host per case, the case's values as that host's variables, all
# on the local connection. The real pass then answers each case from its host's part of the report, with the same
# assertions as a run of its own. A case the batch did not run (a test that needs a function-scoped fixture, a
# second call in one test, -vvv) runs on its own as before.
# Only for roles whose checks look at one host at a time: a run_once task or a check across hosts (credentials'
# handout, egress_proxy's tunnel) would see the other cases. Host variables rank below role vars/ and set_fact,
# unlike extra vars: the cases set role options (defaults), which host variables override as extra vars do.


class Recorded(Exception):
    """Raised in the recording pass where a test would run a playbook: the case is noted, the test stops."""


class Outcome:
    """One case's part of a batch's JSON report: its host's tasks, in order, and its stats."""

    def __init__(self, host, report):
        self.host = host
        self.tasks = [(task["task"]["name"], task["hosts"][host]) for play in report["plays"]
                      for task in play["tasks"] if host in task["hosts"]]
        self.stats = report["stats"].get(host, {})

    def failed(self):
        return bool(self.stats.get("failures") or self.stats.get("unreachable"))

    def refusal(self, first_change):
        """refusal()'s checks for this host: refused (a failed task), nothing changed, the task named
        `first_change` never reached; (name of the task that refused, its message)."""
        dump = json.dumps({"host": self.host, "tasks": self.tasks, "stats": self.stats}, indent=1)
        assert self.failed(), dump
        assert self.stats.get("changed", 0) == 0, dump
        assert first_change not in [name for name, _result in self.tasks], dump
        failed = [(name, result) for name, result in self.tasks if result.get("failed")]
        assert failed, dump
        name, result = failed[-1]
        # A loop's message is in its failed item.
        items = [item.get("msg", "") for item in result.get("results", []) if item.get("failed")]
        messages = [result.get("msg", "")] + items
        return name, " ".join(m for m in messages if isinstance(m, str))

    def completed(self):
        """A CompletedProcess as run_check's would be, its output in the default callback's shape (task
        headers, one status line each, a failure's messages and result, the recap line) for this host alone,
        named localhost."""
        lines = []
        for name, result in self.tasks:
            lines.append("TASK [%s] " % name + "*" * 20)
            if result.get("failed") or result.get("unreachable"):
                lines.append("fatal: [localhost]: FAILED! =>")
                for item in [result] + list(result.get("results", [])):
                    if isinstance(item, dict) and isinstance(item.get("msg"), str):
                        lines.append("  msg: " + item["msg"])
                lines.append(json.dumps(result, indent=2, sort_keys=True, default=str))
            elif result.get("skipped"):
                lines.append("skipping: [localhost]")
            else:
                lines.append(("changed" if result.get("changed") else "ok") + ": [localhost]")
        lines.append("PLAY RECAP " + "*" * 20)
        keys = ("ok", "changed", "unreachable", "failures", "skipped", "rescued", "ignored")
        lines.append("localhost : ok=%d changed=%d unreachable=%d failed=%d skipped=%d rescued=%d ignored=%d"
                     % tuple(self.stats.get(key, 0) for key in keys))
        return subprocess.CompletedProcess(["ansible-playbook", "(batch)"], 2 if self.failed() else 0,
                                           "\n".join(lines) + "\n", "")


class Batch:
    """The cases of one test module: noted in the recording pass, run one playbook at a time, then answered."""

    def __init__(self):
        self.recording = False
        self.cases = {}      # key -> (kind, playbook, extra_vars)
        self.outcomes = {}   # key -> Outcome

    @staticmethod
    def key(kind, playbook, extra_vars):
        return (kind, str(playbook), json.dumps(extra_vars, sort_keys=True, default=str))

    def answer(self, kind, playbook, extra_vars):
        """In the recording pass: note the case and stop the test. Afterwards: its Outcome, or None."""
        key = self.key(kind, playbook, extra_vars)
        if self.recording:
            self.cases.setdefault(key, (kind, playbook, extra_vars))
            raise Recorded(key)
        return self.outcomes.get(key)

    @contextlib.contextmanager
    def recording_pass(self):
        self.recording = True
        try:
            yield self
        finally:
            self.recording = False

    def run(self):
        """Each noted playbook once, over one host per case; a playbook that is not a plain play on localhost,
        or a run without a report, leaves its cases to run on their own."""
        by_playbook = {}
        for key, (_kind, playbook, extra_vars) in self.cases.items():
            by_playbook.setdefault(str(playbook), []).append((key, extra_vars))
        for playbook, cases in by_playbook.items():
            with open(playbook, encoding="utf-8") as source:
                plays = yaml.safe_load(source)
            if not isinstance(plays, list) or any(play.get("hosts") != "localhost" for play in plays):
                continue
            with tempfile.TemporaryDirectory(prefix="role-check-batch-") as folder:
                for play in plays:
                    play["hosts"] = "all"
                batch_play = os.path.join(folder, "play.yml")
                with open(batch_play, "w", encoding="utf-8") as out:
                    yaml.safe_dump(plays, out)
                hosts = dict(("case-%d" % number, dict(extra_vars, ansible_connection="local"))
                             for number, (_key, extra_vars) in enumerate(cases))
                inventory = os.path.join(folder, "inventory.json")
                with open(inventory, "w", encoding="utf-8") as out:
                    json.dump({"all": {"hosts": hosts}}, out)
                env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
                result = subprocess.run(["ansible-playbook", "-i", inventory, "--check", batch_play],
                                        capture_output=True, text=True, env=env, timeout=900, check=False)
            found = re.search(r"^\{$.*^\}$", result.stdout, re.M | re.S)
            if not found:
                continue
            report = json.loads(found.group(0))
            for number, (key, _extra_vars) in enumerate(cases):
                if "case-%d" % number in report["stats"]:
                    self.outcomes[key] = Outcome("case-%d" % number, report)

    def clear(self):
        self.cases.clear()
        self.outcomes.clear()


_BATCH = Batch()


def batch():
    """The module-wide Batch (one test module at a time per process: pytest-xdist's --dist loadfile)."""
    return _BATCH
