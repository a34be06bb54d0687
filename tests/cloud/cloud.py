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
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOME = Path(os.environ.get("COURSEVM_CLOUD_HOME", "/var/lib/coursevm-cloud"))
VENV = HOME / "venv"
ETC = HOME / "etc"
LOG_DIR = HOME / "log"
RUN = HOME / "run"
DATA = HOME / "data"            # all live state: MariaDB datadir, keys, image store, nova state
BASELINE = HOME / "baseline"    # DATA as it was right after the first bootstrap (fast restart path)
DATADIR = DATA / "mysql"
IMAGE_FILE = HOME / "images" / "cirros-like.qcow2"
# Servers of images with the property coursevm_machine run on real machines (plugins/coursevm_cloud/machine_link.py).
MACHINES = HERE.parent / "machines" / "machines.py"
CLOUDS_YAML = HOME / "clouds.yaml"

REQUIREMENTS = HERE / "requirements.txt"
CONSTRAINTS = HERE / "constraints.txt"
PLUGINS = HERE / "plugins"
BOOTSTRAP = HERE / "bootstrap.py"

# Bump when a change to this script changes what the bootstrapped state holds: the baseline is
# rebuilt from scratch when its stamp (this, the configuration files, bootstrap.py, the venv) differs.
STATE_VERSION = "1"

APT_PACKAGES = ["mariadb-server", "mariadb-client", "mariadb-backup", "qemu-utils",
                "python3-venv", "python3-dev", "build-essential"]
PYTHON = "/usr/bin/python3"     # Debian's 3.11: what these OpenStack releases are tested on

HOST = "127.0.0.1"
DB_PORT = 13306                 # not 3306: never collide with a system MariaDB
PORTS = {"keystone": 5000, "glance": 9292, "placement": 8778, "neutron": 9696, "nova": 8774}
REGION = "RegionOne"
NOVA_HOST = "coursevm-local"    # the fake hypervisor's host (and node) name

# A test rig on loopback: fixed, documented credentials.
ADMIN_PASSWORD = "coursevm-admin"
COURSE_PROJECT, COURSE_USER, COURSE_PASSWORD = "course", "course-admin", "coursevm-course"
SERVICE_PASSWORD = "coursevm-service"
DB_USER, DB_PASSWORD = "openstack", "coursevm-db"
DATABASES = ["keystone", "glance", "placement", "neutron", "nova_api", "nova", "nova_cell0"]

# uwsgi module of each service (checked against the installed releases by `install`).
WSGI_MODULES = {
    "keystone": "keystone.wsgi.api:application",
    "glance": "glance.wsgi.api:application",
    "placement": "placement.wsgi.api:application",
    "neutron": "neutron.wsgi.api:application",
    "nova": "coursevm_cloud.nova_allinone:application",
}
CONFIG_DIR_ENV = {
    "keystone": {"OS_KEYSTONE_CONFIG_DIR": str(ETC / "keystone")},
    "glance": {"OS_GLANCE_CONFIG_DIR": str(ETC / "glance")},
    "placement": {"OS_PLACEMENT_CONFIG_DIR": str(ETC / "placement")},
    "neutron": {"OS_NEUTRON_CONFIG_DIR": str(ETC / "neutron"),
                "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
                "COURSEVM_MACHINES": str(MACHINES)},
    "nova": {"OS_NOVA_CONFIG_DIR": str(ETC / "nova"),
             "COURSEVM_CLOUD_SNAPSHOT_IMAGE": str(IMAGE_FILE),
             "COURSEVM_MACHINES": str(MACHINES)},
}
SERVICES = ["keystone", "glance", "placement", "neutron", "nova"]  # start order; stop is reversed
START_TIMEOUT = 120
STOP_TIMEOUT = 20


class Fail(Exception):
    """An error reported to the user as one line; no traceback."""


# --------------------------------------------------------------------------- helpers

T0 = time.monotonic()


