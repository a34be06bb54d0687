"""The skip guard of CI (tests/pytest_plugins/coursevm_skip_guard.py): a skipped test fails the run unless the
allow-list allows that skip; an allowed one, a passing run and an xfail do not."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = ROOT / "tests" / "pytest_plugins"

TESTS = '''
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("needs a thing that is missing")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def run(tmp_path, allow_text, tests=TESTS):
    (tmp_path / "test_sample.py").write_text(tests)
    allow = tmp_path / "allowed.txt"
    allow.write_text(allow_text)
    env = dict(os.environ, PYTHONPATH=str(PLUGINS), COURSEVM_SKIPS_ALLOWED=str(allow), PYTEST_ADDOPTS="")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "coursevm_skip_guard", "-p", "no:cacheprovider",
                           str(tmp_path / "test_sample.py")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)


def test_a_skip_that_is_not_allowed_fails_the_run_and_is_named(tmp_path):
    result = run(tmp_path, "# nothing allowed\n")
    assert result.returncode == 1, result.stdout
    assert "test_sample.py::test_skips" in result.stdout


def test_an_allowed_skip_passes(tmp_path):
    result = run(tmp_path, "*test_sample.py::test_skips | needs a thing* | the thing is made elsewhere\n")
    assert result.returncode == 0, result.stdout
    # The summary says what was skipped and why (e.g. molecule/mongodb's "mongod not started").
    assert "1 skipped: needs a thing that is missing" in result.stdout


def test_the_reason_must_match_too(tmp_path):
    result = run(tmp_path, "*test_sample.py::test_skips | another reason | no\n")
    assert result.returncode == 1, result.stdout


def test_no_skip_no_failure(tmp_path):
    result = run(tmp_path, "", tests="def test_passes():\n    assert True\n")
    assert result.returncode == 0, result.stdout


def test_a_malformed_allow_list_line_is_a_usage_error(tmp_path):
    result = run(tmp_path, "*test_sample.py::test_skips | needs a thing*\n")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr


def test_the_repository_allow_list_is_well_formed():
    sys.path.insert(0, str(PLUGINS))
    try:
        import coursevm_skip_guard  # pylint: disable=import-outside-toplevel
    finally:
        sys.path.remove(str(PLUGINS))
    rules = coursevm_skip_guard.read_allow_list(ROOT / "tests" / "skips-allowed.txt")
    assert rules and all(node and reason for node, reason in rules)
