"""roles/jupyter/files/venv_requirements.py: what decides whether pip runs on a re-run (entry point venv_packages).

Run here with the test venv's own Python, as the role runs it with Jupyter's venv's Python.
"""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[4] / "roles" / "jupyter" / "files" / "venv_requirements.py"


def check(*specifiers):
    result = subprocess.run([sys.executable, "-c", SCRIPT.read_text(), *specifiers],
                            capture_output=True, text=True, timeout=60, check=False)
    return result.returncode, json.loads(result.stdout)


def test_installed_requirements_and_their_dependencies_are_met():
    rc, out = check("pytest>=7", "PyYAML")
    assert rc == 0 and out["missing"] == []
    # pytest's own dependencies were followed too.
    assert {"pytest", "pyyaml", "pluggy", "iniconfig"} <= set(out["installed"])


def test_a_missing_package_or_another_version_makes_pip_run():
    rc, out = check("pytest<1", "no-such-distribution-coursevm>=1")
    assert rc == 1
    assert out["missing"][0].startswith("no-such-distribution-coursevm>=1")
    assert any(item.startswith("pytest<1 (") for item in out["missing"]), out


def test_markers_that_do_not_apply_are_ignored():
    rc, out = check('no-such-distribution-coursevm; python_version < "3"', "pytest")
    assert rc == 0 and out["missing"] == []


def test_an_extra_a_package_does_not_have_asks_for_nothing_more():
    # As pip: it warns and installs the package alone.
    rc, out = check("pytest[no-such-extra-coursevm]")
    assert rc == 0, out
