"""What a Galaxy user gets: the built tarball carries no caches, test output or generated inventories (heat/
files hold keys), galaxy.yml declares every collection the roles, playbooks and plugins use, and the tarball
installs into a fresh venv holding only ansible-core and the declared collections, where each role's documentation
renders and a role's argument spec refuses a bad option."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SITE = next(Path(p) for p in sys.path if (Path(p) / "ansible_collections" / "openstack" / "cloud").is_dir())
FQCN = re.compile(r"(?<![\w./-])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*")
IMPORTED = re.compile(r"ansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)")
# Planted into a copy of the checkout: none of them may reach the tarball.
JUNK = [".pytest_cache/v/cache/lastfailed", "plugins/modules/__pycache__/cohort.cpython-312.pyc",
        "tests/output/e2e-job.log", "inventory/example/heat/tm351_25j-course.yaml", ".build/collections/x",
        "roles/jupyter/.pytest_cache/README.md", "tests/unit/__pycache__/conftest.cpython-312.pyc"]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    tree = tmp_path_factory.mktemp("tree")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = tree / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    for name in JUNK:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("junk\n")
    out = tmp_path_factory.mktemp("out")
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    subprocess.run([str(galaxy), "collection", "build", "--output-path", str(out), str(tree)],
                   capture_output=True, text=True, check=True, timeout=300)
    return next(out.glob("coursevm-openstack-*.tar.gz"))


def test_the_tarball_holds_no_cache_test_output_or_generated_inventory(tarball):
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "roles/jupyter/tasks/main.yml" in names and "plugins/inventory/course.py" in names
    leaked = [n for n in names if re.search(
        r"(^|/)(\.pytest_cache|__pycache__|\.build)(/|$)|^inventory/[^/]+/heat/|^tests/output|\.pyc$", n)]
    assert leaked == []


def used_collections():
    used = set()
    for folder in ("roles", "playbooks", "plugins"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".yml", ".yaml", ".py", ".j2") or "__pycache__" in path.parts:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for namespace, name in FQCN.findall(text) + IMPORTED.findall(text):
                # Only real collections count (file names like config.py.j2 look alike).
                if (SITE / "ansible_collections" / namespace / name / "MANIFEST.json").exists():
                    used.add("%s.%s" % (namespace, name))
    return used - {"ansible.builtin", "coursevm.openstack"}


def test_galaxy_yml_declares_every_collection_used_with_a_range():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    declared = galaxy["dependencies"]
    used = used_collections()
    assert {"openstack.cloud", "ansible.posix", "community.general", "community.crypto"} <= used
    assert sorted(used - set(declared)) == []
    assert all(re.fullmatch(r">=[\d.]+,<[\d.]+", spec) for spec in declared.values()), declared
    requirements = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    assert dict((c["name"], c["version"]) for c in requirements) == declared
    assert "example.invalid" not in (ROOT / "galaxy.yml").read_text()


def with_dependencies(names):
    """The collections named and, from their MANIFEST.json, those they depend on (as Galaxy would install)."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            manifest = json.loads((SITE / "ansible_collections" / name.replace(".", "/") / "MANIFEST.json").read_text())
            todo.extend(manifest["collection_info"].get("dependencies") or {})
    return found


@pytest.fixture(scope="module")
def fresh(tarball, tmp_path_factory):
    """A venv with only the controller's ansible-core, a collections path with only the collections galaxy.yml
    declares (copied from the `ansible` package: Galaxy is not reachable here) and the tarball installed into it
    offline, as `ansible-galaxy collection install` installs it for a Galaxy user."""
    home = tmp_path_factory.mktemp("fresh")
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    core = "ansible-core==" + importlib.metadata.version("ansible-core")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", core],
                   capture_output=True, text=True, check=True, timeout=900)
    listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format", "json"], capture_output=True, text=True,
                            check=True).stdout
    collections = home / "collections"
    for name in with_dependencies(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]):
        namespace, collection = name.split(".")
        shutil.copytree(SITE / "ansible_collections" / namespace / collection,
                        collections / "ansible_collections" / namespace / collection)
    env = dict(PATH="%s:%s" % (venv / "bin", os.environ["PATH"]), HOME=str(home),
               ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOCAL_TEMP=str(home / "tmp"))
    install = subprocess.run([str(venv / "bin" / "ansible-galaxy"), "collection", "install", "--offline",
                              "-p", str(collections), str(tarball)], capture_output=True, text=True, env=env,
                             timeout=300, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"venv": venv, "env": env, "collections": collections, "packages": json.loads(listed)}


def test_the_fresh_venv_holds_only_ansible_core_and_the_declared_collections(fresh):
    names = {p["name"].lower() for p in fresh["packages"]}
    assert "ansible-core" in names and not names & {"ansible", "openstacksdk", "molecule", "ansible-lint"}
    installed = {"%s.%s" % (p.parent.name, p.name) for p in (fresh["collections"] / "ansible_collections").glob("*/*")}
    declared = with_dependencies(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    assert installed == declared | {"coursevm.openstack"}
    manifest = json.loads((fresh["collections"] / "ansible_collections" / "coursevm" / "openstack" / "MANIFEST.json")
                          .read_text())
    assert manifest["collection_info"]["version"] == yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_every_role_renders_with_ansible_doc_in_the_fresh_venv(fresh):
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())
    assert len(roles) >= 15
    listed = subprocess.run([str(fresh["venv"] / "bin" / "ansible-doc"), "-t", "role", "-l", "coursevm.openstack",
                             "--json"], capture_output=True, text=True, env=fresh["env"], timeout=300, check=True)
    assert sorted(name.split(".")[-1] for name in json.loads(listed.stdout)) == roles
    shown = subprocess.run([str(fresh["venv"] / "bin" / "ansible-doc"), "-t", "role", "--json",
                            *("coursevm.openstack." + role for role in roles)],
                           capture_output=True, text=True, env=fresh["env"], timeout=600, check=True)
    docs = json.loads(shown.stdout)
    assert sorted(name.split(".")[-1] for name in docs) == roles
    for role, doc in docs.items():
        assert doc["entry_points"]["main"]["options"], role


def test_a_roles_argument_spec_refuses_a_bad_option_in_the_fresh_venv(fresh, tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"name": "Use the role as a Galaxy user would", "hosts": "localhost",
                                     "gather_facts": False,
                                     "roles": [{"role": "coursevm.openstack.jupyter", "jupyter_port": "not-a-port"}]}]))
    run = subprocess.run([str(fresh["venv"] / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          str(play)], capture_output=True, text=True, timeout=300, check=False,
                         env=dict(fresh["env"], ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    tasks = json.loads(run.stdout[run.stdout.index("{"):run.stdout.rindex("}") + 1])["plays"][0]["tasks"]
    failed = [t for t in tasks if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1 and len(tasks) == 1, [t["task"]["name"] for t in tasks]
    result = failed[0]["hosts"]["localhost"]
    assert result["action"] == "ansible.builtin.validate_argument_spec"
    assert any("jupyter_port" in error for error in result["argument_errors"]), result["argument_errors"]
