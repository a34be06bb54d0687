"""cloud.py kill / restart: argument parsing and what each does, with every process call faked (no cloud needed)."""

import contextlib
import importlib.util
import signal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "cloud" / "cloud.py"
spec = importlib.util.spec_from_file_location("coursevm_cloud_cli", HERE)
cloud = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cloud)
# cloud.py keeps the commands (kill and restart run there, so what they call is patched on cloud); the state
# locations live in cloudlib/common.py and the process-group helpers in cloudlib/processes.py (importable once
# cloud.py is loaded: it puts its folder on sys.path).
common = importlib.import_module("cloudlib.common")
processes = importlib.import_module("cloudlib.processes")


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Records what kill/restart would do to processes; nothing real is signalled or started."""
    made = []
    monkeypatch.setattr(common, "HOME", tmp_path)
    monkeypatch.setattr(common, "RUN", tmp_path / "run")
    monkeypatch.setattr(cloud, "locked", contextlib.nullcontext)
    monkeypatch.setattr(cloud.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cloud.os, "killpg", lambda pid, sig: made.append(("killpg", pid, sig)))
    monkeypatch.setattr(processes, "group_pids", lambda pgid: [])
    monkeypatch.setattr(cloud, "port_listener", lambda port: None)
    monkeypatch.setattr(cloud, "stop_process", lambda name, sig: made.append(("stop", name, sig)) or True)
    monkeypatch.setattr(cloud, "start_service", lambda name: made.append(("start", name)))
    monkeypatch.setattr(cloud, "start_mariadb", lambda: made.append(("start", "mariadb")))
    monkeypatch.setattr(cloud, "wait_answering", lambda names: made.append(("wait", *names)))
    return made


@pytest.mark.parametrize("argv", [["kill", "neutron"], ["restart", "neutron"], ["kill", "mariadb"],
                                  ["restart", "keystone"], ["kill", "nova"]])
def test_kill_and_restart_take_one_service(argv):
    args = cloud.build_parser().parse_args(argv)
    assert (args.command, args.service) == tuple(argv)


@pytest.mark.parametrize("argv", [["kill"], ["restart"], ["kill", "rabbitmq"], ["kill", "neutron", "nova"]])
def test_bad_service_arguments_are_usage_errors(argv, calls, capsys):
    with pytest.raises(SystemExit) as exit_:
        cloud.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: cloud.py ") and "error: " in err
    assert calls == []


def test_kill_sends_sigkill_to_the_process_group(calls, monkeypatch):
    monkeypatch.setattr(cloud, "running_pid", lambda name: 4242 if name == "neutron" else None)
    assert cloud.main(["kill", "neutron"]) == 0
    assert calls == [("killpg", 4242, signal.SIGKILL)]


def test_kill_of_a_service_that_is_not_running_fails(calls, monkeypatch, capsys):
    monkeypatch.setattr(cloud, "running_pid", lambda name: None)
    assert cloud.main(["kill", "neutron"]) == 1
    assert capsys.readouterr().err.strip() == "cloud.py kill: neutron is not running"
    assert calls == []


def test_restart_starts_the_service_and_waits_until_it_answers(calls, monkeypatch):
    monkeypatch.setattr(cloud, "running_pid", lambda name: 1 if name == "mariadb" else None)
    assert cloud.main(["restart", "neutron"]) == 0
    # stop_process is a no-op for a killed service; uwsgi ends on SIGINT (SIGTERM would reload it)
    assert calls == [("stop", "neutron", signal.SIGINT), ("start", "neutron"), ("wait", "neutron")]


def test_restart_of_mariadb_stops_it_with_sigterm(calls, monkeypatch):
    monkeypatch.setattr(cloud, "running_pid", lambda name: 1)
    assert cloud.main(["restart", "mariadb"]) == 0
    assert calls == [("stop", "mariadb", signal.SIGTERM), ("start", "mariadb")]


def test_restart_of_nova_is_refused_with_the_reason(calls, capsys):
    assert cloud.main(["restart", "nova"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cloud.py restart: refusing to restart nova: nova keeps its fake servers in its")
    assert "cloud.py stop` and `cloud.py start`" in err
    assert calls == []


def test_restart_without_mariadb_fails_before_starting_anything(calls, monkeypatch, capsys):
    monkeypatch.setattr(cloud, "running_pid", lambda name: None)
    assert cloud.main(["restart", "neutron"]) == 1
    assert "MariaDB is not running" in capsys.readouterr().err
    assert calls == []


def test_restart_refuses_a_taken_port(calls, monkeypatch, capsys):
    monkeypatch.setattr(cloud, "running_pid", lambda name: 1 if name == "mariadb" else None)
    monkeypatch.setattr(cloud, "port_listener", lambda port: "LISTEN 0 100 127.0.0.1:%d users:((\"other\"))" % port)
    assert cloud.main(["restart", "neutron"]) == 1
    assert "cannot start neutron: 127.0.0.1:9696 is taken" in capsys.readouterr().err
    assert calls == [("stop", "neutron", signal.SIGINT)]