def log(msg):
    print(f"[cloud {time.monotonic() - T0:5.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd, *, logfile=None, env=None, capture=False, check=True):
    """Run a command; its output goes to `logfile` (appended) so that a failure points at it."""
    cmd = [str(c) for c in cmd]
    kwargs = {"env": env, "text": True, "stdin": subprocess.DEVNULL}
    fh = None
    if capture:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elif logfile is not None:
        fh = open(logfile, "a")
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        kwargs.update(stdout=fh, stderr=subprocess.STDOUT)
    try:
        proc = subprocess.run(cmd, check=False, **kwargs)
    except FileNotFoundError:
        raise Fail(f"command not found: {cmd[0]}")
    finally:
        if fh:
            fh.close()
    if check and proc.returncode != 0:
        if capture:
            detail = (proc.stderr or proc.stdout or "").strip().splitlines()
            detail = ": " + detail[-1] if detail else ""
        else:
            detail = f"; the end of {logfile}:\n{tail(logfile)}" if logfile else ""
        raise Fail(f"`{' '.join(cmd[:4])}{' ...' if len(cmd) > 4 else ''}` exited with {proc.returncode}{detail}")
    return proc


@contextlib.contextmanager
def locked():
    """One cloud.py at a time per COURSEVM_CLOUD_HOME (parallel test sessions call start/stop)."""
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another cloud.py is running here; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def sha256_of(paths, extra=""):
    h = hashlib.sha256(extra.encode())
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and not p.name.endswith(".egg-info") and ".egg-info" not in str(p)) \
            if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(HERE)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def port_listener(port):
    """Who listens on 127.0.0.1:port (a line of `ss`), or None."""
    out = run(["ss", "-Hltnp", f"sport = :{port}"], capture=True, check=False).stdout.strip()
    return out or None


def http_status(port, path="/"):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


# --------------------------------------------------------------------------- processes

def _pidfile(name):
    return RUN / f"{name}.pid"


def _starttime(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def running_pid(name):
    """The pid of our process `name`, if it still runs (pid and start time both match)."""
    try:
        pid, start = _pidfile(name).read_text().split()
    except (OSError, ValueError):
        return None
    return int(pid) if _starttime(int(pid)) == start else None


def spawn(name, cmd, env=None):
    """Start a long-running process in its own session; remember it by pid and start time."""
    RUN.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name}.log", "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=HOME)
    _pidfile(name).write_text(f"{proc.pid} {_starttime(proc.pid)}\n")
    return proc


def stop_process(name, sig=signal.SIGTERM):
    pid = running_pid(name)
    if pid is None:
        _pidfile(name).unlink(missing_ok=True)
        return False
    # The process leads its own session (start_new_session), so its group holds only what it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _group_alive(pid):
        _reap(pid)
        time.sleep(0.1)
    if _group_alive(pid):
        log(f"{name} did not stop within {STOP_TIMEOUT}s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _group_alive(pid):
            _reap(pid)
            time.sleep(0.1)
    _pidfile(name).unlink(missing_ok=True)
    return True


def _reap(pid):
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid):
    return bool(group_pids(pgid))


def group_pids(pgid):
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --------------------------------------------------------------------------- install

def apt_missing():
    missing = []
    for pkg in APT_PACKAGES:
        out = run(["dpkg-query", "-W", "-f=${Status}", pkg], capture=True, check=False).stdout
        if "install ok installed" not in out:
            missing.append(pkg)
    return missing


def deps_stamp():
    return sha256_of([REQUIREMENTS, CONSTRAINTS], extra=PYTHON + run([PYTHON, "-V"], capture=True).stdout)


def plugins_stamp():
    return sha256_of([PLUGINS])


def venv_python():
    return VENV / "bin" / "python"


def install_state():
    """(deps up to date, plugins up to date)."""
    try:
        stamps = json.loads((VENV / ".coursevm-stamp.json").read_text())
    except (OSError, ValueError):
        return False, False
    deps_ok = stamps.get("deps") == deps_stamp() and venv_python().exists()
    return deps_ok, deps_ok and stamps.get("plugins") == plugins_stamp()


