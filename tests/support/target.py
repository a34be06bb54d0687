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
