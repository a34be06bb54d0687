"""Helpers for testinfra checks of a converged test machine (molecule/<scenario>/tests).

Import from a scenario's tests with:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
    import target
"""

import time


def main_pid(host, unit):
    """The main process id of a systemd unit on the target (0 when it is not running)."""
    return int(host.check_output("systemctl show -p MainPID --value %s", unit))


def wait_until(predicate, timeout=60, interval=1.0):
    """Poll predicate until it returns true or timeout seconds pass; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def listening_addresses(host, pid):
    """The TCP addresses (ADDR:PORT) the process `pid` listens on, from ss."""
    sockets = host.check_output("ss -Hltnp")
    return [line.split()[3] for line in sockets.splitlines() if "pid=%d," % pid in line]


def assert_back_after_kill_9(host, unit, answers, timeout=60, interval=1.0):
    """Kill the unit's main process with SIGKILL; systemd must start a new one that answers again
    (`answers(host)` true) within `timeout` seconds."""
    before = main_pid(host, unit)
    host.run_test("kill -9 %s", str(before))
    assert wait_until(lambda: main_pid(host, unit) not in (0, before) and answers(host), timeout, interval), \
        "%s did not come back" % unit


def assert_folder_made_again_on_restart(host, unit, folder, user, answers, timeout=60, interval=1.0):
    """Remove the unit's `folder` and restart it: systemd (not the role) makes the folder again, owned by `user`,
    and the unit answers again. Returns the folder (a testinfra File) for further checks."""
    host.run_test("rm -rf %s", folder)
    assert not host.file(folder).exists
    host.run_test("systemctl restart %s", unit)
    assert wait_until(lambda: answers(host), timeout, interval), "%s did not restart" % unit
    made = host.file(folder)
    assert made.is_directory and made.user == user
    return made


def assert_active_and_enabled(host, unit):
    """The unit runs now and starts at boot."""
    service = host.service(unit)
    assert service.is_running, "%s is not running" % unit
    assert service.is_enabled, "%s is not enabled" % unit


def assert_main_process_runs_as(host, unit, user):
    """The unit's main process exists and runs as `user`; returns its pid."""
    pid = main_pid(host, unit)
    assert pid > 0, "%s has no main process" % unit
    assert host.check_output("ps -o user= -p %s", str(pid)).strip() == user
    return pid