def cmd_install(_args=None):
    t = time.monotonic()
    missing = apt_missing()
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        apt_log = HOME / "install-apt.log"
        HOME.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # A package may be unknown only because the lists are stale or absent.
        wait_lock = ["-o", "DPkg::Lock::Timeout=300"]  # other sessions may be installing too
        run(["apt-get", *wait_lock, "update", "-q"], logfile=apt_log, env=env)
        run(["apt-get", *wait_lock, "install", "-y", "-q", "--no-install-recommends", *missing],
            logfile=apt_log, env=env)
    ver = run([PYTHON, "-c", "import sys; print(*sys.version_info[:2])"], capture=True).stdout.split()
    if not (3, 10) <= tuple(map(int, ver)) <= (3, 12):
        raise Fail(f"{PYTHON} is Python {'.'.join(ver)}; these OpenStack releases want 3.10 to 3.12")
    deps_ok, plugins_ok = install_state()
    pip_log = HOME / "install-pip.log"
    stamps = {}
    if not deps_ok:
        log(f"creating the venv {VENV} and installing requirements.txt (a few minutes)")
        if VENV.exists():
            shutil.rmtree(VENV)
        run([PYTHON, "-m", "venv", VENV], logfile=pip_log)
        pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
        run([*pip, "--upgrade", "pip"], logfile=pip_log)
        # constraints.txt pins the whole tested tree (pip freeze of a working install), so that a new
        # release of any dependency cannot break the rig behind our back.
        run([*pip, "-r", REQUIREMENTS, "-c", CONSTRAINTS], logfile=pip_log)
        run([venv_python(), "-m", "pip", "check"], logfile=pip_log)
        plugins_ok = False
    stamps["deps"] = deps_stamp()
    # Recorded at once: a failure in the steps below must not cost a new venv next time.
    (VENV / ".coursevm-stamp.json").write_text(json.dumps(stamps) + "\n")
    if not plugins_ok:
        log("installing our plug-ins (tests/cloud/plugins) into the venv")
        build = HOME / "plugins-build"
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(PLUGINS, build, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
        run([venv_python(), "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps",
             "--force-reinstall", build], logfile=pip_log)
        shutil.rmtree(build, ignore_errors=True)
    stamps["plugins"] = plugins_stamp()
    check_modules()
    (VENV / ".coursevm-stamp.json").write_text(json.dumps(stamps) + "\n")
    if deps_ok and plugins_ok and not missing:
        log(f"install: up to date ({time.monotonic() - t:.1f}s)")
    else:
        log(f"install: done in {time.monotonic() - t:.0f}s")


def check_modules():
    """Fail early, naming it, if a release moved a WSGI module or our entry point is not installed.
    Looks at files only: importing these packages takes seconds."""
    site = next((VENV / "lib").glob("python3*/site-packages"))
    missing = [m for m in WSGI_MODULES.values()
               if not (site / (m.split(":")[0].replace(".", "/") + ".py")).exists()]
    entry_points = "".join(p.read_text() for p in site.glob("coursevm_cloud_plugins-*.dist-info/entry_points.txt"))
    if "coursevm_noop = coursevm_cloud.noop_mech:NoopMechanismDriver" not in entry_points:
        missing.append("entry point neutron.ml2.mechanism_drivers: coursevm_noop")
    if missing:
        raise Fail(f"not found in {VENV}: {', '.join(missing)}")


# --------------------------------------------------------------------------- configuration

def db_url(name):
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{HOST}:{DB_PORT}/{name}?charset=utf8mb4"


def auth_section(section, user, extra=""):
    return f"""
[{section}]
auth_url = http://{HOST}:{PORTS['keystone']}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {SERVICE_PASSWORD}
region_name = {REGION}
{extra}"""


def authtoken(user):
    return auth_section("keystone_authtoken", user, f"www_authenticate_uri = http://{HOST}:{PORTS['keystone']}\n")


def config_files():
    """{path: text} of every configuration file. Pure: the baseline stamp hashes the result."""
    data = str(DATA)
    files = {}
    files[ETC / "keystone" / "keystone.conf"] = f"""
[database]
connection = {db_url('keystone')}

[token]
provider = fernet

[fernet_tokens]
key_repository = {data}/keystone/fernet-keys

[fernet_receipts]
key_repository = {data}/keystone/fernet-keys

[credential]
key_repository = {data}/keystone/credential-keys

[identity]
# Cheap password checks on a test rig (the default bcrypt cost makes every token request slow).
password_hash_rounds = 4
"""
    files[ETC / "glance" / "glance-api.conf"] = f"""
[DEFAULT]
enabled_backends = fs:file

[database]
connection = {db_url('glance')}

[paste_deploy]
flavor = keystone

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = {data}/glance/images/

[os_glance_staging_store]
filesystem_store_datadir = {data}/glance/staging/

[os_glance_tasks_store]
filesystem_store_datadir = {data}/glance/tasks/

[oslo_concurrency]
lock_path = {data}/glance/lock
{authtoken('glance')}"""
    files[ETC / "placement" / "placement.conf"] = f"""
[placement_database]
connection = {db_url('placement')}

[api]
auth_strategy = keystone
{authtoken('placement')}"""
    files[ETC / "neutron" / "neutron.conf"] = f"""
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
# No agents and no RPC server: messages go to oslo.messaging's in-process fake transport.
transport_url = fake://
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_paste_config = {ETC}/neutron/api-paste.ini
state_path = {data}/neutron

[database]
connection = {db_url('neutron')}

[oslo_concurrency]
lock_path = {data}/neutron/lock

[oslo_messaging_notifications]
driver = noop
{authtoken('neutron')}{auth_section('nova', 'nova')}"""
    files[ETC / "neutron" / "ml2_conf.ini"] = """
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = coursevm_noop
extension_drivers = port_security

[ml2_type_flat]
flat_networks = public

[ml2_type_vxlan]
vni_ranges = 1:1000
"""
    files[ETC / "nova" / "nova.conf"] = f"""
[DEFAULT]
host = {NOVA_HOST}
my_ip = {HOST}
state_path = {data}/nova
instances_path = {data}/nova/instances
# Nova imports drivers from nova.virt only; nova_allinone registers ours there.
compute_driver = coursevm_fake.CourseFakeDriver
# API, conductor, scheduler and compute share one process and talk over the in-process fake transport.
transport_url = fake://
# Periodic tasks start at once: without this, host discovery may wait up to 60 s.
periodic_fuzzy_delay = 0

[api]
auth_strategy = keystone

[api_database]
connection = {db_url('nova_api')}

[database]
connection = {db_url('nova')}

[wsgi]
api_paste_config = {ETC}/nova/api-paste.ini

[scheduler]
discover_hosts_in_cells_interval = 2

[oslo_concurrency]
lock_path = {data}/nova/lock

[oslo_messaging_notifications]
driver = noop

[vnc]
enabled = false

[glance]
valid_interfaces = public
""" + authtoken("nova") + auth_section("placement", "placement", "valid_interfaces = public\n") \
        + auth_section("neutron", "neutron", "valid_interfaces = public\ndefault_floating_pool = public\n") \
        + auth_section("service_user", "nova", "send_service_user_token = true\n")
    return {path: text.lstrip("\n") for path, text in files.items()}


def write_config():
    for path, text in config_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    # Paste pipelines ship with the wheels (data files in the venv's etc/).
    for svc, name in (("nova", "api-paste.ini"), ("neutron", "api-paste.ini"), ("glance", "glance-api-paste.ini")):
        shutil.copyfile(VENV / "etc" / svc / name, ETC / svc / name)
    (ETC / "cloud.json").write_text(json.dumps({
        "auth_url": f"http://{HOST}:{PORTS['keystone']}/v3",
        "region": REGION,
        "ports": PORTS,
        "admin_password": ADMIN_PASSWORD,
        "service_password": SERVICE_PASSWORD,
        "course": {"project": COURSE_PROJECT, "user": COURSE_USER, "password": COURSE_PASSWORD},
        "image_file": str(IMAGE_FILE),
        "nova_host": NOVA_HOST,
    }, indent=1))


def state_stamp():
    text = "".join(f"{p}\n{t}" for p, t in sorted(config_files().items(), key=lambda kv: str(kv[0])))
    return sha256_of([BOOTSTRAP, PLUGINS], extra=STATE_VERSION + text + deps_stamp())


def write_clouds_yaml():
    def cloud(name, user, password, project):
        return (f"  {name}:\n"
                f"    auth:\n"
                f"      auth_url: http://{HOST}:{PORTS['keystone']}/v3\n"
                f"      username: {user}\n"
                f"      password: {password}\n"
                f"      project_name: {project}\n"
                f"      user_domain_name: Default\n"
                f"      project_domain_name: Default\n"
                f"    region_name: {REGION}\n"
                f"    interface: public\n"
                f"    identity_api_version: 3\n")
    CLOUDS_YAML.write_text("# Written by tests/cloud/cloud.py start: the local test cloud on loopback.\n"
                           "clouds:\n"
                           + cloud("coursevm-local-admin", "admin", ADMIN_PASSWORD, "admin")
                           + cloud("coursevm-local", COURSE_USER, COURSE_PASSWORD, COURSE_PROJECT))
    CLOUDS_YAML.chmod(0o644)


# --------------------------------------------------------------------------- MariaDB

def mariadb_socket():
    return RUN / "mysql" / "mysqld.sock"


def sql(statements):
    run(["mariadb", "--no-defaults", f"--socket={mariadb_socket()}", "-uroot", "-e", statements], capture=True)


def init_datadir():
    shutil.rmtree(DATADIR, ignore_errors=True)
    DATADIR.mkdir(parents=True)
    run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={DATADIR}",
         "--skip-test-db", "--auth-root-authentication-method=socket"], logfile=LOG_DIR / "mariadb-install.log")


