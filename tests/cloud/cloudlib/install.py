"""`install`: MariaDB and the other tools from apt, the OpenStack venv from PyPI, our plug-ins into it."""

import json
import os
import shutil
import time

from . import common
from .common import (APT_PACKAGES, CONSTRAINTS, PLUGINS, PYTHON, REQUIREMENTS, WSGI_MODULES, Fail, log, run,
                     sha256_of)


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
    return common.VENV / "bin" / "python"


def install_state():
    """(deps up to date, plugins up to date)."""
    try:
        stamps = json.loads((common.VENV / ".coursevm-stamp.json").read_text())
    except (OSError, ValueError):
        return False, False
    deps_ok = stamps.get("deps") == deps_stamp() and venv_python().exists()
    return deps_ok, deps_ok and stamps.get("plugins") == plugins_stamp()


def cmd_install(_args=None):
    t = time.monotonic()
    missing = apt_missing()
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        apt_log = common.HOME / "install-apt.log"
        common.HOME.mkdir(parents=True, exist_ok=True)
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
    pip_log = common.HOME / "install-pip.log"
    stamps = {}
    if not deps_ok:
        log(f"creating the venv {common.VENV} and installing requirements.txt (a few minutes)")
        if common.VENV.exists():
            shutil.rmtree(common.VENV)
        run([PYTHON, "-m", "venv", common.VENV], logfile=pip_log)
        pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
        run([*pip, "--upgrade", "pip"], logfile=pip_log)
        # constraints.txt pins the whole tested tree (pip freeze of a working install), so that a new
        # release of any dependency cannot break the rig behind our back.
        run([*pip, "-r", REQUIREMENTS, "-c", CONSTRAINTS], logfile=pip_log)
        run([venv_python(), "-m", "pip", "check"], logfile=pip_log)
        plugins_ok = False
    stamps["deps"] = deps_stamp()
    # Recorded at once: a failure in the steps below must not cost a new venv next time.
    (common.VENV / ".coursevm-stamp.json").write_text(json.dumps(stamps) + "\n")
    if not plugins_ok:
        log("installing our plug-ins (tests/cloud/plugins) into the venv")
        build = common.HOME / "plugins-build"
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(PLUGINS, build, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
        run([venv_python(), "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps",
             "--force-reinstall", build], logfile=pip_log)
        shutil.rmtree(build, ignore_errors=True)
    stamps["plugins"] = plugins_stamp()
    check_modules()
    (common.VENV / ".coursevm-stamp.json").write_text(json.dumps(stamps) + "\n")
    if deps_ok and plugins_ok and not missing:
        log(f"install: up to date ({time.monotonic() - t:.1f}s)")
    else:
        log(f"install: done in {time.monotonic() - t:.0f}s")


def check_modules():
    """Fail early, naming it, if a release moved a WSGI module or our entry point is not installed.
    Looks at files only: importing these packages takes seconds."""
    site = next((common.VENV / "lib").glob("python3*/site-packages"))
    missing = [m for m in WSGI_MODULES.values()
               if not (site / (m.split(":")[0].replace(".", "/") + ".py")).exists()]
    entry_points = "".join(p.read_text() for p in site.glob("coursevm_cloud_plugins-*.dist-info/entry_points.txt"))
    if "coursevm_noop = coursevm_cloud.noop_mech:NoopMechanismDriver" not in entry_points:
        missing.append("entry point neutron.ml2.mechanism_drivers: coursevm_noop")
    if missing:
        raise Fail(f"not found in {common.VENV}: {', '.join(missing)}")
