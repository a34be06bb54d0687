"""disk_image through Ansible on real disks made here: a partition table, an ext4 filesystem, known files.

Each disk is made by sfdisk and mkfs.ext4 -d (which fills the filesystem from a folder), then turned into
vmdk, vdi, vhd and vhdx by qemu-img, and packed into .ova files and Vagrant boxes with tarfile; the module
converts each back and the files are read back out of a raw copy with debugfs (e2fsprogs opens the partition
as FILE?offset=BYTES; no mount, no loop device), or compared with qemu-img compare.
Nothing is downloaded; the whole file runs in about a minute.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from ansible_json import run_json  # tests/support, on sys.path via conftest

MIB = 1024 ** 2
TOOLS = ("qemu-img", "sfdisk", "mkfs.ext4", "debugfs", "e2fsck", "resize2fs", "dumpe2fs")
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                reason="needs qemu-utils, fdisk and e2fsprogs (./coursevm setup)")

FILES = {
    "hello.txt": b"Hello from the course VM\n",
    "home/oustudent/notebooks/week1.ipynb": b'{"cells": [], "nbformat": 4}\n',
    "data/blob.bin": hashlib.sha256(b"seed").digest() * (3 * MIB // 32),  # 3 MiB, not compressible to nothing
}


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, **kw)


def make_disk(path, size_mib=128, label="dos", files=None, fs=True, ptype="83"):
    """A raw disk: one partition from 1 MiB to the end (or none), ext4 filled with ``files``."""
    root = path.parent / (path.name + ".root")
    for name, content in (files or FILES).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    with open(path, "wb") as handle:
        handle.truncate(size_mib * MIB)
    offset, fs_bytes = 0, size_mib * MIB
    if label:
        tail = 34 if label == "gpt" else 0
        sectors = size_mib * MIB // 512 - 2048 - tail
        ptype = {"83": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                 "8e": "E6D6D379-F507-44C2-A23C-238F2A3DF928"}[ptype] if label == "gpt" else ptype
        sh("sfdisk", "-q", path, input=("label: %s\nstart=2048, size=%d, type=%s\n" % (label, sectors, ptype)).encode())
        offset, fs_bytes = MIB, sectors * 512
    if fs:
        sh("mkfs.ext4", "-q", "-F", "-d", root, "-E", "offset=%d" % offset, path, "%dk" % (fs_bytes // 1024))
    shutil.rmtree(root)
    return path


def read_back(image, tmp_path, names=None):
    """The files' contents from inside ``image`` (any format): qemu-img to raw, then debugfs per file."""
    raw = tmp_path / ("readback-%s.raw" % os.path.basename(image))
    sh("qemu-img", "convert", "-O", "raw", image, raw)
    table = subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, text=True, check=False)
    offset = 0
    if table.returncode == 0 and table.stdout.strip():
        parts = json.loads(table.stdout)["partitiontable"]["partitions"]
        offset = max(parts, key=lambda p: p["start"] + p["size"])["start"] * 512
    spec = "%s?offset=%d" % (raw, offset) if offset else str(raw)
    fsck = subprocess.run(["e2fsck", "-f", "-n", spec], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    found = dict((name, sh("debugfs", "-R", "cat /%s" % name, spec).stdout) for name in (names or FILES))
    raw.unlink()
    return found


def virtual_size(image):
    return json.loads(sh("qemu-img", "info", "--output=json", image).stdout)["virtual-size"]


def fingerprint(path):
    stat = os.stat(path)
    with open(path, "rb") as handle:
        return stat.st_mtime_ns, hashlib.sha256(handle.read()).hexdigest()


def modules(calls, check=False):
    """Run coursevm.openstack.disk_image once per args dict in ``calls``, as the tasks of ONE playbook (one
    controller start instead of one per call); return [(failed, result)] in order. Failures do not stop it."""
    if not shutil.which("ansible-playbook"):
        pytest.fail("ansible-playbook not on PATH: run through ./coursevm test")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    tasks = [{"name": "call %d" % i, "coursevm.openstack.disk_image": args, "ignore_errors": True}
             for i, args in enumerate(calls)]
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="t6-play-", delete=False) as handle:
        json.dump(play, handle)  # JSON is YAML
    try:
        cmd = ["ansible-playbook", "-i", "localhost,", handle.name] + (["--check"] if check else [])
        results = run_json(cmd, env, read=lambda out: [t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]])[1]
    finally:
        os.unlink(handle.name)
    assert len(results) == len(calls)
    return [(bool(r.get("failed")), r) for r in results]


