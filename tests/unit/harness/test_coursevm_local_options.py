"""./coursevm local -e NAME=VALUE: bad options are refused before anything runs (no setup, no cloud, nothing
written), the refusal names the option, and a value (which may be a secret) is never printed.

Each test runs the real script from a temporary copy, with an `id` that says root and an apt-get, dpkg-query and
python3 that fail loudly if reached: a refusal must come before any of them."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cret-value-never-printed"


@pytest.fixture
def checkout(tmp_path):
    copy = tmp_path / "checkout"
    copy.mkdir()
    (copy / "coursevm").write_bytes((ROOT / "coursevm").read_bytes())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("id", "echo 0\n"), ("apt-get", "exit 97\n"), ("dpkg-query", "exit 97\n"),
                       ("python3", "exit 97\n")):
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return copy


def local(checkout, *args):
    env = {"PATH": "%s:/usr/bin:/bin" % (checkout.parent / "bin"), "HOME": str(checkout.parent)}
    return subprocess.run(["bash", str(checkout / "coursevm"), "local", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("option, named", [
    ("Jupyter_base_url=/x/", None),  # not an option's name
    ("jupyter_password", None),  # no value
    ("=" + SECRET, None),  # no name
    ("cohort_course=" + SECRET, "cohort_course"),  # the command sets it itself
    ("credentials_secrets_dir=/tmp/" + SECRET, "credentials_secrets_dir"),
    ("cohort_admin_private_key_file=" + SECRET, "cohort_admin_private_key_file"),
    ("jupyter_password=" + SECRET + "\nmore", "jupyter_password"),  # a line break
])
def test_a_bad_option_is_refused_before_anything_runs(checkout, option, named):
    result = local(checkout, "--students", "2", "-e", "jupyter_base_url=/jupyter/", "-e", option)
    assert result.returncode == 1
    assert result.stderr.startswith("coursevm: -e")
    if named:
        assert named in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert not (checkout / ".build").exists()


def test_e_without_a_value_is_refused(checkout):
    result = local(checkout, "-e")
    assert result.returncode == 1 and result.stderr.startswith("coursevm: -e")
    assert not (checkout / ".build").exists()
