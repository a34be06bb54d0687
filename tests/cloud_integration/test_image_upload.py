"""playbooks/image.yml and image_upload against the local cloud's Glance, with a real disk made here.

A sparse 2.5 GiB raw disk (MBR, ext4, known files) becomes a .vdi, then the playbook converts it (shrunk to
1.5 GiB) and uploads it. Everything made in the cloud is named t6-... and removed before and after.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

from ansible_json import run_json  # tests/support, on sys.path via conftest
from cloud_support import ROOT

PREFIX = "t6-"
NAME = PREFIX + "course-image"
GIB = 1024 ** 3
MIB = 1024 ** 2
GLANCE_STORE = os.path.join(os.environ.get("COURSEVM_CLOUD_HOME", "/var/lib/coursevm-cloud"), "data", "glance",
                            "images")
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("qemu-img", "sfdisk", "mkfs.ext4", "debugfs")),
                                reason="needs qemu-utils, fdisk and e2fsprogs")


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, **kw)


def images_named(conn, prefix):
    return [i for i in conn.image.images(owner=conn.current_project_id) if (i.name or "").startswith(prefix)]


def clean(conn):
    for image in images_named(conn, PREFIX):
        conn.image.delete_image(image, ignore_missing=True)


@pytest.fixture(scope="module")
def glance(conn):
    clean(conn)
    yield conn
    clean(conn)


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """A sparse raw disk of 2.5 GiB: MBR, one partition, ext4 with two known files."""
    folder = tmp_path_factory.mktemp("t6-disk")
    root = folder / "root"
    root.mkdir()
    (root / "hello.txt").write_text("Hello from the course VM\n")
    (root / "notebook.ipynb").write_text('{"cells": [], "nbformat": 4}\n')
    raw = folder / "course.raw"
    with open(raw, "wb") as handle:
        handle.truncate(5 * GIB // 2)
    sh("sfdisk", "-q", raw, input=b"label: dos\nstart=2048, type=83\n")
    sh("mkfs.ext4", "-q", "-F", "-d", root, "-E", "offset=%d" % MIB, raw, "%dk" % ((5 * GIB // 2 - MIB) // 1024))
    return raw


def run_playbook(env, tmp_path, extra, check=False):
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    cmd = ["ansible-playbook", str(ROOT / "playbooks" / "image.yml"), "-e", "@%s" % vars_file,
           "-e", "ansible_python_interpreter=" + sys.executable]
    if check:
        cmd.append("--check")
    proc, tasks = run_json(cmd, env, timeout=900, cwd=ROOT, read=lambda out: dict(
        (t["task"]["name"].split(" : ")[-1], t["hosts"]["localhost"]) for t in out["plays"][0]["tasks"]))
    return proc.returncode, tasks


CONVERT = "Convert the course disk (skipped when the output was made from the same source)"
UPLOAD = "Upload the disk to Glance with min_disk from its virtual size"


def test_image_playbook_converts_shrinks_uploads_once_and_keeps_the_previous(glance, env, disk, tmp_path):
    vdi = tmp_path / "course.vdi"
    sh("qemu-img", "convert", "-O", "vdi", disk, vdi)
    extra = {"course_image_src": str(vdi), "course_image_name": NAME, "course_image_cloud": "coursevm-local",
             "course_image_shrink_to": "1536M", "course_image_min_ram": 1024,
             "course_image_properties": {"hw_disk_bus": "virtio", "hw_vif_model": "virtio", "os_distro": "debian"}}

    rc, tasks = run_playbook(env, tmp_path, extra, check=True)
    assert rc == 0 and tasks[CONVERT]["changed"] is True
    assert not (tmp_path / "course.qcow2").exists() and not images_named(glance, NAME)

    # The real run: the role names a progress file for the conversion and one for the upload, each shows a percent
    # while its step runs, and both are gone at the end.
    progress = dict((step, tmp_path / ("course.qcow2.%s.progress" % step)) for step in ("convert", "upload"))
    watches = dict((step, ProgressWatch(path)) for step, path in progress.items())
    for watch in watches.values():
        watch.start()
    try:
        rc, tasks = run_playbook(env, tmp_path, extra)
    finally:
        for watch in watches.values():
            watch.done.set()
            watch.join()
    assert rc == 0, tasks
    shown = " ".join(str(t.get("msg", "")) for t in tasks.values())
    for step, path in progress.items():
        assert str(path) in shown, (step, shown)
        assert any(re.search(r"\b\d+\.\d%$", text) for text in watches[step].seen), (step, watches[step].seen)
        assert not path.exists()
    converted, uploaded = tasks[CONVERT], tasks[UPLOAD]
    assert converted["shrink"]["changed"] is True
    assert converted["dest"]["virtual_size"] == 1536 * MIB
    image = glance.image.get_image(uploaded["image"]["id"])
    # min_disk = ceil(virtual size in GiB) of the shrunk disk: 1.5 GiB -> 2 (the source's 2.5 GiB would give 3).
    assert image.min_disk == math.ceil(1536 * MIB / GIB) == 2
    assert (image.min_ram, image.disk_format, image.visibility, image.status) == (1024, "qcow2", "private", "active")
    assert (image.hw_disk_bus, image.hw_vif_model, image.os_distro) == ("virtio", "virtio", "debian")
    assert image.virtual_size == 1536 * MIB
    assert image.properties["coursevm_sha256"] == converted["dest"]["sha256"]

    # Sparse source: Glance received and stored the qcow2's bytes, no more than the source has allocated, and
    # far less than its virtual size.
    source_allocated = os.stat(disk).st_blocks * 512
    assert image.size == os.path.getsize(tmp_path / "course.qcow2")
    assert image.size <= source_allocated < 5 * GIB // 2 // 16  # mkfs wrote ~66 MiB (the journal) of 2.5 GiB
    stored = os.path.join(GLANCE_STORE, image.id)
    if os.path.exists(stored):
        assert os.path.getsize(stored) == image.size

    # Again, the same disk: nothing converted, nothing uploaded, no task changed (the progress hints neither).
    rc, tasks = run_playbook(env, tmp_path, extra)
    assert rc == 0 and tasks[CONVERT]["changed"] is False and tasks[UPLOAD]["changed"] is False
    assert not [name for name, result in tasks.items() if result.get("changed")], tasks

    # A changed disk: a new image takes the name, the previous one stays under a dated name.
    changed_raw = tmp_path / "changed.raw"
    sh("qemu-img", "convert", "-O", "raw", vdi, changed_raw)
    sh("debugfs", "-w", "-R", "write /etc/hostname new-file.txt", "%s?offset=%d" % (changed_raw, MIB))
    sh("qemu-img", "convert", "-O", "vdi", changed_raw, vdi)
    rc, tasks = run_playbook(env, tmp_path, extra)
    assert rc == 0 and tasks[CONVERT]["changed"] is True and tasks[UPLOAD]["changed"] is True
    previous = tasks[UPLOAD]["previous"]
    assert previous["id"] == image.id and previous["action"] == "rename"
    assert [i.id for i in images_named(glance, NAME) if i.name == NAME] == [tasks[UPLOAD]["image"]["id"]]
    old = glance.image.get_image(image.id)
    assert old.name == previous["name"] and old.name.startswith(NAME + "-20") and old.status == "active"


def test_upload_module_deactivates_the_previous_and_updates_metadata_in_place(glance, ansible, tmp_path):
    first, second = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", first, "1G")
    sh("qemu-img", "create", "-q", "-f", "qcow2", second, "3G")
    name = PREFIX + "upload"
    base = {"cloud": "coursevm-local", "name": name}

    planned = ansible("image_upload", dict(base, filename=str(first)), check=True)
    assert planned["changed"] is True and not images_named(glance, name)
    made = ansible("image_upload", dict(base, filename=str(first)))
    assert made["uploaded"] is True and made["image"]["min_disk"] == 1  # from qemu-img: 1 GiB virtual

    same = ansible("image_upload", dict(base, filename=str(first), min_ram=512, properties={"hw_disk_bus": "scsi"}))
    assert same["uploaded"] is False and same["updated"] == ["hw_disk_bus", "min_ram"]
    assert same["image"]["id"] == made["image"]["id"]
    assert glance.image.get_image(made["image"]["id"]).hw_disk_bus == "scsi"

    new = ansible("image_upload", dict(base, filename=str(second), previous="deactivate"))
    assert new["uploaded"] is True and new["image"]["min_disk"] == 3
    assert glance.image.get_image(made["image"]["id"]).status == "deactivated"
    assert [i.name for i in images_named(glance, name)].count(name) == 1


def test_upload_bad_input_fails_clearly(glance, ansible, tmp_path):
    result = ansible("image_upload", {"cloud": "coursevm-local", "name": PREFIX + "bad",
                                      "filename": str(tmp_path / "missing.qcow2")})
    assert result.get("failed") and "does not exist or is not a regular file" in result["msg"]
    notes = tmp_path / "notes.qcow2"
    notes.write_text("not a disk")
    result = ansible("image_upload", {"cloud": "coursevm-local", "name": PREFIX + "bad", "filename": str(notes)})
    assert result.get("failed") and "could not read the virtual size" in result["msg"]
    assert not images_named(glance, PREFIX + "bad")


class ProgressWatch(threading.Thread):
    """Every distinct text the progress file shows, sampled every 5 ms while the module runs."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.seen, self.done = path, [], threading.Event()

    def run(self):
        while not self.done.wait(0.005):
            try:
                text = self.path.read_text().strip()
            except OSError:
                continue
            if text and (not self.seen or self.seen[-1] != text):
                self.seen.append(text)