def module(args, check=False):
    """One call of disk_image through Ansible: (failed, result)."""
    return modules([args], check)[0]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_disk(tmp_path_factory.mktemp("src") / "course.raw")


FORMATS = [("vmdk", ""), ("vdi", ""), ("vpc", ""), ("vhdx", ""), ("vmdk", "subformat=streamOptimized"),
           ("qcow2", "")]


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory):
    """Every format made by qemu-img from the source disk, converted back to qcow2 by one playbook."""
    folder = tmp_path_factory.mktemp("formats")
    cases = []
    for i, (fmt, options) in enumerate(FORMATS):
        src = folder / ("source%d.%s" % (i, fmt))
        sh("qemu-img", "convert", "-O", fmt, *(["-o", options] if options else []), source, src)
        cases.append((src, fingerprint(src), folder / ("course%d.qcow2" % i)))
    results = modules([{"src": str(src), "dest": str(dest)} for src, unused, dest in cases])
    return dict(((fmt, options), (case, result)) for (fmt, options), case, result in zip(FORMATS, cases, results))


@pytest.mark.parametrize("fmt, options", FORMATS)
def test_each_format_converts_to_qcow2_with_the_files_intact(converted, tmp_path, fmt, options):
    (src, before, dest), (failed, result) = converted[(fmt, options)]
    assert not failed, result
    assert result["changed"] is True
    assert result["source"]["format"] == fmt
    assert result["dest"]["format"] == "qcow2"
    assert virtual_size(dest) >= 128 * MIB
    assert read_back(dest, tmp_path) == FILES
    assert fingerprint(src) == before
    assert (dest.parent / (dest.name + ".sha256")).read_text().split()[0] == result["dest"]["sha256"]


def test_raw_output_and_compressed_qcow2(source, tmp_path):
    vdi = tmp_path / "course.vdi"
    sh("qemu-img", "convert", "-O", "vdi", source, vdi)
    (failed, raw), (failed_small, small), (failed_plain, plain) = modules([
        {"src": str(vdi), "dest": str(tmp_path / "course.img"), "format": "raw"},
        {"src": str(vdi), "dest": str(tmp_path / "c.qcow2"), "compress": True},
        {"src": str(vdi), "dest": str(tmp_path / "p.qcow2")}])
    assert not failed and raw["dest"]["format"] == "raw" and raw["dest"]["virtual_size"] == 128 * MIB
    # Sparse: the raw output occupies about what the data needs, not its 128 MiB.
    assert raw["dest"]["allocated_bytes"] < 32 * MIB
    assert not failed_small and not failed_plain
    assert small["dest"]["file_size"] < plain["dest"]["file_size"]
    for image in ("course.img", "c.qcow2"):
        assert read_back(tmp_path / image, tmp_path) == FILES


def test_second_run_skips_and_check_mode_writes_nothing(source, tmp_path):
    vmdk = tmp_path / "course.vmdk"
    sh("qemu-img", "convert", "-O", "vmdk", source, vmdk)
    args = {"src": str(vmdk), "dest": str(tmp_path / "course.qcow2")}
    failed, planned = module(args, check=True)
    assert not failed and planned["changed"] is True
    assert sorted(os.listdir(tmp_path)) == ["course.vmdk"]
    (first_failed, first), (failed, again) = modules([args, args])
    assert not first_failed, first
    assert first["changed"] is True
    assert not failed and again["changed"] is False and "up to date" in again["reason"]
    made = fingerprint(tmp_path / "course.qcow2")
    assert module(args, check=True)[1]["changed"] is False
    assert fingerprint(tmp_path / "course.qcow2") == made


