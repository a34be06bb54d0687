"""./coursevm setup (and tests/run.sh's sanity venv): a pip install that fails fails the command and leaves no
stamp (no venv), so the next run tries again.

Each test runs the real script from a temporary copy of the checkout's files it reads (requirements.txt,
tests/requirements.txt), with dpkg-query standing in so no apt package is looked for, and either a stand-in venv
python whose pip answers as told, or a real venv whose pip looks for packages on a closed loopback port. Nothing
leaves this machine: proxies are unset and pip's only index is 127.0.0.1:9.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STAMP = ".coursevm-requirements"

# A venv python that only logs how it was called; pip's install of the requirements fails when PIP_FAILS says so.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
case "$*" in
  "-m pip install"*" -r "*) echo "WARNING: Location noise"; [ "$PIP_FAILS" = requirements ] && exit 1; exit 0 ;;
  "-m pip install"*) echo "WARNING: Location noise"; [ "$PIP_FAILS" = pip ] && exit 1; exit 0 ;;
  "-m pip check") exit 0 ;;
  "-c "*) echo /nonexistent ;;
esac
"""


@pytest.fixture
def checkout(tmp_path):
    """A copy of what `setup` reads, and a bin folder whose dpkg-query says every package is installed and whose
    apt-get fails (it must not be reached)."""
    copy = tmp_path / "checkout"
    (copy / "tests").mkdir(parents=True)
    shutil.copy2(ROOT / "coursevm", copy / "coursevm")
    shutil.copy2(ROOT / "requirements.txt", copy / "requirements.txt")
    shutil.copy2(ROOT / "tests" / "requirements.txt", copy / "tests" / "requirements.txt")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("dpkg-query", "printf 'install ok installed'\n"), ("apt-get", "exit 97\n")):
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return copy


def setup(checkout, venv, **env):
    clean = dict((k, v) for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("PIP_"))
    clean.update(PATH="%s:%s" % (checkout.parent / "bin", clean["PATH"]), COURSEVM_VENV=str(venv),
                 COURSEVM_PYTHON=sys.executable, NO_PROXY="*", no_proxy="*", PIP_CONFIG_FILE=os.devnull,
                 PIP_INDEX_URL="http://127.0.0.1:9/", PIP_RETRIES="0", PIP_TIMEOUT="2", PIP_NO_CACHE_DIR="1",
                 PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    clean.update(env)
    return subprocess.run(["bash", str(checkout / "coursevm"), "setup"], env=clean, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PYTHON)
    (venv / "bin" / "python").chmod(0o755)
    return venv


@pytest.mark.parametrize("failing", ["requirements", "pip"])
def test_a_failed_pip_install_fails_setup_and_writes_no_stamp(checkout, fake_venv, failing):
    result = setup(checkout, fake_venv, PIP_FAILS=failing)
    assert result.returncode != 0, result
    assert not (fake_venv / STAMP).exists()
    assert "-m pip check" not in (fake_venv / "calls.log").read_text()  # stopped at the failure


def test_a_failed_install_is_tried_again_on_the_next_run(checkout, fake_venv):
    (fake_venv / STAMP).write_text("0123456789abcdef\n")  # from other requirements
    assert setup(checkout, fake_venv, PIP_FAILS="requirements").returncode != 0
    assert (fake_venv / STAMP).read_text() == "0123456789abcdef\n"
    (fake_venv / "calls.log").unlink()
    assert setup(checkout, fake_venv, PIP_FAILS="").returncode == 0
    assert " -r " in (fake_venv / "calls.log").read_text()


def test_a_successful_install_whose_output_is_all_filtered_writes_the_stamp_once(checkout, fake_venv):
    first = setup(checkout, fake_venv, PIP_FAILS="")
    assert first.returncode == 0, first
    assert (fake_venv / STAMP).exists()
    (fake_venv / "calls.log").unlink()
    assert setup(checkout, fake_venv, PIP_FAILS="").returncode == 0
    assert "pip install" not in (fake_venv / "calls.log").read_text()  # up to date: nothing installed again


def test_real_pip_with_an_unreachable_index_fails_setup(checkout, tmp_path):
    """The issue's case end to end: a new venv, real pip, no index to reach (a closed loopback port)."""
    venv = tmp_path / "real-venv"
    result = setup(checkout, venv)
    assert (venv / "bin" / "python").exists(), result  # the venv was made, so it was pip that failed
    assert result.returncode != 0, result
    assert not (venv / STAMP).exists()


def test_run_sh_stops_and_drops_the_sanity_venv_when_its_install_fails(tmp_path):
    """tests/run.sh's sanity venv step, cut out of the script (it cannot run alone: lint and the build come first),
    with a `python` whose venvs' pip fails: the step fails and leaves no venv that a later run would take as ready."""
    text = (ROOT / "tests" / "run.sh").read_text()
    start = text.index('if [ "$("$SANITY_VENV/bin/ansible-test" --version')
    block = text[start:text.index("\nfi\n", start) + 4]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(
        '#!/bin/sh\n[ "$1 $2 $3" = "-m venv --clear" ] || exit 98\nmkdir -p "$4/bin"\n'
        'printf \'#!/bin/sh\\necho "WARNING: Location noise"\\nexit 1\\n\' > "$4/bin/python"\nchmod +x "$4/bin/python"\n')
    (bin_dir / "python").chmod(0o755)
    venv = tmp_path / "sanity-venv"
    script = "set -euo pipefail\nSANITY_VENV=%s\ncore=2.19.0\n%s\necho after > %s\n" % (
        venv, block, tmp_path / "after")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0, result
    assert not venv.exists() and not (tmp_path / "after").exists()
