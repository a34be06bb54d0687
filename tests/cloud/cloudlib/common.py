"""Settings and helpers every other module of cloud.py uses: Fail, log, run, tail, the lock, hashing of
inputs, who listens on a port, HTTP probes.

The state locations under HOME (HOME, VENV, ETC, LOG_DIR, RUN, DATA, BASELINE, DATADIR, IMAGE_FILE, CLOUDS_YAML)
are read as `common.NAME` at call time by the other modules, so that one override here (a test's monkeypatch)
applies everywhere.
"""

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # tests/cloud, the folder of cloud.py
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

# Bump when a change to cloud.py or cloudlib/ changes what the bootstrapped state holds: the baseline is
# rebuilt from scratch when its stamp (this, the configuration files, bootstrap.py, the venv) differs.
STATE_VERSION = "2"

APT_PACKAGES = ["mariadb-server", "mariadb-client", "mariadb-backup", "qemu-utils",
                "python3-venv", "python3-dev", "build-essential"]
PYTHON = "/usr/bin/python3"     # Debian's 3.11: what these OpenStack releases are tested on

HOST = "127.0.0.1"
DB_PORT = 13306                 # not 3306: never collide with a system MariaDB
PORTS = {"keystone": 5000, "glance": 9292, "placement": 8778, "neutron": 9696, "cinder": 8776, "nova": 8774}
REGION = "RegionOne"
NOVA_HOST = "coursevm-local"    # the fake hypervisor's host (and node) name

# A test rig on loopback: fixed, documented credentials.
ADMIN_PASSWORD = "coursevm-admin"
COURSE_PROJECT, COURSE_USER, COURSE_PASSWORD = "course", "course-admin", "coursevm-course"
SERVICE_PASSWORD = "coursevm-service"
DB_USER, DB_PASSWORD = "openstack", "coursevm-db"
DATABASES = ["keystone", "glance", "placement", "neutron", "cinder", "nova_api", "nova", "nova_cell0"]

# uwsgi module of each service (checked against the installed releases by `install`).
WSGI_MODULES = {
    "keystone": "keystone.wsgi.api:application",
    "glance": "glance.wsgi.api:application",
    "placement": "placement.wsgi.api:application",
    "neutron": "neutron.wsgi.api:application",
    "cinder": "coursevm_cloud.cinder_allinone:application",
    "nova": "coursevm_cloud.nova_allinone:application",
}
CONFIG_DIR_ENV = {
    "keystone": {"OS_KEYSTONE_CONFIG_DIR": str(ETC / "keystone")},
    "glance": {"OS_GLANCE_CONFIG_DIR": str(ETC / "glance")},
    "placement": {"OS_PLACEMENT_CONFIG_DIR": str(ETC / "placement")},
    "neutron": {"OS_NEUTRON_CONFIG_DIR": str(ETC / "neutron"),
                "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
                "COURSEVM_MACHINES": str(MACHINES)},
    # Cinder's own WSGI module reads only sys.argv; ours reads this. Threads, not eventlet, as for Nova.
    "cinder": {"COURSEVM_CINDER_CONF": str(ETC / "cinder" / "cinder.conf"),
               "OS_CINDER_DISABLE_EVENTLET_PATCHING": "1"},
    "nova": {"OS_NOVA_CONFIG_DIR": str(ETC / "nova"),
             "COURSEVM_CLOUD_SNAPSHOT_IMAGE": str(IMAGE_FILE),
             "COURSEVM_MACHINES": str(MACHINES)},
}
SERVICES = ["keystone", "glance", "placement", "neutron", "cinder", "nova"]  # start order; stop is reversed
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


def tail(path, n=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"