def ovf_text(*hrefs):
    """An OVF descriptor whose References list ``hrefs`` in order, as VirtualBox's export writes them."""
    files = "".join('<File ovf:href="%s" ovf:id="file%d"/>' % (href, i) for i, href in enumerate(hrefs, 1))
    return ('<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
            'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>%s</References></Envelope>\n' % files)


def stream_vmdk(source, path):
    """The disk as VirtualBox exports it into an .ova or a Vagrant box: a streamOptimized VMDK."""
    sh("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", source, path)
    return path


def test_ova_disk_is_taken_from_the_archive(source, tmp_path):
    vmdk = stream_vmdk(source, tmp_path / "course-disk1.vmdk")
    ovf = tmp_path / "course.ovf"
    ovf.write_text(ovf_text("course-disk1.vmdk"))
    ova = tmp_path / "course.ova"
    with tarfile.open(ova, "w") as tar:  # an OVA is a tar with the .ovf first
        tar.add(ovf, "course.ovf")
        tar.add(vmdk, "course-disk1.vmdk")
    vmdk.unlink()
    before = fingerprint(ova)
    failed, result = module({"src": str(ova), "dest": str(tmp_path / "course.qcow2")})
    assert not failed, result
    assert result["source"]["ova_member"] == "course-disk1.vmdk"
    assert read_back(tmp_path / "course.qcow2", tmp_path) == FILES
    assert fingerprint(ova) == before
    assert sorted(os.listdir(tmp_path)) == ["course.ova", "course.ovf", "course.qcow2", "course.qcow2.json",
                                            "course.qcow2.sha256"]


# ------------------------------------------------------------------------------------------ Vagrant boxes

VIRTUALBOX = json.dumps({"provider": "virtualbox"}).encode()
VAGRANTFILE = b'Vagrant.configure("2") do |config|\n  config.vm.base_mac = "0800278A2C5B"\nend\n'


def make_box(path, members, compress=True):
    """A Vagrant box as `vagrant package` makes one (bsdtar -czf, names starting './'), with Python's tarfile.

    ``members``: [(name, a file's Path | bytes | ("symlink"|"hardlink"|"chr"|"dir", target))], in order.
    """
    with tarfile.open(path, "w:gz" if compress else "w") as tar:
        for name, content in members:
            if isinstance(content, os.PathLike):
                tar.add(content, name)
                continue
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                             "dir": tarfile.DIRTYPE}[content[0]]
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def virtualbox_members(vmdk, disk_name="box-disk001.vmdk", extra=()):
    return [("./Vagrantfile", VAGRANTFILE), ("./box.ovf", ovf_text(disk_name).encode()),
            ("./" + disk_name, vmdk), ("./metadata.json", VIRTUALBOX)] + list(extra)


