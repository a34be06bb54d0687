"""The cloud as a whole: is it up, a cold start that ends by saving the baseline, a start from the baseline,
and stopping everything (with the machines of its fake servers)."""

import json
import os
import re
import shutil
import subprocess
import threading
import time

from . import common
from .common import DB_PORT, HOST, MACHINES, NOVA_HOST, PORTS, SERVICES, Fail, http_status, log, port_listener, run
from .processes import running_pid, stop_process, stop_signal
from .services import (bootstrap, create_databases, init_datadir, mariadb_socket, migrate, start_mariadb,
                       start_service, wait_answering)


def all_up():
    return (running_pid("mariadb") is not None
            and all(running_pid(s) is not None and (http_status(PORTS[s]) or 500) < 500 for s in SERVICES))


def stop_all():
    stopped = []
    for name in [*reversed(SERVICES), "mariadb"]:
        t = time.monotonic()
        if stop_process(name, stop_signal(name)):
            stopped.append(f"{name} ({time.monotonic() - t:.1f}s)")
    stop_server_machines()
    return stopped


def stop_server_machines():
    """The machines of the fake servers (vm-<uuid>) and their derived images go with the servers: after a
    stop, the cloud comes back from its baseline without them."""
    if not MACHINES.is_file() or os.geteuid() != 0:
        return
    listed = subprocess.run(["/usr/bin/python3", MACHINES, "list", "--json"], capture_output=True, text=True,
                            check=False)
    try:
        targets = json.loads(listed.stdout or "[]")
    except ValueError:
        targets = []
    for target in targets:
        if re.fullmatch(r"vm-[0-9a-f-]{36}", target.get("instance", "")):
            run(["/usr/bin/python3", MACHINES, "stop", target["instance"]], check=False, capture=True)
    run(["/usr/bin/python3", MACHINES, "forget", "--unused"], check=False, capture=True)


def check_ports_free():
    busy = []
    for name, port in [("mariadb", DB_PORT), *PORTS.items()]:
        who = port_listener(port)
        if who:
            busy.append(f"{HOST}:{port} ({name}) is taken: {who}")
    if busy:
        raise Fail("cannot start, ports in use:\n  " + "\n  ".join(busy))


def make_image():
    if not common.IMAGE_FILE.exists():
        common.IMAGE_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = common.IMAGE_FILE.with_suffix(".tmp")
        run(["qemu-img", "create", "-q", "-f", "qcow2", tmp, "1G"], capture=True)
        tmp.rename(common.IMAGE_FILE)


def cold_start(stamp):
    """From nothing: datadir, migrations, services, bootstrap; then save the baseline."""
    why = "no baseline yet" if not (common.BASELINE / "stamp").exists() else "the baseline is for another configuration"
    log(f"cold start ({why}): new database, migrations and bootstrap (1.5 to 2 min on 2 cores)")
    shutil.rmtree(common.BASELINE, ignore_errors=True)
    shutil.rmtree(common.DATA, ignore_errors=True)
    for d in ("glance/images", "glance/staging", "glance/tasks", "glance/lock", "nova/instances", "nova/lock",
              "neutron/lock", "cinder/volumes", "cinder/lock", "cinder/coordination"):
        (common.DATA / d).mkdir(parents=True, exist_ok=True)
    init_datadir()
    start_mariadb()
    create_databases()
    log("MariaDB up; running migrations")
    errors = []

    def chain(service, then=None):
        try:
            t = time.monotonic()
            migrate(service)
            log(f"{service}: migrations done ({time.monotonic() - t:.0f}s)")
            if then:
                then()
        except Exception as e:  # reported below, with the others
            errors.append(f"{service}: {e}")

    def keystone_up():
        start_service("keystone")
        wait_answering(["keystone"])
        bootstrap("identity")
        log("keystone up; service users, catalog and the course project created")

    threads = [threading.Thread(target=chain, args=("keystone", keystone_up))]
    threads += [threading.Thread(target=chain, args=(s,)) for s in ("nova", "neutron", "cinder", "glance", "placement")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Fail("; ".join(errors))
    launch_services(exclude=("keystone",))
    bootstrap("resources")
    log("network public, flavors and image cirros-like created; saving the baseline")
    save_baseline(stamp)


def launch_services(exclude=()):
    """Placement must answer before Nova starts: nova-compute reports its resources there at start."""
    first = [s for s in ("keystone", "glance", "placement", "neutron", "cinder") if s not in exclude]
    for name in first:
        start_service(name)
    wait_answering([s for s in first if s in ("keystone", "placement")])
    start_service("nova")
    wait_answering([*first, "nova"])
    log("all APIs answer; waiting for the compute service")
    bootstrap("ready")
    wait_host_mapped()


def wait_host_mapped(timeout=60):
    """The scheduler maps new compute hosts to cell1 every 2 s; until then no server can be scheduled."""
    deadline = time.monotonic() + timeout
    query = f"SELECT COUNT(*) FROM nova_api.host_mappings WHERE host = '{NOVA_HOST}'"
    while True:
        out = run(["mariadb", "--no-defaults", f"--socket={mariadb_socket()}", "-uroot", "-N", "-e", query],
                  capture=True).stdout.strip()
        if out == "1":
            return
        if time.monotonic() > deadline:
            raise Fail(f"compute host {NOVA_HOST} not mapped to a cell after {timeout}s "
                       f"(see {common.LOG_DIR}/nova.log)")
        time.sleep(0.3)


def save_baseline(stamp):
    tmp = common.HOME / "baseline.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    blog = common.LOG_DIR / "baseline.log"
    # A hot, consistent copy of the running server, prepared so that it can be used as a datadir as is.
    run(["mariadb-backup", "--backup", f"--target-dir={tmp / 'data' / 'mysql'}", f"--socket={mariadb_socket()}",
         "--user=root"], logfile=blog)
    run(["mariadb-backup", "--prepare", f"--target-dir={tmp / 'data' / 'mysql'}"], logfile=blog)
    for d in common.DATA.iterdir():
        if d.name != "mysql":
            shutil.copytree(d, tmp / "data" / d.name, symlinks=True)
    (tmp / "stamp").write_text(stamp + "\n")
    tmp.rename(common.BASELINE)


def baseline_valid(stamp):
    try:
        return (common.BASELINE / "stamp").read_text().strip() == stamp
    except OSError:
        return False


def restore_start():
    log("restoring the baseline saved after the first bootstrap")
    shutil.rmtree(common.DATA, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(common.BASELINE / "data"), str(common.DATA)], check=True)
    start_mariadb()
    launch_services()
