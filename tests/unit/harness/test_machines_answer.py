"""machines.py answer: ranges it must refuse before it touches a route (no machine needed for these)."""

import importlib.util
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "machines" / "machines.py"
spec = importlib.util.spec_from_file_location("coursevm_machines", HERE)
machines = importlib.util.module_from_spec(spec)
spec.loader.exec_module(machines)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="machines.py runs as root only")


@pytest.mark.parametrize("cidr, expected", [
    ("172.24.4.1/24", "has host bits set"),
    ("not-a-network", "is not an IPv4 network address"),
    ("fd00::/64", "is not an IPv4 network address"),
    ("172.16.0.0/12", "larger than a /16"),
    ("10.231.7.0/24", "overlaps 10.231.0.0/16"),
    ("127.1.0.0/16", "overlaps 127.0.0.0/8"),
    ("169.254.1.0/24", "overlaps 169.254.0.0/16"),
])
def test_answer_refuses_unsafe_ranges(cidr, expected, monkeypatch):
    touched = []
    monkeypatch.setattr(machines, "run", lambda *a, **k: touched.append(a))
    with pytest.raises(machines.Fail, match=expected):
        machines.answer("nobody-here", cidr)
    assert touched == []  # refused before any `ip` command


def test_answer_needs_a_running_machine(monkeypatch, tmp_path):
    monkeypatch.setattr(machines, "RUN_DIR", tmp_path)
    with pytest.raises(machines.Fail, match="is not running"):
        machines.answer("nobody-here", "172.24.4.0/24")
