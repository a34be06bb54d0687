"""MariaDB (datadir, server, databases) and the OpenStack services (migrations, uwsgi, waiting until they
answer, bootstrap.py)."""

import base64
import os
import shutil
import subprocess
import time

from . import common
from .common import (ADMIN_PASSWORD, BOOTSTRAP, CONFIG_DIR_ENV, DATABASES, DB_PASSWORD, DB_PORT, DB_USER, HOST, PORTS,
                     REGION, START_TIMEOUT, WSGI_MODULES, Fail, http_status, run, tail)
from .config import db_url
from .install import venv_python
from .processes import running_pid, spawn


# --------------------------------------------------------------------------- MariaDB

def mariadb_socket():
    return common.RUN / "mysql" / "mysqld.sock"


def sql(statements):
    run(["mariadb", "--no-defaults", f"--socket={mariadb_socket()}", "-uroot", "-e", statements], capture=True)


def init_datadir():
    shutil.rmtree(common.DATADIR, ignore_errors=True)
    common.DATADIR.mkdir(parents=True)
    run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={common.DATADIR}",
         "--skip-test-db", "--auth-root-authentication-method=socket"], logfile=common.LOG_DIR / "mariadb-install.log")


def start_mariadb():
    mariadb_socket().parent.mkdir(parents=True, exist_ok=True)
    # As root, like every other process here: the mysql user may not be able to reach a
    # COURSEVM_CLOUD_HOME under a private directory, and this server listens on loopback only.
    spawn("mariadb", [
        "/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={common.DATADIR}",
        f"--socket={mariadb_socket()}", f"--port={DB_PORT}", f"--bind-address={HOST}",
        "--skip-name-resolve", "--skip-log-bin", "--performance-schema=OFF",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
        "--max-connections=1000", "--max-allowed-packet=64M",
        # Small and fast rather than durable: it is a throw-away test database.
        "--innodb-buffer-pool-size=96M", "--innodb-log-file-size=48M",
        "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--sync-binlog=0",
        "--innodb-file-per-table=1",
    ])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if running_pid("mariadb") is None:
            raise Fail(f"MariaDB exited at start (see {common.LOG_DIR / 'mariadb.log'})")
        ok = subprocess.run(["mariadb", "--no-defaults", f"--socket={mariadb_socket()}", "-uroot", "-e", "select 1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
        if ok:
            return
        time.sleep(0.2)
    raise Fail(f"MariaDB did not answer within 60s (see {common.LOG_DIR / 'mariadb.log'})")


def create_databases():
    stmts = [f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;" for db in DATABASES]
    stmts += [f"CREATE USER IF NOT EXISTS '{DB_USER}'@'{HOST}' IDENTIFIED BY '{DB_PASSWORD}';",
              f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'{HOST}';"]
    sql(" ".join(stmts))


# --------------------------------------------------------------------------- OpenStack services

def venv_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env["PATH"] = f"{common.VENV / 'bin'}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env.update(extra or {})
    return env


def migrate(service):
    """The service's real schema migrations (and Keystone's own bootstrap)."""
    bin_ = common.VENV / "bin"
    logfile = common.LOG_DIR / f"migrate-{service}.log"
    env = venv_env()
    if service == "keystone":
        conf = ["--config-file", common.ETC / "keystone" / "keystone.conf"]
        # What `keystone-manage fernet_setup` and `credential_setup` write, without two more
        # keystone-manage start-ups (the slowest part of a cold start on a busy machine).
        for repo in ("fernet-keys", "credential-keys"):
            write_key_repository(common.DATA / "keystone" / repo)
        run([bin_ / "keystone-manage", *conf, "db_sync"], logfile=logfile, env=env)
        url = f"http://{HOST}:{PORTS['keystone']}/v3"
        run([bin_ / "keystone-manage", *conf, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
             "--bootstrap-admin-url", url, "--bootstrap-internal-url", url, "--bootstrap-public-url", url,
             "--bootstrap-region-id", REGION], logfile=logfile, env=env)
    elif service == "glance":
        run([bin_ / "glance-manage", "--config-file", common.ETC / "glance" / "glance-api.conf", "db_sync"],
            logfile=logfile, env=env)
    elif service == "placement":
        run([bin_ / "placement-manage", "--config-file", common.ETC / "placement" / "placement.conf", "db", "sync"],
            logfile=logfile, env=env)
    elif service == "neutron":
        run([bin_ / "neutron-db-manage", "--config-file", common.ETC / "neutron" / "neutron.conf",
             "--config-file", common.ETC / "neutron" / "ml2_conf.ini", "upgrade", "heads"], logfile=logfile, env=env)
    elif service == "cinder":
        run([bin_ / "cinder-manage", "--config-file", common.ETC / "cinder" / "cinder.conf", "db", "sync"],
            logfile=logfile, env=env)
    elif service == "nova":
        run([venv_python(), "-m", "coursevm_cloud.nova_db", common.ETC / "nova" / "nova.conf",
             db_url("nova_cell0"), db_url("nova")], logfile=logfile, env=env)


def write_key_repository(path):
    """A Fernet key repository as keystone-manage leaves it: staged key 0, primary key 1."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for name in ("0", "1"):
        key = path / name
        key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        key.chmod(0o600)


def start_service(name):
    port = PORTS[name]
    threads = "8" if name in ("nova", "neutron") else "4"
    cmd = [common.VENV / "bin" / "uwsgi",
           # --http11-socket speaks HTTP/1.1 properly (--http-socket resets connections that clients reuse).
           "--http11-socket", f"{HOST}:{port}",
           # But no keep-alive: uwsgi parks a thread on every idle kept-alive connection until its socket
           # timeout, so a few pooled client connections (auth_token middleware in every service, SDK
           # sessions) use up all threads and new requests wait in the backlog. Devstack does the same.
           "--add-header", "Connection: close",
           "--module", WSGI_MODULES[name],
           "--processes", "1", "--threads", threads, "--enable-threads",
           "--need-app", "--buffer-size", "65535", "--disable-logging",
           # Exit at once on SIGINT: Python's own teardown would wait for Nova's non-daemon service threads.
           "--skip-atexit-teardown",
           "--http-chunked-input", "--socket-timeout", "60",
           "--procname-prefix-spaced", f"coursevm-cloud-{name}"]
    spawn(name, cmd, env=venv_env(CONFIG_DIR_ENV[name]))


def wait_answering(names, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        for name in list(pending):
            if running_pid(name) is None:
                raise Fail(f"{name} exited at start; last lines of {common.LOG_DIR / (name + '.log')}:\n"
                           + tail(common.LOG_DIR / f"{name}.log"))
            status = http_status(PORTS[name])
            if status is not None and status < 500:
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            raise Fail(f"not answering after {timeout}s: {', '.join(pending)} (logs in {common.LOG_DIR})")
        if pending:
            time.sleep(0.3)


def bootstrap(phase):
    run([venv_python(), BOOTSTRAP, phase, common.ETC / "cloud.json"], logfile=common.LOG_DIR / "bootstrap.log",
        env=venv_env())
