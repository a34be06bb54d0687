"""Run our OpenStack modules through Ansible against the local cloud (tests/cloud), and look at the cloud
through openstacksdk to check what they did — or did not do.

The cloud is shared with other test sessions: every resource made here is named `t5a-...` and is removed
before and after the session. `cloud.py start` is idempotent: a running cloud is used as it is.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openstack
import pytest

from cloud_support import CLOUD, IMAGE_MIN_DISK, IMAGE_MIN_RAM, IMAGE_NAME, IMAGE_VIRTUAL_GB, PREFIX, ROOT

# tests/support (run_json) for this file's fixtures and the test modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))


def pytest_configure(config):
    config.addinivalue_line("markers", "disruptive: kills a service of the shared local cloud; tests/run.sh runs "
                            "these alone, after the tests that share the cloud")


def _collection_env():
    """Environment in which `ansible` finds this checkout as coursevm.openstack and openstack.cloud."""
    link = ROOT / ".build" / "collections" / "ansible_collections" / "coursevm" / "openstack"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    site = Path(openstack.__file__).resolve().parents[1]  # the venv's site-packages (ansible's collections)
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", "%s:%s" % (ROOT / ".build" / "collections", site))
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    env["PATH"] = "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))
    return env


@pytest.fixture(scope="session")
def clouds_yaml():
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "tests" / "cloud" / "cloud.py"), "start"],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail("the local cloud did not start: %s" % proc.stderr.strip().splitlines()[-1:])
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def env(clouds_yaml):
    env = _collection_env()
    env["OS_CLIENT_CONFIG_FILE"] = clouds_yaml
    return env


@pytest.fixture(scope="session")
def conn(clouds_yaml):
    os.environ["OS_CLIENT_CONFIG_FILE"] = clouds_yaml
    return openstack.connect(cloud=CLOUD)


def remove_test_resources(conn):
    for server in conn.compute.servers():
        if server.name.startswith(PREFIX):
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=120)
    for image in conn.image.images(owner=conn.current_project_id):
        if (image.name or "").startswith(PREFIX):
            conn.image.delete_image(image, ignore_missing=True)


@pytest.fixture(scope="session")
def test_image(conn, tmp_path_factory):
    """t5a-image: 2 GiB virtual qcow2, min_disk 3 GB, min_ram 1024 MB (made fresh each session)."""
    remove_test_resources(conn)
    path = tmp_path_factory.mktemp("image") / "t5a.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "%dG" % IMAGE_VIRTUAL_GB], check=True)
    image = conn.image.create_image(name=IMAGE_NAME, filename=str(path), disk_format="qcow2",
                                    container_format="bare", min_disk=IMAGE_MIN_DISK, min_ram=IMAGE_MIN_RAM,
                                    wait=True, validate_checksum=False)
    yield conn.image.get_image(image.id)
    remove_test_resources(conn)


@pytest.fixture(scope="session")
def ansible(env):
    """ansible(module, args, check=False, diff=False) → the module's result dict, run as `ansible localhost -m`."""

    from ansible_json import run_json  # tests/support

    def run(module, args, check=False, diff=False):
        cmd = ["ansible", "localhost", "-m", "coursevm.openstack." + module, "-a", json.dumps(args),
               # implicit localhost runs the controller's Python, which has openstacksdk
               "-e", "ansible_python_interpreter=" + sys.executable]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        return run_json(cmd, env, read=lambda out: out["plays"][0]["tasks"][0]["hosts"]["localhost"], cwd=ROOT)[1]

    return run


@pytest.fixture(scope="session")
def playbook(env, tmp_path_factory):
    """playbook(text) → {task name: localhost result}, run by ansible-playbook with the json callback."""
    from ansible_json import run_json  # tests/support

    folder = tmp_path_factory.mktemp("playbooks")

    def run(text):
        path = folder / "play.yml"
        path.write_text(text)
        return run_json(["ansible-playbook", path, "-e", "ansible_python_interpreter=" + sys.executable], env,
                        read=lambda out: {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]},
                        cwd=ROOT)[1]

    return run


def inventory(conn):
    """Every resource of the kinds a provisioning run creates, as {kind: {id: owner name}}.

    Ports and floating IPs have no name of their own: they are named after the server, router or network
    they belong to, so that resources of other sessions (named with their own prefixes) can be told apart.
    """
    project = conn.current_project_id
    servers = dict((s.id, s.name) for s in conn.compute.servers())
    networks = dict((n.id, n.name) for n in conn.network.networks())
    routers = dict((r.id, r.name) for r in conn.network.routers(project_id=project))
    ports = {}
    for port in conn.network.ports(project_id=project):
        ports[port.id] = (servers.get(port.device_id) or routers.get(port.device_id)
                          or networks.get(port.network_id) or "")
    return {
        "servers": servers,
        "networks": dict((i, n) for i, n in networks.items() if n != "public"),
        "subnets": dict((n.id, n.name) for n in conn.network.subnets(project_id=project)),
        "routers": routers,
        "ports": ports,
        "floating_ips": dict((f.id, ports.get(f.port_id, "")) for f in conn.network.ips(project_id=project)),
        # Neutron makes a project's "default" group on its first read: not something a module created.
        "security_groups": dict((g.id, g.name) for g in conn.network.security_groups(project_id=project)
                                if g.name != "default"),
        "keypairs": dict((k.name, k.name) for k in conn.compute.keypairs()),
        "images": dict((i.id, i.name or "") for i in conn.image.images()),
    }


def foreign(name):
    """Named by another test session with its own prefix (t5b-..., t6-...), or by the README's local jobs
    (courses `local` and `cohort`, tests/e2e) that tests/run.sh runs beside these tests; not by us or a module
    under test."""
    return bool(re.match(r"^(t[0-9]+[a-z]*|local|cohort)-", name or "")) and not name.startswith(PREFIX)


@pytest.fixture
def nothing_created(conn):
    """Fails the test if anything new appears in the project that is not another session's (prefixed)."""
    before = inventory(conn)
    yield before
    after = inventory(conn)
    added = dict((kind, sorted(n for i, n in after[kind].items() if i not in before[kind] and not foreign(n)))
                 for kind in after)
    assert not any(added.values()), "the check created %s" % dict((k, v) for k, v in added.items() if v)
