"""The pure logic of module_utils/disk.py: sizes, format checks, .ova and Vagrant box parsing, progress, idempotence,
shrink plans."""

import bz2
import gzip
import hashlib
import io
import os
import struct
import tarfile
import threading

import pytest

from ansible_collections.coursevm.openstack.plugins.module_utils import disk

GIB = 1024 ** 3
MIB = 1024 ** 2


@pytest.mark.parametrize("text, expected", [
    ("20G", 20 * GIB), ("20 GB", 20 * GIB), ("20GiB", 20 * GIB), ("512M", 512 * MIB), ("1048576", MIB),
    ("1.5G", int(1.5 * GIB)), ("2t", 2 * 1024 * GIB), (4096, 4096),
])
def test_parse_size_reads_binary_units(text, expected):
    assert disk.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "twenty", "20X", "-5G", "G"])
def test_parse_size_refuses_what_it_cannot_read(text):
    with pytest.raises(disk.DiskError, match="is not understood"):
        disk.parse_size(text)


def test_human_sizes():
    assert disk.human(20 * GIB) == "20.0 GiB"
    assert disk.human(512) == "512 B"
    assert disk.human(3 * MIB // 2) == "1.5 MiB"


@pytest.mark.parametrize("virtual, gb", [(64 * GIB, 64), (64 * GIB + 1, 65), (MIB, 1), (0, 1), (20 * GIB, 20)])
def test_min_disk_is_the_virtual_size_rounded_up_to_whole_gib(virtual, gb):
    assert disk.min_disk_gib(virtual) == gb


def ext_head(incompat=0, compat=0):
    head = bytearray(64 * 1024)
    head[1080:1082] = b"\x53\xef"
    struct.pack_into("<II", head, 1024 + 0x5C, compat, incompat)
    return bytes(head)


def test_identify_filesystem_tells_ext_versions_apart():
    assert disk.identify_filesystem(ext_head(incompat=0x40)) == "ext4"
    assert disk.identify_filesystem(ext_head(compat=0x4)) == "ext3"
    assert disk.identify_filesystem(ext_head()) == "ext2"


@pytest.mark.parametrize("offset, magic, name", [
    (0, b"XFSB", "xfs"), (512, b"LABELONE", "LVM2 physical volume"), (0x10040, b"_BHRfS_M", "btrfs"),
    (3, b"NTFS    ", "ntfs"), (4086, b"SWAPSPACE2", "swap"), (0, b"LUKS\xba\xbe", "LUKS (encrypted)"),
])
def test_identify_filesystem_names_what_cannot_be_shrunk(offset, magic, name):
    head = bytearray(128 * 1024)
    head[offset:offset + len(magic)] = magic
    assert disk.identify_filesystem(bytes(head)) == name


def test_sniff_raw_knows_a_disk_from_a_text_file():
    assert disk.sniff_raw(b"hello, this is a note\n" * 100) is None
    mbr = bytearray(1024)
    mbr[510:512] = b"\x55\xaa"
    assert disk.sniff_raw(bytes(mbr)) == "mbr"
    gpt = bytearray(mbr)
    gpt[512:520] = b"EFI PART"
    assert disk.sniff_raw(bytes(gpt)) == "gpt"
    assert disk.sniff_raw(ext_head(incompat=0x40)) == "ext4"


def test_check_source_refuses_a_backing_chain():
    info = {"format": "qcow2", "backing-filename": "base.qcow2", "full-backing-filename": "/srv/base.qcow2"}
    with pytest.raises(disk.DiskError, match="backing file /srv/base.qcow2: a disk with a backing chain is refused"):
        disk.check_source(info, "/srv/overlay.qcow2", b"")


def test_check_source_refuses_an_unsupported_format_and_lists_the_supported():
    with pytest.raises(disk.DiskError, match=r"format 'qed', which is not supported; supported are: vmdk"):
        disk.check_source({"format": "qed"}, "/x.qed", b"")


def test_check_source_refuses_a_file_that_is_no_disk_unless_declared_raw():
    with pytest.raises(disk.DiskError, match="is not a disk image"):
        disk.check_source({"format": "raw"}, "/notes.txt", b"just text")
    assert disk.check_source({"format": "raw"}, "/blank.img", b"\0" * 1024, "raw") == "raw"
    assert disk.check_source({"format": "vdi"}, "/a.vdi", b"") == "vdi"


def test_normalise_format_maps_vhd_to_qemu_name():
    assert disk.normalise_format("vhd") == "vpc"
    assert disk.normalise_format("vmdk") == "vmdk"
    assert disk.normalise_format(None) is None


OVF = """<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="manifest-extra.iso" ovf:id="file0"/>
    <File ovf:href="{href}" ovf:id="file1" {extra}/>
    <File ovf:href="disk2.vmdk" ovf:id="file2"/>
  </References>
</Envelope>"""


def make_ova(path, href="disk1.vmdk", extra="", members=None):
    members = members if members is not None else {href: b"KDMV" + b"\0" * 508}
    with tarfile.open(path, "w") as tar:
        data = OVF.format(href=href, extra=extra).encode()
        info = tarfile.TarInfo("course.ovf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return str(path)


def ova_disk(path):
    return disk.archive_disk(path, disk.archive_compression(path))


def test_ova_disk_is_the_first_vmdk_in_the_references(tmp_path):
    ova = make_ova(tmp_path / "a.ova", members={"disk1.vmdk": b"KDMV" + b"1" * 1020, "disk2.vmdk": b"2" * 10})
    with tarfile.open(ova) as tar:
        member = disk.archive_disk_member(tar, ova)["member"]
    assert member.name == "disk1.vmdk"
    found = ova_disk(ova)
    assert (found["type"], found["member"], found["size"], found["format"]) == ("ova", "disk1.vmdk", 1024, "vmdk")
    assert found["in_place"] is True and found["provider"] is None
    spec = disk.archive_disk_spec(ova, found)
    assert spec.startswith("json:") and '"offset": %d' % member.offset_data in spec and '"driver": "vmdk"' in spec


@pytest.mark.parametrize("href", ["../../etc/cron.d/evil.vmdk", "/etc/evil.vmdk", "sub/disk1.vmdk", "..\\x.vmdk"])
def test_ova_disk_with_a_path_in_its_name_is_refused(tmp_path, href):
    ova = make_ova(tmp_path / "a.ova", href=href, members={href: b"x"})
    with pytest.raises(disk.DiskError, match="not a plain file name; refused"):
        ova_disk(ova)


def test_ova_disk_that_is_a_link_is_refused(tmp_path):
    ova = make_ova(tmp_path / "a.ova", members={"disk1.vmdk": None})
    with pytest.raises(disk.DiskError, match="not a regular file"):
        ova_disk(ova)


def test_ova_compressed_disk_and_missing_disk_are_refused(tmp_path):
    with pytest.raises(disk.DiskError, match="gzip-compressed"):
        ova_disk(make_ova(tmp_path / "a.ova", extra='ovf:compression="gzip"'))
    with pytest.raises(disk.DiskError, match="does not contain it"):
        ova_disk(make_ova(tmp_path / "b.ova", members={}))


def test_ova_that_is_no_tar_is_refused(tmp_path):
    path = tmp_path / "c.ova"
    path.write_text("not a tar")
    with pytest.raises(disk.DiskError, match="not a readable .ova"):
        ova_disk(str(path))


def test_archive_vmdk_that_refers_to_other_files_is_refused():
    info = {"format-specific": {"data": {"create-type": "monolithicFlat"}}}
    with pytest.raises(disk.DiskError, match="refers to other files"):
        disk.check_archive_disk(info, "disk1.vmdk")
    disk.check_archive_disk({"format-specific": {"data": {"create-type": "streamOptimized"}}}, "disk1.vmdk")
    with pytest.raises(disk.DiskError, match="external file /etc/shadow"):
        disk.check_archive_disk({"format-specific": {"data": {"data-file": "/etc/shadow"}}}, "box.img", "qcow2")


# ------------------------------------------------------------------------------------------ Vagrant boxes

VMDK = b"KDMV" + bytes(range(256)) * 8  # a stand-in that starts as a sparse VMDK does
QCOW2 = b"QFI\xfb" + struct.pack(">IQI", 3, 0, 0) + b"\0" * 200
BOX_OVF = OVF.replace('<File ovf:href="manifest-extra.iso" ovf:id="file0"/>', "").replace(
    '<File ovf:href="disk2.vmdk" ovf:id="file2"/>', "")


def make_box(path, members, compress=True):
    """A Vagrant box: ``members`` is [(name, bytes, or ('symlink'|'hardlink'|'chr'|'fifo'|'dir', target))],
    written in order, with './' in front of every name as Vagrant's bsdtar writes it unless the name says."""
    with tarfile.open(str(path), "w:gz" if compress else "w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                             "fifo": tarfile.FIFOTYPE, "dir": tarfile.DIRTYPE}[content[0]]
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return str(path)


def virtualbox_box(path, compress=True, extra=(), disk_name="box-disk001.vmdk"):
    return make_box(path, [("./metadata.json", b'{"provider": "virtualbox"}'), ("./Vagrantfile", b"# box\n"),
                           ("./box.ovf", BOX_OVF.format(href=disk_name, extra="").encode()),
                           ("./" + disk_name, VMDK)] + list(extra), compress)


def box_disk(path):
    return disk.archive_disk(str(path), disk.archive_compression(str(path)))


@pytest.mark.parametrize("compress", [True, False])
def test_virtualbox_box_disk_is_the_ovf_disk_whatever_the_compression(tmp_path, compress):
    box = virtualbox_box(tmp_path / "course.box", compress, extra=[("./include", ("dir", "")),
                                                                   ("./include/_Vagrantfile", b"# included\n")])
    found = box_disk(box)
    assert (found["type"], found["provider"], found["member"], found["format"]) == (
        "box", "virtualbox", "box-disk001.vmdk", "vmdk")
    assert found["compression"] == ("gzip" if compress else "") and found["in_place"] is (not compress)
    assert found["size"] == len(VMDK)


def test_box_is_recognised_by_its_content_not_its_name(tmp_path):
    gzipped = virtualbox_box(tmp_path / "course-2026")
    plain = virtualbox_box(tmp_path / "course.vmdk", compress=False)
    assert disk.archive_compression(gzipped) == "gzip"
    assert disk.archive_compression(plain) == ""
    assert box_disk(gzipped)["type"] == "box"
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 4096)
    assert disk.archive_compression(str(raw)) is None


def test_box_without_ovf_uses_its_single_vmdk(tmp_path):
    box = make_box(tmp_path / "a.box", [("metadata.json", b'{"provider": "virtualbox"}'), ("disk.vmdk", VMDK)])
    assert box_disk(box)["member"] == "disk.vmdk"


def test_libvirt_box_disk_is_its_qcow2(tmp_path):
    box = make_box(tmp_path / "a.box", [("./metadata.json", b'{"provider": "libvirt", "format": "qcow2"}'),
                                        ("./Vagrantfile", b""), ("./box.img", QCOW2)], compress=False)
    found = box_disk(box)
    assert (found["provider"], found["member"], found["format"], found["in_place"]) == (
        "libvirt", "box.img", "qcow2", True)
    assert '"driver": "qcow2"' in disk.archive_disk_spec(box, found)
    multi = make_box(tmp_path / "b.box", [("metadata.json", b'{"provider": "libvirt", "disks": [{"path": '
                                                            b'"disk1.img", "format": "qcow2"}]}'),
                                          ("disk1.img", QCOW2)])
    assert box_disk(multi)["member"] == "disk1.img"


@pytest.mark.parametrize("members, message", [
    ([("metadata.json", b'{"provider": "vmware_desktop"}'), ("disk.vmdk", VMDK)],
     "a Vagrant box for the provider 'vmware_desktop'; only virtualbox boxes"),
    ([("metadata.json", b'{"provider": "hyperv"}'), ("Virtual Hard Disks/disk.vhdx", b"vhdxfile")],
     "provider 'hyperv'"),
    ([("metadata.json", b'{"provider": "libvirt", "format": "raw"}'), ("box.img", b"\0" * 512)],
     "says its disk is raw; only a qcow2 libvirt box"),
    ([("metadata.json", b'{"provider": "libvirt"}')], "metadata.json names the disk box.img, but the archive"),
    ([("metadata.json", b'{"provider": "libvirt", "disks": [{"path": "../box.img"}]}'), ("box.img", QCOW2)],
     "names the disk '../box.img', which is not a plain file name; refused"),
    ([("metadata.json", b'{"provider": "virtualbox"}'), ("Vagrantfile", b"")],
     "the box holds no disk: neither an .ovf descriptor nor a .vmdk"),
    ([("metadata.json", b'{"provider": "virtualbox"}'), ("a.vmdk", VMDK), ("b.vmdk", VMDK)],
     r"the box holds 2 disks \(a.vmdk, b.vmdk\) and no .ovf descriptor"),
    ([("metadata.json", b'{"provider": "virtualbox"}'), ("box.ovf", BOX_OVF.format(href="box-disk001.vmdk",
                                                                                   extra="").encode())],
     "descriptor box.ovf names the disk box-disk001.vmdk, but the archive does not contain it"),
    ([("metadata.json", b"{provider: virtualbox"), ("disk.vmdk", VMDK)], "metadata.json is not valid JSON"),
    ([("metadata.json", b'{"provider": "virtualbox"}'), ("disk.vmdk", VMDK), ("./disk.vmdk", VMDK)],
     "holds disk.vmdk twice; refused"),
])
def test_box_refusals(tmp_path, members, message):
    for compress in (True, False):
        with pytest.raises(disk.DiskError, match=message):
            box_disk(make_box(tmp_path / ("a-%s.box" % compress), members, compress))


@pytest.mark.parametrize("name", ["../evil", "./../../etc/cron.d/evil", "/etc/evil", "include/../../evil",
                                  "..\\evil"])
def test_box_member_climbing_out_is_refused_even_if_it_is_not_the_disk(tmp_path, name):
    box = virtualbox_box(tmp_path / "a.box", extra=[(name, b"* * * * * root rm -rf /\n")])
    with pytest.raises(disk.DiskError, match=r"the box member .* is not a plain file name; refused \(path "
                                             r"traversal"):
        box_disk(box)


@pytest.mark.parametrize("kind, target, word", [
    ("symlink", "/etc/shadow", "symbolic link"), ("hardlink", "box.ovf", "hard link"),
    ("chr", "", "device"), ("fifo", "", "FIFO")])
def test_box_member_that_is_a_link_or_device_is_refused(tmp_path, kind, target, word):
    for name in ("./box-disk001.vmdk", "./notes"):  # as the disk, and as any other member
        members = [("./metadata.json", b'{"provider": "virtualbox"}'), (name, (kind, target))]
        if name == "./notes":
            members.append(("./box-disk001.vmdk", VMDK))
        with pytest.raises(disk.DiskError, match="is not a regular file but a %s; refused" % word):
            box_disk(make_box(tmp_path / "a.box", members))


def hashlib_bytes(count):
    """Bytes gzip cannot shrink, so that cutting a gzipped box in half cuts into its data."""
    out, seed = b"", b"x"
    while len(out) < count:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return out[:count]


def test_truncated_boxes_are_refused(tmp_path):
    plain = virtualbox_box(tmp_path / "plain.box", compress=False)
    gzipped = virtualbox_box(tmp_path / "gz.box", extra=[("./pad", hashlib_bytes(64 * 1024))])
    in_disk = box_disk(plain)["offset"] + len(VMDK) // 2
    gz_size = os.path.getsize(gzipped)
    for path, keep, message in (
            (plain, in_disk, "is truncated"),
            (gzipped, gz_size // 2, "is truncated or damaged: reading it to the end failed"),
            (gzipped, gz_size - 4, "is truncated or damaged"),  # only the gzip trailer's length is cut
            (gzipped, 100, "cannot be decompressed")):
        with open(path, "rb") as handle:
            data = handle.read(keep)
        cut = tmp_path / ("cut-%d.box" % keep)
        cut.write_bytes(data)
        with pytest.raises(disk.DiskError, match=message):
            box_disk(cut)


@pytest.mark.parametrize("head, message", [
    (b"TXT", "not a qcow2 image"),
    (b"QFI\xfb" + struct.pack(">IQ", 3, 1024) + b"\0" * 100,
     "a qcow2 overlay on a backing file: a disk with a backing chain is refused"),
    (b"QFI\xfb" + struct.pack(">IQ", 3, 0) + b"\0" * 56 + struct.pack(">Q", 4) + b"\0" * 40,
     "keeps its data in an external file; refused"),
])
def test_box_qcow2_that_names_other_files_is_refused_before_qemu_opens_it(tmp_path, head, message):
    box = make_box(tmp_path / "a.box", [("metadata.json", b'{"provider": "libvirt"}'), ("box.img", head)],
                   compress=False)
    with pytest.raises(disk.DiskError, match=message):
        box_disk(box)


def test_box_vmdk_text_descriptor_is_refused_before_anything_is_written(tmp_path):
    descriptor = b'# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "/dev/sda" 0\n'
    plain = virtualbox_box(tmp_path / "p.box", compress=False)
    with tarfile.open(plain) as tar:
        assert tar.getmember("./box-disk001.vmdk")
    for compress in (True, False):
        box = make_box(tmp_path / "a.box", [("metadata.json", b'{"provider": "virtualbox"}'),
                                            ("box-disk001.vmdk", descriptor)], compress)
        work = tmp_path / ("work-%s" % compress)
        work.mkdir()
        with pytest.raises(disk.DiskError, match="VMDK text descriptor, which refers to other files"):
            found = box_disk(box)  # plain: refused here; gzipped: when streamed out, before the file is made
            disk.extract_archive_disk(box, found, str(work))
        assert os.listdir(str(work)) == []


def test_gzip_without_tar_and_other_compressions_are_refused(tmp_path):
    gz = tmp_path / "disk.raw.gz"
    with gzip.open(str(gz), "wb") as handle:
        handle.write(b"\0" * 4096)
    with pytest.raises(disk.DiskError, match="gzip-compressed but holds no tar archive"):
        disk.archive_compression(str(gz))
    bz = tmp_path / "course.box"
    bz.write_bytes(bz2.compress(b"\0" * 4096))
    with pytest.raises(disk.DiskError, match="compressed with bzip2, which is not read here"):
        disk.archive_compression(str(bz))
    text = tmp_path / "notes.box"
    text.write_text("not a box")
    with pytest.raises(disk.DiskError, match="not a readable box"):
        box_disk(text)


@pytest.mark.parametrize("compress", [True, False])
def test_extract_streams_exactly_the_disk_into_the_work_folder(tmp_path, compress):
    box = virtualbox_box(tmp_path / "a.box", compress, extra=[("./after", b"later member")])
    os.chmod(box, 0o444)
    found = box_disk(box)
    work = tmp_path / "work"
    work.mkdir()
    seen = []
    path = disk.extract_archive_disk(box, found, str(work), lambda done, total: seen.append((done, total)))
    assert os.path.dirname(path) == str(work) and os.listdir(str(work)) == ["archive-disk.vmdk"]
    assert open(path, "rb").read() == VMDK
    assert seen[-1] == (len(VMDK), len(VMDK))


def test_parse_progress_reads_qemu_img_p_output():
    assert disk.parse_progress("    (0.00/100%)\r    (42.01/100%)\r    (100.00/100%)\r\n") == [0.0, 42.01, 100.0]
    assert disk.parse_progress("no progress here") == []


def test_up_to_date_needs_same_source_options_and_size():
    record = disk.sidecar_record("abc", {"format": "qcow2"}, {"format": "qcow2", "virtual_size": 1, "file_size": 9},
                                 "def")
    assert disk.up_to_date(record, "abc", {"format": "qcow2"}, 9)
    assert not disk.up_to_date(record, "abd", {"format": "qcow2"}, 9)
    assert not disk.up_to_date(record, "abc", {"format": "raw"}, 9)
    assert not disk.up_to_date(record, "abc", {"format": "qcow2"}, 8)
    assert not disk.up_to_date(None, "abc", {"format": "qcow2"}, 9)


def test_source_counts_as_unchanged_only_with_the_same_recorded_stat(tmp_path):
    src = tmp_path / "course.vmdk"
    src.write_bytes(b"disk")
    stat = disk.file_stat(str(src))
    record = disk.sidecar_record("abc", {}, {"format": "qcow2", "virtual_size": 1, "file_size": 9}, "def", stat)
    assert disk.source_unchanged(record, stat)
    for key in ("size", "mtime_ns", "inode", "dev"):
        assert not disk.source_unchanged(record, dict(stat, **{key: stat[key] + 1}))
    assert not disk.source_unchanged(disk.sidecar_record("abc", {}, record, "def"), stat)  # older sidecar
    assert not disk.source_unchanged(dict(record, source_sha256=None), stat)
    assert not disk.source_unchanged(None, stat)


@pytest.mark.parametrize("info, compressed", [
    ({"format": "vmdk", "format-specific": {"type": "vmdk", "data": {"create-type": "streamOptimized"}}}, True),
    ({"format": "vmdk", "format-specific": {"type": "vmdk", "data": {"create-type": "monolithicSparse"}}}, False),
    ({"format": "qcow2", "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}}}, False),
    ({"format": "vdi"}, False),
    ({}, False),
])
def test_only_a_stream_optimized_vmdk_counts_as_compressed(info, compressed):
    assert disk.source_is_compressed(info) is compressed


def test_background_sha256_gives_the_digest_or_the_error_or_stops(tmp_path):
    src = tmp_path / "data"
    src.write_bytes(os.urandom(3 * MIB))
    assert disk.BackgroundSha256(str(src), chunk=MIB).result() == hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(OSError):
        disk.BackgroundSha256(str(tmp_path / "missing")).result()
    stopped = threading.Event()
    stopped.set()
    assert disk.sha256_file(str(src), chunk=MIB, stop=stopped) is None


def test_progress_is_one_line_renamed_into_place(tmp_path):
    path = str(tmp_path / "p")
    disk.write_progress(path, "uploading: 42.0%")
    assert open(path).read() == "uploading: 42.0%\n" and sorted(os.listdir(str(tmp_path))) == ["p"]
    assert disk.progress_paths(path) == (path, path + ".tmp")


def test_progress_collision_names_the_progress_name_and_the_path_it_reaches(tmp_path):
    output, other = tmp_path / "out.qcow2", tmp_path / "other"
    output.write_bytes(b"disk")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(output)
    os.link(str(output), str(tmp_path / "hard"))
    paths = (str(other), str(output))
    for alias in ("out.qcow2", "link", "hard", "sub/../out.qcow2"):
        progress = str(tmp_path / alias)
        assert disk.progress_collision(progress, paths) == (progress, str(output)), alias
    # progress_file X writes X.tmp: a path X.tmp reaches collides too, and before it exists (by its name).
    progress = str(tmp_path / "p")
    assert disk.progress_collision(progress, (str(other), progress + ".tmp")) == (progress + ".tmp",
                                                                                  progress + ".tmp")
    assert disk.progress_collision(str(tmp_path / "p"), paths) is None
    assert disk.progress_collision(progress, ()) is None


@pytest.mark.parametrize("existing_mode", [None, 0o640])
def test_write_sidecar_renames_sorted_json_into_place_keeping_the_mode(tmp_path, existing_mode):
    path = tmp_path / "out.qcow2.json"
    if existing_mode is not None:
        path.write_text("old")
        os.chmod(str(path), existing_mode)
    umask = os.umask(0o022)
    try:
        disk.write_sidecar(str(path), {"sha256": "def", "format": "qcow2"})
    finally:
        os.umask(umask)
    assert path.read_text() == '{\n  "format": "qcow2",\n  "sha256": "def"\n}\n'
    assert os.stat(str(path)).st_mode & 0o777 == (0o644 if existing_mode is None else existing_mode)
    assert sorted(os.listdir(str(tmp_path))) == ["out.qcow2.json"]


def test_write_sidecar_that_fails_leaves_the_old_one_and_no_temporary(tmp_path):
    path = tmp_path / "out.qcow2.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        disk.write_sidecar(str(path), {"unserialisable": object()})
    assert path.read_text() == "old" and sorted(os.listdir(str(tmp_path))) == ["out.qcow2.json"]


def test_last_partition_is_the_one_that_ends_last():
    table = {"partitions": [{"start": 2048, "size": 100}, {"start": 8192, "size": 50}, {"start": 4096, "size": 10}]}
    assert disk.last_partition(table) == {"start": 8192, "size": 50}
    assert disk.partition_number(disk.last_partition(table), table) == 2
    assert disk.last_partition({"partitions": []}) is None


def test_plan_shrink_64_to_20_gib_on_an_mbr_disk():
    plan = disk.plan_shrink(64 * GIB, 20 * GIB, "dos", 2048, 64 * GIB // 512 - 2048, 4096, 64 * GIB // 4096 - 256,
                            2 * GIB // 4096)
    assert plan["disk_size"] == 20 * GIB
    assert plan["part_size"] == 20 * GIB // 512 - 2048
    assert plan["fs_blocks"] == plan["part_size"] * 512 // 4096


def test_plan_shrink_leaves_room_for_the_backup_gpt():
    plan = disk.plan_shrink(64 * GIB, 20 * GIB, "gpt", 2048, 64 * GIB // 512 - 4096, 4096, 10 ** 7, 1000)
    # The partition ends on the last MiB boundary before the 33 sectors of the backup GPT.
    assert (2048 + plan["part_size"]) * 512 == 20 * GIB - MIB
    assert (2048 + plan["part_size"]) + disk.GPT_RESERVED_SECTORS <= 20 * GIB // 512


def test_plan_shrink_whole_disk_filesystem():
    plan = disk.plan_shrink(8 * GIB, 3 * GIB, None, 0, 8 * GIB // 512, 4096, 8 * GIB // 4096, 1000)
    assert plan == {"disk_size": 3 * GIB, "part_size": 3 * GIB // 512, "fs_blocks": 3 * GIB // 4096,
                    "min_disk_size": 1000 * 4096}


def test_plan_shrink_to_less_than_the_data_says_how_much_is_needed():
    with pytest.raises(disk.DiskError) as err:
        disk.plan_shrink(64 * GIB, 5 * GIB, "dos", 2048, 64 * GIB // 512 - 2048, 4096, 10 ** 7, 12 * GIB // 4096)
    message = str(err.value)
    assert "shrink target 5.0 GiB is smaller than the data" in message
    assert "needs at least 12.0 GiB" in message
    assert "at least 13.0 GiB" in message


def test_plan_shrink_does_nothing_when_the_disk_is_already_small_enough():
    assert disk.plan_shrink(20 * GIB, 20 * GIB, "dos", 2048, 100, 4096, 100, 10) is None
    assert disk.plan_shrink(10 * GIB, 20 * GIB, "dos", 2048, 100, 4096, 100, 10) is None


def test_one_checksum_and_one_size_rule_for_both_disk_modules():
    """image_upload and disk_image share disk.py's sha256_file and min_disk_gib; the units live in sizing.py."""
    from ansible_collections.coursevm.openstack.plugins.module_utils import sizing
    from ansible_collections.coursevm.openstack.plugins.modules import image_upload
    assert image_upload.sha256_file is disk.sha256_file
    assert image_upload.min_disk_gib is disk.min_disk_gib
    assert (disk.GIB, disk.MIB) == (sizing.GIB, sizing.MIB) == (1024 ** 3, 1024 ** 2)
    assert [disk.min_disk_gib(n) for n in (0, 1, sizing.GIB, sizing.GIB + 1)] == [1, 1, 1, 2]