def start_mariadb():
    mariadb_socket().parent.mkdir(parents=True, exist_ok=True)
    # As root, like every other process here: the mysql user may not be able to reach a
    # COURSEVM_CLOUD_HOME under a private directory, and this server listens on loopback only.
    spawn("mariadb", [
        "/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={DATADIR}",
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
            raise Fail(f"MariaDB exited at start (see {LOG_DIR / 'mariadb.log'})")
        ok = subprocess.run(["mariadb", "--no-defaults", f"--socket={mariadb_socket()}", "-uroot", "-e", "select 1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
        if ok:
            return
        time.sleep(0.2)
    raise Fail(f"MariaDB did not answer within 60s (see {LOG_DIR / 'mariadb.log'})")


def create_databases():
    stmts = [f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;" for db in DATABASES]
    stmts += [f"CREATE USER IF NOT EXISTS '{DB_USER}'@'{HOST}' IDENTIFIED BY '{DB_PASSWORD}';",
              f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'{HOST}';"]
    sql(" ".join(stmts))


# --------------------------------------------------------------------------- OpenStack services

def venv_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env.update(extra or {})
    return env


def migrate(service):
    """The service's real schema migrations (and Keystone's own bootstrap)."""
    bin_ = VENV / "bin"
    logfile = LOG_DIR / f"migrate-{service}.log"
    env = venv_env()
    if service == "keystone":
        conf = ["--config-file", ETC / "keystone" / "keystone.conf"]
        # What `keystone-manage fernet_setup` and `credential_setup` write, without two more
        # keystone-manage start-ups (the slowest part of a cold start on a busy machine).
        for repo in ("fernet-keys", "credential-keys"):
            write_key_repository(DATA / "keystone" / repo)
        run([bin_ / "keystone-manage", *conf, "db_sync"], logfile=logfile, env=env)
        url = f"http://{HOST}:{PORTS['keystone']}/v3"
        run([bin_ / "keystone-manage", *conf, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
             "--bootstrap-admin-url", url, "--bootstrap-internal-url", url, "--bootstrap-public-url", url,
             "--bootstrap-region-id", REGION], logfile=logfile, env=env)
    elif service == "glance":
        run([bin_ / "glance-manage", "--config-file", ETC / "glance" / "glance-api.conf", "db_sync"],
            logfile=logfile, env=env)
    elif service == "placement":
        run([bin_ / "placement-manage", "--config-file", ETC / "placement" / "placement.conf", "db", "sync"],
            logfile=logfile, env=env)
    elif service == "neutron":
        run([bin_ / "neutron-db-manage", "--config-file", ETC / "neutron" / "neutron.conf",
             "--config-file", ETC / "neutron" / "ml2_conf.ini", "upgrade", "heads"], logfile=logfile, env=env)
    elif service == "nova":
        run([venv_python(), "-m", "coursevm_cloud.nova_db", ETC / "nova" / "nova.conf",
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
    cmd = [VENV / "bin" / "uwsgi",
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
                raise Fail(f"{name} exited at start; last lines of {LOG_DIR / (name + '.log')}:\n"
                           + tail(LOG_DIR / f"{name}.log"))
            status = http_status(PORTS[name])
            if status is not None and status < 500:
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            raise Fail(f"not answering after {timeout}s: {', '.join(pending)} (logs in {LOG_DIR})")
        if pending:
            time.sleep(0.3)


def tail(path, n=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def bootstrap(phase):
    run([venv_python(), BOOTSTRAP, phase, ETC / "cloud.json"], logfile=LOG_DIR / "bootstrap.log",
        env=venv_env())


# --------------------------------------------------------------------------- start / stop / status

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
    if not IMAGE_FILE.exists():
        IMAGE_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = IMAGE_FILE.with_suffix(".tmp")
        run(["qemu-img", "create", "-q", "-f", "qcow2", tmp, "1G"], capture=True)
        tmp.rename(IMAGE_FILE)


def cold_start(stamp):
    """From nothing: datadir, migrations, services, bootstrap; then save the baseline."""
    why = "no baseline yet" if not (BASELINE / "stamp").exists() else "the baseline is for another configuration"
    log(f"cold start ({why}): new database, migrations and bootstrap (1.5 to 2 min on 2 cores)")
    shutil.rmtree(BASELINE, ignore_errors=True)
    shutil.rmtree(DATA, ignore_errors=True)
    for d in ("glance/images", "glance/staging", "glance/tasks", "glance/lock", "nova/instances", "nova/lock",
              "neutron/lock"):
        (DATA / d).mkdir(parents=True, exist_ok=True)
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
    threads += [threading.Thread(target=chain, args=(s,)) for s in ("nova", "neutron", "glance", "placement")]
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
    first = [s for s in ("keystone", "glance", "placement", "neutron") if s not in exclude]
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
            raise Fail(f"compute host {NOVA_HOST} not mapped to a cell after {timeout}s (see {LOG_DIR}/nova.log)")
        time.sleep(0.3)


def save_baseline(stamp):
    tmp = HOME / "baseline.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    blog = LOG_DIR / "baseline.log"
    # A hot, consistent copy of the running server, prepared so that it can be used as a datadir as is.
    run(["mariadb-backup", "--backup", f"--target-dir={tmp / 'data' / 'mysql'}", f"--socket={mariadb_socket()}",
         "--user=root"], logfile=blog)
    run(["mariadb-backup", "--prepare", f"--target-dir={tmp / 'data' / 'mysql'}"], logfile=blog)
    for d in DATA.iterdir():
        if d.name != "mysql":
            shutil.copytree(d, tmp / "data" / d.name, symlinks=True)
    (tmp / "stamp").write_text(stamp + "\n")
    tmp.rename(BASELINE)


def baseline_valid(stamp):
    try:
        return (BASELINE / "stamp").read_text().strip() == stamp
    except OSError:
        return False


def restore_start():
    log("restoring the baseline saved after the first bootstrap")
    shutil.rmtree(DATA, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(BASELINE / "data"), str(DATA)], check=True)
    start_mariadb()
    launch_services()


def cmd_start(_args=None):
    t = time.monotonic()
    with locked():
        if all_up():
            log("the cloud is already up")
            print(CLOUDS_YAML)
            return
        leftovers = [n for n in ["mariadb", *SERVICES] if running_pid(n) is not None]
        if leftovers:
            log(f"partly running ({', '.join(leftovers)}); stopping it first")
            stop_all()
        cmd_install()
        check_ports_free()
        for d in (LOG_DIR, RUN, ETC):
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
    print(CLOUDS_YAML)


def cmd_stop(args):
    with locked():
        stopped = stop_all()
        log(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        if args.purge:
            for path in (DATA, BASELINE, HOME / "baseline.tmp", ETC, LOG_DIR, RUN, HOME / "images",
                         HOME / "plugins-build"):
                shutil.rmtree(path, ignore_errors=True)
            for path in (CLOUDS_YAML, HOME / "install-apt.log", HOME / "install-pip.log"):
                path.unlink(missing_ok=True)
            log(f"purged all state under {HOME} (the venv is kept)")


# Services `kill` and `restart` accept. Neutron, Keystone, Glance and Placement keep all their state in
# MariaDB (and files under data/), so a restarted one serves the same data. MariaDB recovers its own datadir.
FAULT_SERVICES = ["mariadb", *SERVICES]
RESTART_REFUSED = {
    "nova": "nova keeps its fake servers in its process's memory: a restarted nova would have database rows "
            "for servers that no longer exist. Use `cloud.py stop` and `cloud.py start` (a clean cloud from "
            "the baseline) instead",
}


def stop_signal(name):
    # uwsgi without a master treats SIGTERM as "reload"; SIGINT ends it.
    return signal.SIGTERM if name == "mariadb" else signal.SIGINT


def cmd_kill(args):
    """SIGKILL the whole process group of a service: no clean shutdown, as if it had crashed."""
    name = args.service
    with locked():
        pid = running_pid(name)
        if pid is None:
            _pidfile(name).unlink(missing_ok=True)
            raise Fail(f"{name} is not running")
        t = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(pid):
            _reap(pid)
            if time.monotonic() > deadline:
                raise Fail(f"{name} (process group {pid}) still has processes {STOP_TIMEOUT}s after SIGKILL")
            time.sleep(0.05)
        _pidfile(name).unlink(missing_ok=True)
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
                          "clouds_yaml": str(CLOUDS_YAML) if CLOUDS_YAML.exists() else None}))
    else:
        for r in rows:
            print(f"{r['service']:10} {HOST}:{r['port']:<5} pid {str(r['pid'] or '-'):8} "
                  f"{'up  ' if r['answers'] else 'DOWN'} {r['detail']:20} {r['rss_mb']:5} MB")
        print(f"{'total':10} {'':15} {'':12} {'':25} {round(total_rss):5} MB")
        if CLOUDS_YAML.exists() and up:
            print(f"clouds.yaml: {CLOUDS_YAML}")
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
