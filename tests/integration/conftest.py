"""What the integration tests share: tests/support on sys.path, and a course's controller-side credentials."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import role_check  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture()
def course(tmp_path):
    """The credentials role's controller side in a fresh folder (role_check.credentials_course)."""
    return role_check.credentials_course(tmp_path)