def test_upload_progress_advances_to_100_and_the_file_goes(glance, ansible, tmp_path):
    raw, disk_file = tmp_path / "data.raw", tmp_path / "progress.qcow2"
    with open(raw, "wb") as handle:  # 96 MiB of random data: an upload long enough to be watched
        for unused in range(96):
            handle.write(os.urandom(MIB))
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk_file)
    progress = tmp_path / "upload.progress"
    watch = ProgressWatch(progress)
    watch.start()
    try:
        result = ansible("image_upload", {"cloud": "coursevm-local", "name": PREFIX + "progress",
                                          "filename": str(disk_file), "progress_file": str(progress)})
    finally:
        watch.done.set()
        watch.join()
    assert result["uploaded"] is True, result
    assert glance.image.get_image(result["image"]["id"]).size == os.path.getsize(disk_file)
    percents = [float(text[len("uploading: "):-1]) for text in watch.seen]
    assert all(text.startswith("uploading: ") and text.endswith("%") for text in watch.seen), watch.seen
    assert len(percents) >= 2 and percents == sorted(percents) and percents[-1] == 100.0, watch.seen
    assert not progress.exists()


def test_upload_refuses_a_progress_file_that_is_the_file_itself(glance, ansible, tmp_path):
    disk_file = tmp_path / "self.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", disk_file, "1G")
    link = tmp_path / "link.qcow2"
    link.symlink_to(disk_file)
    before = disk_file.read_bytes()
    for progress in (disk_file, link):
        result = ansible("image_upload", {"cloud": "coursevm-local", "name": PREFIX + "self",
                                          "filename": str(disk_file), "progress_file": str(progress)})
        assert result.get("failed") and "progress_file" in result["msg"], result
    assert disk_file.read_bytes() == before and link.is_symlink()
    assert not images_named(glance, PREFIX + "self")
