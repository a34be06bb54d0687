"""machines.py answer: ranges it must refuse before it touches a route (no machine needed for these)."""

import importlib.util
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "machines" / "machines.py"
spec = importlib.util.spec_from_file_location("coursevm_machines", HERE)
machines = importlib.util.module_from_spec(spec)
spec.loader.exec_module(machines)
# machines.py is the command line; the code sits in machinelib/, so patches go to the module whose code looks the
# name up: network.py for answer, layers.py for derived images, common.py for the state locations (read there at
# call time by every module).
common, layers, network = machines.common, machines.layers, machines.network

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
    monkeypatch.setattr(network, "run", lambda *a, **k: touched.append(a))
    with pytest.raises(machines.Fail, match=expected):
        network.answer("nobody-here", cidr)
    assert touched == []  # refused before any `ip` command


def test_answer_needs_a_running_machine(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "RUN_DIR", tmp_path)
    with pytest.raises(machines.Fail, match="is not running"):
        network.answer("nobody-here", "172.24.4.0/24")


def test_answer_takes_one_address(monkeypatch, tmp_path):
    """A floating IP is answered as a /32: its only address is the probe, not net[1]/net[-2]."""
    calls = []
    monkeypatch.setattr(common, "RUN_DIR", tmp_path)
    monkeypatch.setattr(network, "running_state", lambda name: {"name": name, "veth": "cvmh9", "netns": "cvm-x",
                                                                "address": "10.231.9.2"})
    monkeypatch.setattr(network, "save_state", lambda st: None)
    monkeypatch.setattr(network, "route_device", lambda address: calls.append(str(address)) or "cvmh9")

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return type("P", (), {"stdout": "[]", "returncode": 0})()
    monkeypatch.setattr(network, "run", fake_run)
    assert network.answer("vm-x", "172.24.4.9/32") is True
    assert "172.24.4.9" in calls
    assert ["ip", "route", "replace", "172.24.4.9/32", "via", "10.231.9.2", "dev", "cvmh9"] in calls


@pytest.mark.parametrize("image", ["base-image", "derived-", "derived-UPPER", "derived-a/b", "../derived-x"])
def test_derived_image_names_are_checked(image):
    with pytest.raises(machines.Fail, match="invalid derived image name"):
        layers.check_derived_name(image)


def test_a_derived_image_that_lost_a_layer_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "CACHE", tmp_path)
    (tmp_path / "derived-a").mkdir()
    (tmp_path / "derived-a" / "manifest.json").write_text(
        '{"base": "%s", "layers": ["%s"]}' % (tmp_path / "image-x", tmp_path / "gone"))
    with pytest.raises(machines.Fail, match="which is gone"):
        layers.image_layers("derived-a")
    with pytest.raises(machines.Fail, match="no derived image"):
        layers.image_layers("derived-b")


def test_forget_refuses_an_image_a_target_runs_on(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "CACHE", tmp_path)
    monkeypatch.setattr(common, "RUN_DIR", tmp_path / "run")
    (tmp_path / "derived-a").mkdir()
    (tmp_path / "derived-a" / "manifest.json").write_text('{"base": "b", "layers": []}')
    monkeypatch.setattr(layers, "all_states", lambda: [{"name": "vm-1",
                                                        "layers": [str(tmp_path / "derived-a" / "upper")]}])
    with pytest.raises(machines.Fail, match="in use by vm-1"):
        layers.forget("derived-a")
    assert (tmp_path / "derived-a").is_dir()
    monkeypatch.setattr(layers, "all_states", lambda: [])
    assert layers.forget("derived-a") is True
    assert not (tmp_path / "derived-a").exists()