@pytest.fixture(scope="module")
def boxes(source, tmp_path_factory):
    """Real boxes of the source disk: gzipped and plain virtualbox boxes, one found by content only, one
    without an OVF, a libvirt box; each converted twice (and the gzipped one shrunk) in one playbook."""
    folder = tmp_path_factory.mktemp("boxes")
    parts = tmp_path_factory.mktemp("box-parts")
    vmdk = stream_vmdk(source, parts / "box-disk001.vmdk")
    qcow2 = parts / "box.img"
    sh("qemu-img", "convert", "-O", "qcow2", source, qcow2)
    include = [("./include", ("dir", "")), ("./include/_Vagrantfile", VAGRANTFILE)]  # vagrant package --include
    made = {
        "gzip": make_box(folder / "course.box", virtualbox_members(vmdk, extra=include)),
        "plain": make_box(folder / "plain.box", virtualbox_members(vmdk), compress=False),
        "by content": make_box(folder / "course-2026-vagrant", virtualbox_members(vmdk)),
        "no ovf": make_box(folder / "noovf.box", [("metadata.json", VIRTUALBOX), ("course.vmdk", vmdk)]),
        "libvirt": make_box(folder / "libvirt.box", [
            ("./metadata.json", json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": 1}).encode()),
            ("./Vagrantfile", VAGRANTFILE), ("./box.img", qcow2)]),
    }
    before = dict((kind, fingerprint(box)) for kind, box in made.items())
    out = tmp_path_factory.mktemp("box-out")
    calls = []
    for kind, box in made.items():
        args = {"src": str(box), "dest": str(out / ("%s.qcow2" % kind.replace(" ", "-")))}
        calls += [args, args]
    shrink = {"src": str(made["gzip"]), "dest": str(out / "shrunk.qcow2"), "shrink_to": "48M"}
    results = modules(calls + [shrink, shrink])
    runs = dict((kind, (results[2 * i], results[2 * i + 1])) for i, kind in enumerate(made))
    runs["shrink"] = (results[-2], results[-1])
    return {"boxes": made, "before": before, "out": out, "runs": runs}


@pytest.mark.parametrize("kind, member, compression, provider", [
    ("gzip", "box-disk001.vmdk", "gzip", "virtualbox"), ("plain", "box-disk001.vmdk", "", "virtualbox"),
    ("by content", "box-disk001.vmdk", "gzip", "virtualbox"), ("no ovf", "course.vmdk", "gzip", "virtualbox"),
    ("libvirt", "box.img", "gzip", "libvirt")])
def test_box_disk_converts_to_the_same_disk_and_a_second_run_changes_nothing(source, boxes, kind, member,
                                                                             compression, provider):
    (failed, first), (again_failed, again) = boxes["runs"][kind]
    assert not failed, first
    assert first["changed"] is True
    assert first["source"]["archive"] == {"type": "box", "member": member, "compression": compression,
                                          "provider": provider}
    assert first["source"]["format"] == ("qcow2" if kind == "libvirt" else "vmdk")
    dest = boxes["out"] / ("%s.qcow2" % kind.replace(" ", "-"))
    info = json.loads(sh("qemu-img", "info", "--output=json", dest).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 128 * MIB
    sh("qemu-img", "compare", "-f", "raw", "-F", "qcow2", source, dest)  # the same guest-visible bytes
    assert not again_failed and again["changed"] is False and "up to date" in again["reason"]
    assert again["dest"]["sha256"] == first["dest"]["sha256"]
    assert fingerprint(boxes["boxes"][kind]) == boxes["before"][kind]


def test_box_output_folder_holds_only_outputs(boxes):
    """Nothing taken out of a box is left behind: no work folder, no progress file, no disk."""
    names = sorted(os.listdir(boxes["out"]))
    assert not [n for n in names if ".work-" in n or n.endswith(".progress") or n.startswith("archive-disk")]
    assert all(n.endswith((".qcow2", ".qcow2.json", ".qcow2.sha256")) for n in names), names


def test_gzipped_box_disk_can_be_shrunk(boxes, tmp_path):
    (failed, result), (again_failed, again) = boxes["runs"]["shrink"]
    assert not failed, result
    assert result["shrink"]["changed"] is True and result["dest"]["virtual_size"] == 48 * MIB
    assert read_back(boxes["out"] / "shrunk.qcow2", tmp_path) == FILES
    assert not again_failed and again["changed"] is False


def test_box_check_mode_and_inspection_leave_nothing_behind(source, tmp_path):
    box = make_box(tmp_path / "course.box", virtualbox_members(stream_vmdk(source, tmp_path / "disk.vmdk")))
    (tmp_path / "disk.vmdk").unlink()
    before = fingerprint(box)
    (failed, planned), (inspect_failed, inspected) = modules(
        [{"src": str(box), "dest": str(tmp_path / "course.qcow2")}, {"src": str(box)}], check=True)
    assert not failed and planned["changed"] is True, planned
    assert not inspect_failed and inspected["changed"] is False, inspected
    assert inspected["source"]["virtual_size"] == 128 * MIB
    assert inspected["source"]["archive"]["member"] == "box-disk001.vmdk"
    assert sorted(os.listdir(tmp_path)) == ["course.box"]
    assert fingerprint(box) == before


def test_image_playbook_converts_a_box_next_to_it_without_uploading(source, tmp_path):
    """playbooks/image.yml (role course_image) takes a .box as it takes an .ova: course.box -> course.qcow2."""
    box = make_box(tmp_path / "course.box", virtualbox_members(stream_vmdk(source, tmp_path / "disk.vmdk")))
    (tmp_path / "disk.vmdk").unlink()
    extra = {"course_image_src": str(box), "course_image_upload": False}
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(["ansible-playbook", os.path.join(root, "playbooks", "image.yml"), "-e", json.dumps(extra)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sh("qemu-img", "compare", "-f", "raw", "-F", "qcow2", source, tmp_path / "course.qcow2")
    assert sorted(os.listdir(tmp_path)) == ["course.box", "course.qcow2", "course.qcow2.json", "course.qcow2.sha256"]


def test_bad_boxes_are_refused_before_anything_is_written(source, tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    vmdk = stream_vmdk(source, parts / "box-disk001.vmdk")
    other = stream_vmdk(source, parts / "box-disk002.vmdk")
    flat = parts / "flat.vmdk"  # a text descriptor naming a flat extent elsewhere
    flat.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"'
                    '\nRW 262144 FLAT "/etc/passwd" 0\n')
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    bad = {
        "vmware": [("./metadata.json", b'{"provider": "vmware_desktop"}'), ("./disk.vmdk", vmdk)],
        "no disk": [("./metadata.json", VIRTUALBOX), ("./Vagrantfile", VAGRANTFILE)],
        "two disks": [("./metadata.json", VIRTUALBOX), ("./box-disk001.vmdk", vmdk), ("./box-disk002.vmdk", other)],
        "dotdot": virtualbox_members(vmdk, extra=[("../../etc/cron.d/box", b"* * * * * root id\n")]),
        "absolute": virtualbox_members(vmdk, extra=[("/etc/cron.d/box", b"* * * * * root id\n")]),
        "symlink": [("./metadata.json", VIRTUALBOX), ("./box.ovf", ovf_text("box-disk001.vmdk").encode()),
                    ("./box-disk001.vmdk", ("symlink", "/etc/shadow"))],
        "hardlink": virtualbox_members(vmdk, extra=[("./passwd", ("hardlink", "/etc/passwd"))]),
        "device": virtualbox_members(vmdk, extra=[("./sda", ("chr", ""))]),
        "descriptor": virtualbox_members(flat),
    }
    paths = dict((kind, make_box(boxes / ("%s.box" % kind.replace(" ", "-")), members))
                 for kind, members in bad.items())
    paths["plain descriptor"] = make_box(boxes / "plain-descriptor.box", virtualbox_members(flat), compress=False)
    whole = make_box(tmp_path / "whole.box", virtualbox_members(vmdk)).read_bytes()
    paths["truncated"] = boxes / "truncated.box"
    paths["truncated"].write_bytes(whole[:len(whole) // 2])
    plain = make_box(tmp_path / "whole-plain.box", virtualbox_members(vmdk), compress=False).read_bytes()
    paths["truncated plain"] = boxes / "truncated-plain.box"
    paths["truncated plain"].write_bytes(plain[:len(plain) // 2])
    out = tmp_path / "out"
    out.mkdir()
    kinds = list(paths)
    messages = dict(zip(kinds, run_bad([({"src": str(paths[k]), "dest": str(out / "course.qcow2")}, [paths[k]])
                                        for k in kinds])))
    expected = {
        "vmware": "is a Vagrant box for the provider 'vmware_desktop'; only virtualbox boxes",
        "no disk": "the box holds no disk",
        "two disks": "the box holds 2 disks (box-disk001.vmdk, box-disk002.vmdk) and no .ovf descriptor",
        "dotdot": "the box member '../../etc/cron.d/box' is not a plain file name; refused (path traversal",
        "absolute": "the box member '/etc/cron.d/box' is not a plain file name; refused (path traversal",
        "symlink": "the box member ./box-disk001.vmdk is not a regular file but a symbolic link; refused",
        "hardlink": "the box member ./passwd is not a regular file but a hard link; refused",
        "device": "the box member ./sda is not a regular file but a device; refused",
        "descriptor": "box-disk001.vmdk is a VMDK text descriptor, which refers to other files",
        "plain descriptor": "box-disk001.vmdk is a VMDK text descriptor, which refers to other files",
        "truncated": "truncated.box is truncated or damaged",
        "truncated plain": "truncated-plain.box is truncated or damaged",
    }
    for kind in kinds:
        assert expected[kind] in messages[kind], (kind, messages[kind])
    assert os.listdir(out) == []


@pytest.mark.parametrize("label", ["dos", "gpt", None])
def test_shrink_keeps_the_files_and_lowers_the_virtual_size(tmp_path, label):
    big = make_disk(tmp_path / "big.raw", size_mib=256, label=label)
    boot_code = b"BOOTLOADER" * 44  # stands for GRUB's code in the MBR's first 440 bytes
    if label:
        with open(big, "r+b") as handle:
            handle.write(boot_code)
    vdi = tmp_path / "big.vdi"
    sh("qemu-img", "convert", "-O", "vdi", big, vdi)
    before = fingerprint(vdi)
    args = {"src": str(vdi), "dest": str(tmp_path / "small.qcow2"), "shrink_to": "48M"}
    (failed, result), (again_failed, again) = modules([args, args])
    assert not again_failed, again
    assert not failed, result
    assert again["changed"] is False
    assert result["shrink"]["changed"] is True and result["shrink"]["filesystem"] == "ext4"
    assert virtual_size(tmp_path / "small.qcow2") == 48 * MIB == result["dest"]["virtual_size"]
    assert read_back(tmp_path / "small.qcow2", tmp_path) == FILES
    assert fingerprint(vdi) == before
    if label:
        raw = tmp_path / "check.raw"
        sh("qemu-img", "convert", "-O", "raw", tmp_path / "small.qcow2", raw)
        # The table is still of its kind, its partition ends inside the disk (for GPT: the backup GPT is at
        # the new end), sfdisk finds no problem, and the boot code is kept.
        assert json.loads(sh("sfdisk", "--json", raw).stdout)["partitiontable"]["label"] == label
        verify = subprocess.run(["sfdisk", "--verify", str(raw)], capture_output=True, text=True, check=False)
        assert verify.returncode == 0 and "No errors detected" in verify.stdout, verify.stdout + verify.stderr
        assert "mismatch" not in verify.stderr, verify.stderr
        with open(raw, "rb") as handle:
            assert handle.read(440) == boot_code


def run_bad(cases):
    """cases: [(args, [files that must stay untouched])] -> the failure messages, from one playbook."""
    before = [dict((p, fingerprint(p)) for p in protected) for args, protected in cases]
    results = modules([args for args, protected in cases])
    for (failed, result), (args, protected), was in zip(results, cases, before):
        assert failed, result
        assert dict((p, fingerprint(p)) for p in protected) == was
    return [result["msg"] for failed, result in results]


def test_shrink_target_smaller_than_the_data_is_refused(tmp_path):
    big = make_disk(tmp_path / "big.raw", size_mib=128)
    [msg] = run_bad([({"src": str(big), "dest": str(tmp_path / "out.qcow2"), "shrink_to": "4M"}, [big])])
    assert "shrink target 4.0 MiB is smaller than the data" in msg and "Choose a target of at least" in msg
    assert sorted(os.listdir(tmp_path)) == ["big.raw"]


def test_shrink_refuses_lvm_and_unknown_filesystems(tmp_path):
    lvm = make_disk(tmp_path / "lvm.raw", size_mib=32, ptype="8e", fs=False)
    empty = make_disk(tmp_path / "empty.raw", size_mib=32, label="gpt", fs=False)
    lvm_msg, empty_msg = run_bad([
        ({"src": str(lvm), "dest": str(tmp_path / "o.qcow2"), "shrink_to": "16M"}, [lvm]),
        ({"src": str(empty), "dest": str(tmp_path / "o.qcow2"), "shrink_to": "16M"}, [empty])])
    assert "the last partition (1) is an LVM physical volume" in lvm_msg
    assert "partition 1 holds no filesystem that could be recognised; only ext2/ext3/ext4" in empty_msg


def test_bad_input_fails_clearly_and_leaves_the_source_alone(source, tmp_path):
    notes = tmp_path / "notes.vdi"
    notes.write_text("not a disk\n" * 100)
    base = tmp_path / "base.qcow2"
    sh("qemu-img", "convert", "-O", "qcow2", source, base)
    overlay = tmp_path / "overlay.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
    qed = tmp_path / "old.qed"
    sh("qemu-img", "create", "-q", "-f", "qed", qed, "16M")
    out = str(tmp_path / "o.qcow2")
    messages = run_bad([
        ({"src": str(notes), "dest": out}, [notes]),
        ({"src": str(tmp_path / "gone.vmdk"), "dest": out}, []),
        ({"src": str(overlay), "dest": out}, [overlay, base]),
        ({"src": str(qed), "dest": out}, [qed]),
        # /sys refuses new files even to root, which os.access() alone would not notice.
        ({"src": str(base), "dest": "/sys/kernel/t6-out.qcow2"}, [base]),
    ])
    expected = ["is not a disk image", "source %s does not exist" % (tmp_path / "gone.vmdk"),
                "a disk with a backing chain is refused", "format 'qed', which is not supported",
                "output folder /sys/kernel cannot be written"]
    for message, text in zip(messages, expected):
        assert text in message
    assert not (tmp_path / "o.qcow2").exists()


def test_an_output_or_progress_file_that_reaches_the_source_is_refused(source, tmp_path):
    """Issue 14: a progress_file on the source was overwritten by the progress and then removed. Every name the
    module writes that is the source (the same path, a symlink, '..' or a hard link) fails the run; the source
    keeps every byte and nothing appears next to it."""
    src = tmp_path / "course.raw"
    shutil.copyfile(str(source), str(src))
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.raw").symlink_to(src)
    os.link(str(src), str(tmp_path / "hard.raw"))
    os.link(str(src), str(tmp_path / "out.qcow2.sha256"))
    listing = sorted(os.listdir(tmp_path))
    out = str(tmp_path / "out.qcow2")
    run_bad([
        ({"src": str(src), "dest": out, "progress_file": str(src)}, [src]),
        ({"src": str(src), "progress_file": str(src)}, [src]),  # inspection only: the file was still removed
        ({"src": str(src), "dest": out, "progress_file": str(tmp_path / "link.raw")}, [src]),
        ({"src": str(src), "dest": out, "progress_file": str(tmp_path / "sub" / ".." / "course.raw")}, [src]),
        ({"src": str(src), "dest": str(tmp_path / "hard.raw")}, [src]),
        ({"src": str(src), "dest": out}, [src]),  # its checksum file would be a hard link of the source
    ])
    assert sorted(os.listdir(tmp_path)) == listing


@pytest.mark.parametrize("overrides, message", [
    ({"course_image_src": ""}, "course_image settings are wrong"),
    ({"course_image_shrink_to": "lots"}, "course_image_shrink_to must be a size like 20G (got 'lots')"),
])
def test_role_checks_its_settings_before_converting(source, tmp_path, overrides, message):
    """playbooks/image.yml stops at the role's checks: nothing converted, nothing uploaded."""
    extra = {"course_image_src": str(source), "course_image_name": "t6-never", "course_image_dest":
             str(tmp_path / "out.qcow2")}
    extra.update(overrides)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(["ansible-playbook", os.path.join(root, "playbooks", "image.yml"), "-e", json.dumps(extra)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode != 0
    assert message in " ".join((proc.stdout + proc.stderr).split())
    assert "TASK [coursevm.openstack.course_image : Convert the course disk" not in proc.stdout
    assert not os.listdir(tmp_path)
