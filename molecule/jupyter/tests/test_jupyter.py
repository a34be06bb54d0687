"""What a student and an operator would check on the converged machine (runs with testinfra over ssh)."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
import target  # noqa: E402  (tests/support is not a package)

USER = "oustudent"
PASSWORD = "molecule-jupyter-pw"
NOTEBOOKS = "/home/oustudent/notebooks"
BASE = "http://127.0.0.1:8888/"
# Runs on the VM as `python3 -c`: the probe itself (standard library only), which prints the same JSON as
# tests/support/jupyter_login.py (that wrapper loads it by path, which the VM does not have).
LOGIN_SCRIPT = (Path(__file__).resolve().parents[3] / "plugins" / "module_utils" / "jupyter_probe.py").read_text()
ROOT = Path(__file__).resolve().parents[3]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
EXTENSION = ROOT / "roles" / "jupyter" / "files" / "coursevm_password"


def main_pid(host):
    return target.main_pid(host, "jupyter")


def answers(host):
    return host.run("python3 -c %s", "import urllib.request as u; u.urlopen('%slogin', timeout=5)" % BASE).rc == 0


def login(host, password):
    out = host.check_output("python3 -c %s %s %s", LOGIN_SCRIPT, BASE, password)
    return json.loads(out)


def test_service_is_active_and_enabled(host):
    target.assert_active_and_enabled(host, "jupyter")


def test_service_runs_as_the_course_user(host):
    pid = target.assert_main_process_runs_as(host, "jupyter", USER)
    # Every process of the unit, kernels included, runs as the course user.
    users = set(host.check_output("ps -o user= --ppid %s --pid %s", str(pid), str(pid)).split())
    assert users == {USER}


def test_listens_on_loopback_only(host):
    mine = target.listening_addresses(host, main_pid(host))
    assert mine
    assert all(addr.startswith("127.0.0.1:") for addr in mine), mine
    assert "127.0.0.1:8888" in mine


def test_config_has_a_password_and_no_token(host):
    config = host.file("/etc/jupyter/jupyter_server_config.py")
    assert config.user == "root" and config.group == "users" and config.mode == 0o640
    text = config.content_string
    assert 'hashed_password = "argon2:$argon2id$' in text
    assert 'IdentityProvider.token = ""' in text
    assert PASSWORD not in text
    assert "trust_xheaders = True" in text and "allow_remote_access = True" in text


def test_extra_config_is_applied(host):
    # Jupyter reports its effective settings; the extra traits must be there, so the file was read whole.
    text = host.file("/etc/jupyter/jupyter_server_config.py").content_string
    assert 'c.FileContentsManager.delete_to_trash = json.loads("false")' in text
    script = ("from traitlets.config.loader import PyFileConfigLoader as L; "
              "c = L('jupyter_server_config.py', path='/etc/jupyter').load_config(); "
              "print(c.FileContentsManager.delete_to_trash, c.ServerApp.terminals_enabled, c.ServerApp.max_body_size)")
    assert host.check_output("/opt/jupyter/bin/python -c %s", script) == "False True 536870912"


def test_api_is_refused_without_login(host):
    result = login(host, "not-the-password")
    assert result["anonymous_api_status"] == 403


def test_a_visitor_lands_on_the_login_page(host):
    # What a student's browser does with the bare URL: / -> /tree -> /login?next=/tree.
    script = ("import urllib.request as u; r = u.urlopen('%s', timeout=10); "
              "print(r.geturl()); print(r.read().decode())" % BASE)
    final_url, page = host.check_output("python3 -c %s", script).split("\n", 1)
    assert final_url.startswith(BASE + "login?next="), final_url
    assert "%2Ftree" in final_url
    assert 'type="password"' in page


def test_wrong_password_is_refused(host):
    result = login(host, "not-the-password")
    assert not result["login_ok"]
    assert result["api_status"] == 403


def test_right_password_logs_in(host):
    result = login(host, PASSWORD)
    assert result["login_ok"], result


def test_a_kernel_runs_code_over_its_websocket(host):
    # The venv's Python has websocket-client (a jupyter-server dependency); the system Python has not.
    out = host.check_output("/opt/jupyter/bin/python -c %s %s %s %s", LOGIN_SCRIPT, BASE, PASSWORD, "1+1")
    assert json.loads(out)["result"] == "2"


def test_notebook_folder_belongs_to_the_course_user(host):
    folder = host.file(NOTEBOOKS)
    assert folder.is_directory and folder.user == USER and folder.group == "users"


def test_systemd_brings_jupyter_back_after_kill_9(host):
    target.assert_back_after_kill_9(host, "jupyter", answers, timeout=60, interval=1)


def test_notebook_folder_comes_back_after_deletion_and_restart(host):
    target.assert_folder_made_again_on_restart(host, "jupyter", NOTEBOOKS, USER, answers, timeout=60, interval=1)
    assert login(host, PASSWORD)["login_ok"]


@pytest.mark.parametrize("setting", ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                                     "Restart=on-failure"])
def test_unit_is_hardened(host, setting):
    key, value = setting.split("=")
    assert host.check_output("systemctl show -p %s --value jupyter", key) == value


def converge():
    """The scenario's converge.yml once more; returns (rc, output, changed count of the recap)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, str(ROOT / "molecule" / "jupyter" / "converge.yml")],
                            capture_output=True, text=True, env=env, timeout=900, check=False)
    output = result.stdout + result.stderr
    changed = [int(n) for n in re.findall(r"\bchanged=(\d+)", output)]
    return result.returncode, output, sum(changed)


def venv_has(host, *distributions):
    code = "import importlib.metadata as m, sys; [m.version(d) for d in sys.argv[1:]]"
    return host.run("/opt/jupyter/bin/python -c %s " + " ".join(["%s"] * len(distributions)), code,
                    *distributions).rc == 0


# Last in the file: it changes the machine. A re-run checks the venv and the extension instead of running pip and
# copying every file; what drifted must still come back, and the run after that changes nothing.
def test_a_rerun_repairs_a_venv_and_an_extension_that_drifted(host):
    purelib = host.check_output("/opt/jupyter/bin/python -c %s", "import sysconfig; print(sysconfig.get_path('purelib'))")
    extension = purelib + "/coursevm_password"
    # A requirement of the role (ipykernel) and a dependency of one (json5, through jupyterlab-server).
    host.check_output("/opt/jupyter/bin/python -m pip uninstall --yes --quiet ipykernel json5")
    assert not venv_has(host, "ipykernel") and not venv_has(host, "json5")
    host.check_output("printf '# drift\\n' >> %s/store.py && chmod 0600 %s/handlers.py && rm -f %s/identity.py",
                      extension, extension, extension)

    rc, output, changed = converge()
    assert rc == 0, output[-4000:]
    assert changed > 0, output[-4000:]
    assert venv_has(host, "ipykernel", "json5"), output[-4000:]
    for name in ("__init__.py", "handlers.py", "identity.py", "store.py"):
        installed = host.file(extension + "/" + name)
        assert installed.mode == 0o644 and installed.user == "root", name
        assert installed.sha256sum == hashlib.sha256((EXTENSION / name).read_bytes()).hexdigest(), name
    assert target.wait_until(lambda: answers(host), timeout=120)
    assert login(host, PASSWORD)["login_ok"]
    out = host.check_output("/opt/jupyter/bin/python -c %s %s %s %s", LOGIN_SCRIPT, BASE, PASSWORD, "1+1")
    assert json.loads(out)["result"] == "2"

    rc, output, changed = converge()
    assert rc == 0 and changed == 0, output[-4000:]
