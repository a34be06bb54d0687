"""What a Galaxy user gets: the built tarball carries no caches, test output or generated inventories (heat/
files hold keys), and galaxy.yml declares every collection the roles, playbooks and plugins use."""

import re
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
