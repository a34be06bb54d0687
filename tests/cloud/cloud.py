"""A real OpenStack control plane on loopback, for tests: Keystone, Glance, Placement, Nova, Neutron.

    cloud.py install          install MariaDB (apt) and the OpenStack venv (PyPI); fast when done
    cloud.py start            start everything and print the path of clouds.yaml (a no-op when up)
    cloud.py stop [--purge]   stop every process this script started; --purge also drops all state
    cloud.py status           which services answer (exit 0 when all do, 3 otherwise)
    cloud.py kill SERVICE     SIGKILL the service's whole process group, as a crash would (fault tests)
    cloud.py restart SERVICE  stop SERVICE if it runs, start it again, wait until it answers (not nova)

Standard library only; Python 3.10+; must run as root. State lives in $COURSEVM_CLOUD_HOME
(default /var/lib/coursevm-cloud). See README.md next to this file for what is real and what is fake.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

# The package cloudlib/ sits next to this file. Run as a script, this file's folder is sys.path[0] already;
# loaded by path (importlib, as the unit tests do), it is not.
_FOLDER = str(Path(__file__).resolve().parent)
if _FOLDER not in sys.path:
    sys.path.insert(0, _FOLDER)

# pylint: disable=wrong-import-position
from cloudlib import common  # noqa: E402
from cloudlib.common import (DB_PORT, HOST, PORTS, SERVICES, STOP_TIMEOUT, Fail, http_status, locked, log,  # noqa: E402
                             port_listener)
from cloudlib.config import state_stamp, write_clouds_yaml, write_config  # noqa: E402
from cloudlib.install import cmd_install  # noqa: E402
from cloudlib.lifecycle import (all_up, baseline_valid, check_ports_free, cold_start, make_image,  # noqa: E402
                                restore_start, stop_all)
from cloudlib.processes import (group_alive, group_pids, pidfile, reap, rss_mb, running_pid,  # noqa: E402
                                stop_process, stop_signal)
from cloudlib.services import start_mariadb, start_service, wait_answering  # noqa: E402


# --------------------------------------------------------------------------- commands

def cmd_start(_args=None):
    t = time.monotonic()
    with locked():
        if all_up():
            log("the cloud is already up")
            print(common.CLOUDS_YAML)
            return
        leftovers = [n for n in ["mariadb", *SERVICES] if running_pid(n) is not None]
        if leftovers:
            log(f"partly running ({', '.join(leftovers)}); stopping it first")
            stop_all()
        cmd_install()
        check_ports_free()
        for d in (common.LOG_DIR, common.RUN, common.ETC):
            d.mkdir(parents=True, exist_ok=True)
        write_config()
        make_image()
        stamp = state_stamp()
        try:
            if baseline_valid(stamp):
                restore_start()
            else:
                cold_start(stamp)
        except BaseException:
            log("start failed; stopping what was started")
            stop_all()
            raise
        write_clouds_yaml()
    log(f"cloud up in {time.monotonic() - t:.0f}s; clouds: coursevm-local-admin, coursevm-local")
    print(common.CLOUDS_YAML)


def cmd_stop(args):
    with locked():
        stopped = stop_all()
        log(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        if args.purge:
            home = common.HOME
            for path in (common.DATA, common.BASELINE, home / "baseline.tmp", common.ETC, common.LOG_DIR, common.RUN,
                         home / "images", home / "plugins-build"):
                shutil.rmtree(path, ignore_errors=True)
            for path in (common.CLOUDS_YAML, home / "install-apt.log", home / "install-pip.log"):
                path.unlink(missing_ok=True)
            log(f"purged all state under {home} (the venv is kept)")


# Services `kill` and `restart` accept. Neutron, Keystone, Glance and Placement keep all their state in
# MariaDB (and files under data/), so a restarted one serves the same data. MariaDB recovers its own datadir.
FAULT_SERVICES = ["mariadb", *SERVICES]
RESTART_REFUSED = {
    "nova": "nova keeps its fake servers in its process's memory: a restarted nova would have database rows "
            "for servers that no longer exist. Use `cloud.py stop` and `cloud.py start` (a clean cloud from "
            "the baseline) instead",
}


def cmd_kill(args):
    """SIGKILL the whole process group of a service: no clean shutdown, as if it had crashed."""
    name = args.service
    with locked():
        pid = running_pid(name)
        if pid is None:
            pidfile(name).unlink(missing_ok=True)
            raise Fail(f"{name} is not running")
        t = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while group_alive(pid):
            reap(pid)
            if time.monotonic() > deadline:
                raise Fail(f"{name} (process group {pid}) still has processes {STOP_TIMEOUT}s after SIGKILL")
            time.sleep(0.05)
        pidfile(name).unlink(missing_ok=True)
        log(f"killed {name} (process group {pid}, SIGKILL) in {time.monotonic() - t:.1f}s")
        if name in RESTART_REFUSED:
            log(f"warning: {RESTART_REFUSED[name]}")
        else:
            log(f"`cloud.py restart {name}` brings it back")


def cmd_restart(args):
    """Start a service again (stopping it first if it runs) and wait until it answers."""
    name = args.service
    if name in RESTART_REFUSED:
        raise Fail(f"refusing to restart {name}: {RESTART_REFUSED[name]}")
    with locked():
        t = time.monotonic()
        if name != "mariadb" and running_pid("mariadb") is None:
            raise Fail(f"MariaDB is not running, so {name} cannot serve: run `cloud.py restart mariadb` "
                       "first, or `cloud.py start`")
        if stop_process(name, stop_signal(name)):
            log(f"stopped {name} ({time.monotonic() - t:.1f}s)")
        port = DB_PORT if name == "mariadb" else PORTS[name]
        who = port_listener(port)
        if who:
            raise Fail(f"cannot start {name}: {HOST}:{port} is taken: {who}")
        if name == "mariadb":
            start_mariadb()     # waits until it accepts connections; InnoDB recovers a crashed datadir
        else:
            start_service(name)
            wait_answering([name])
        log(f"{name} answers again, {time.monotonic() - t:.1f}s after the restart began")


def cmd_status(args):
    rows, up = [], True
    total_rss = 0.0
    for name in ["mariadb", *SERVICES]:
        pid = running_pid(name)
        port = DB_PORT if name == "mariadb" else PORTS[name]
        if name == "mariadb":
            answer = "accepts connections" if pid and port_listener(port) else "-"
            ok = bool(pid and port_listener(port))
        else:
            status = http_status(port) if pid else None
            ok = status is not None and status < 500
            answer = f"HTTP {status}" if status else "-"
        rss = sum(rss_mb(p) for p in group_pids(pid)) if pid else 0.0
        total_rss += rss
        up &= ok
        rows.append({"service": name, "port": port, "pid": pid, "answers": ok, "detail": answer,
                     "rss_mb": round(rss)})
    if args.json:
        print(json.dumps({"up": up, "services": rows, "rss_mb": round(total_rss),
                          "clouds_yaml": str(common.CLOUDS_YAML) if common.CLOUDS_YAML.exists() else None}))
    else:
        for r in rows:
            print(f"{r['service']:10} {HOST}:{r['port']:<5} pid {str(r['pid'] or '-'):8} "
                  f"{'up  ' if r['answers'] else 'DOWN'} {r['detail']:20} {r['rss_mb']:5} MB")
        print(f"{'total':10} {'':15} {'':12} {'':25} {round(total_rss):5} MB")
        if common.CLOUDS_YAML.exists() and up:
            print(f"clouds.yaml: {common.CLOUDS_YAML}")
    return 0 if up else 3


COMMANDS = {"install": cmd_install, "start": cmd_start, "stop": cmd_stop, "status": cmd_status,
            "kill": cmd_kill, "restart": cmd_restart}


def build_parser():
    parser = argparse.ArgumentParser(prog="cloud.py", description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install MariaDB and the OpenStack venv (idempotent)")
    sub.add_parser("start", help="start the cloud; prints the path of clouds.yaml")
    p = sub.add_parser("stop", help="stop everything this script started")
    p.add_argument("--purge", action="store_true", help="also remove all state except the venv")
    p = sub.add_parser("status", help="which services answer")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("kill", help="SIGKILL a service's whole process group, as a crash would")
    p.add_argument("service", choices=FAULT_SERVICES)
    p = sub.add_parser("restart", help="start a service again (stopped first if it runs); wait until it answers")
    # nova is a choice so that its refusal explains itself (exit 1) instead of argparse's bare "invalid choice".
    p.add_argument("service", choices=FAULT_SERVICES,
                   help="not nova (refused: its fake servers live in memory; use stop and start)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if os.geteuid() != 0:
        print("cloud.py: must run as root", file=sys.stderr)
        return 1
    try:
        return COMMANDS[args.command](args) or 0
    except Fail as e:
        print(f"cloud.py {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
