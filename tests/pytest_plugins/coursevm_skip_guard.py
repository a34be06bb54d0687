"""A skipped test in CI is a hole: CI installs everything, so a test that skips did not test what it says.

Loaded into every pytest run of tests/run.sh (PYTEST_ADDOPTS="-p coursevm_skip_guard", also the Molecule
scenarios' testinfra runs), this plugin fails the run when a test was skipped, unless the skip is on the
allow-list tests/skips-allowed.txt (COURSEVM_SKIPS_ALLOWED names another file), where each allowed skip has
its reason written down:

    <node id pattern> | <skip reason pattern> | <why this skip is no hole>

Both patterns are fnmatch patterns (``*`` for anything); the node id is matched as pytest prints it and, for
tests run from another folder (Molecule's), also by its ending. Lines starting with ``#`` are comments.
"""

import fnmatch
import os
from pathlib import Path

import pytest

DEFAULT_ALLOW_LIST = Path(__file__).resolve().parents[1] / "skips-allowed.txt"


def read_allow_list(path):
    """[(node id pattern, reason pattern)] of the allow-list; a line without its three fields is an error."""
    rules = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 3 or not all(fields):
            raise pytest.UsageError("%s:%d: an allowed skip is '<node id pattern> | <reason pattern> | <why>'"
                                    % (path, number))
        rules.append((fields[0], fields[1]))
    return rules


def allowed(nodeid, reason, rules):
    for node_pattern, reason_pattern in rules:
        node_ok = fnmatch.fnmatchcase(nodeid, node_pattern) or fnmatch.fnmatchcase(nodeid, "*" + node_pattern.lstrip("*"))
        if node_ok and fnmatch.fnmatchcase(reason, reason_pattern):
            return True
    return False


def skip_reason(report):
    """The reason pytest gives for a skipped report ("Skipped: ..." stripped)."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


class SkipGuard:
    def __init__(self, rules):
        self.rules = rules
        self.holes = []
        # reason -> how many allowed skips gave it: the summary says what was not tested, not only how much.
        self.allowed = {}

    def pytest_runtest_logreport(self, report):
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = skip_reason(report)
        if allowed(report.nodeid, reason, self.rules):
            self.allowed[reason] = self.allowed.get(reason, 0) + 1
        else:
            self.holes.append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter):
        if self.allowed:
            terminalreporter.write_line("coursevm skip guard: %d skip(s) on the allow-list:"
                                        % sum(self.allowed.values()))
            for reason, count in sorted(self.allowed.items()):
                terminalreporter.write_line("  %d skipped: %s" % (count, reason))
        if self.holes:
            terminalreporter.section("skipped tests that are not allowed (tests/skips-allowed.txt)", red=True)
            for nodeid, reason in self.holes:
                terminalreporter.write_line("%s: %s" % (nodeid, reason))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.holes and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    path = os.environ.get("COURSEVM_SKIPS_ALLOWED") or str(DEFAULT_ALLOW_LIST)
    config.pluginmanager.register(SkipGuard(read_allow_list(path)), "coursevm_skip_guard_instance")
