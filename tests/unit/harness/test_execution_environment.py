"""The execution environment (AWX / AAP): what the collection declares it needs is what its code uses, and
`ansible-builder create` writes a build context that installs the collection and every one of its dependencies.
The image itself is not built here: that needs a container registry, which these machines cannot reach."""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# Import name -> the distribution that provides it.
DISTRIBUTIONS = {"openstack": "openstacksdk", "passlib": "libpass", "websocket": "websocket-client",
                 "argon2": "argon2-cffi"}
# Imported, and installed as a dependency of what the EE declares (checked against the installed metadata).
CARRIED = {"packaging": ("packaging", "ansible-core"), "requests": ("requests", "keystoneauth1")}
# Programs the plugins look for -> the Debian package (bindep's dpkg line) that carries them.
PROGRAMS = {"qemu-img": "qemu-utils", "sfdisk": "fdisk", "e2fsck": "e2fsprogs", "resize2fs": "e2fsprogs",
            "dumpe2fs": "e2fsprogs", "ssh": "openssh-client"}
# Not an execution environment's business: the operator's own VirtualBox (tool: vboxmanage is optional).
OPTIONAL_PROGRAMS = {"VBoxManage"}


def requirement_names(path):
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
            names[name] = line.replace(" ", "")
    return names


def third_party_imports():
    """Top-level module names imported anywhere in plugins/ (lazy imports inside functions too)."""
    stdlib = set(sys.stdlib_module_names)
    found = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ("ansible", "ansible_collections", "__future__"):
                    found.add(top)
    return found


def programs_looked_for():
    found = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r"get_bin_path\(\s*[\"']([\w.-]+)[\"']", text))
        for group in re.findall(r"for prog in \(([^)]*)\)", text):
            found.update(re.findall(r"[\"']([\w.-]+)[\"']", group))
    # Every play against the course VMs goes through Ansible's ssh connection.
    return found | {"ssh"}


def test_the_collection_metadata_names_files_that_exist():
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    for kind in ("python", "system"):
        assert (ROOT / meta["dependencies"][kind]).is_file(), kind


def test_every_third_party_import_is_a_declared_requirement_with_the_controllers_range():
    ee = requirement_names(ROOT / "meta" / "ee-requirements.txt")
    controller = requirement_names(ROOT / "requirements.txt")
    imports = third_party_imports()
    assert imports, "the scan found no imports at all"
    unknown = imports - set(DISTRIBUTIONS) - set(CARRIED)
    assert not unknown, "plugins import %s: add the distribution to DISTRIBUTIONS and meta/ee-requirements.txt" % unknown
    for module in imports & set(CARRIED):
        dist, carrier = CARRIED[module]
        requires = [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in importlib.metadata.requires(carrier)]
        assert dist in requires, "%s is no longer installed with %s: declare it in meta/ee-requirements.txt" % (
            dist, carrier)
    for module in imports & set(DISTRIBUTIONS):
        dist = DISTRIBUTIONS[module]
        assert dist in ee, "%s (imported as %s) is missing from meta/ee-requirements.txt" % (dist, module)
        assert ee[dist] == controller.get(dist), "%s: the EE and requirements.txt give different ranges" % dist
    # No test tools in an execution environment.
    assert not set(ee) & {"pytest", "molecule", "ansible-lint", "selenium", "pytest-testinfra"}


def test_every_program_the_plugins_run_is_in_bindep():
    bindep = (ROOT / "meta" / "ee-bindep.txt").read_text(encoding="utf-8")
    dpkg = {line.split()[0] for line in bindep.splitlines()
            if line.strip() and not line.startswith("#") and ("platform:dpkg" in line or "[" not in line)}
    programs = programs_looked_for() - OPTIONAL_PROGRAMS
    assert {"qemu-img", "sfdisk", "ssh"} <= programs, programs
    unknown = programs - set(PROGRAMS)
    assert not unknown, "plugins run %s: add it to PROGRAMS and meta/ee-bindep.txt" % unknown
    missing = {program: PROGRAMS[program] for program in programs if PROGRAMS[program] not in dpkg}
    assert not missing


@pytest.fixture(scope="module")
def build_context(tmp_path_factory):
    """ansible-builder create on a copy laid out like the checkout, with the collection tarball built into ee/."""
    tree = tmp_path_factory.mktemp("ee-tree")
    for name in ("ee", "meta"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("*.tar.gz"))
    shutil.copy(ROOT / "requirements.yml", tree / "requirements.yml")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                    str(tree / "ee"), str(ROOT)], capture_output=True, text=True, check=True, timeout=300)
    context = tree / "context"
    subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(tree / "ee" / "execution-environment.yml"),
                    "-c", str(context), "--output-filename", "Containerfile"],
                   capture_output=True, text=True, check=True, timeout=120)
    return context


def test_the_build_context_installs_the_collection_and_its_dependencies(build_context):
    build = build_context / "_build"
    python = requirement_names(build / "requirements.txt")
    assert set(DISTRIBUTIONS.values()) <= set(python)
    assert "qemu-utils" in (build / "bindep.txt").read_text(encoding="utf-8")
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["dependencies"]
    wanted = {c["name"]: c["version"] for c in
              yaml.safe_load((build / "requirements.yml").read_text(encoding="utf-8"))["collections"]}
    assert wanted == galaxy, "the EE installs other collections than galaxy.yml declares"
    tarballs = list((build / "collections").glob("coursevm-openstack-*.tar.gz"))
    assert len(tarballs) == 1
    containerfile = (build_context / "Containerfile").read_text(encoding="utf-8")
    install = [line for line in containerfile.splitlines() if "coursevm-openstack-" in line]
    assert install and "ansible-galaxy collection install" in install[0]
    assert "ansible-core>=2.19" in containerfile.replace(" ", "")
    # The installed collection carries its metadata, so the image's introspection finds the same packages.
    with tarfile.open(tarballs[0]) as tar:
        names = set(tar.getnames())
    assert {"meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt"} <= names
