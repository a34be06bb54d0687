"""The pure logic of module_utils/disk.py: sizes, format checks, OVA parsing, progress, idempotence, shrink plans."""

import io
import struct
import tarfile

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


def test_ova_disk_is_the_first_vmdk_in_the_references(tmp_path):
    ova = make_ova(tmp_path / "a.ova", members={"disk1.vmdk": b"1" * 1024, "disk2.vmdk": b"2" * 10})
    with tarfile.open(ova) as tar:
        member = disk.ova_disk_member(tar)
    assert member.name == "disk1.vmdk"
    spec, name, size = disk.ova_disk_spec(ova)
    assert (name, size) == ("disk1.vmdk", 1024)
    assert spec.startswith("json:") and '"offset": %d' % member.offset_data in spec


@pytest.mark.parametrize("href", ["../../etc/cron.d/evil.vmdk", "/etc/evil.vmdk", "sub/disk1.vmdk", "..\\x.vmdk"])
def test_ova_disk_with_a_path_in_its_name_is_refused(tmp_path, href):
    ova = make_ova(tmp_path / "a.ova", href=href, members={href: b"x"})
    with pytest.raises(disk.DiskError, match="not a plain file name; refused"):
        disk.ova_disk_spec(ova)


def test_ova_disk_that_is_a_link_is_refused(tmp_path):
    ova = make_ova(tmp_path / "a.ova", members={"disk1.vmdk": None})
    with pytest.raises(disk.DiskError, match="not a regular file"):
        disk.ova_disk_spec(ova)


def test_ova_compressed_disk_and_missing_disk_are_refused(tmp_path):
    with pytest.raises(disk.DiskError, match="gzip-compressed"):
        disk.ova_disk_spec(make_ova(tmp_path / "a.ova", extra='ovf:compression="gzip"'))
    with pytest.raises(disk.DiskError, match="does not contain it"):
        disk.ova_disk_spec(make_ova(tmp_path / "b.ova", members={}))


def test_ova_that_is_no_tar_is_refused(tmp_path):
    path = tmp_path / "c.ova"
    path.write_text("not a tar")
    with pytest.raises(disk.DiskError, match="not a readable .ova"):
        disk.ova_disk_spec(str(path))


def test_ova_vmdk_that_refers_to_other_files_is_refused():
    info = {"format-specific": {"data": {"create-type": "monolithicFlat"}}}
    with pytest.raises(disk.DiskError, match="refers to other files"):
        disk.check_ova_vmdk(info, "disk1.vmdk")
    disk.check_ova_vmdk({"format-specific": {"data": {"create-type": "streamOptimized"}}}, "disk1.vmdk")


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
