# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk image work for the disk_image module: inspect, take the disk out of an .ova, convert, shrink.

Everything that runs a program takes ``run(args) -> (rc, stdout, stderr)`` (``AnsibleModule.run_command`` in
the module, ``subprocess`` in tests), so the logic is testable without Ansible. Programs used: ``qemu-img``
(qemu-utils), ``sfdisk`` (fdisk), ``e2fsck``/``resize2fs``/``dumpe2fs`` (e2fsprogs). No loop device, mount or
root is needed: e2fsprogs open a filesystem inside a partition of a raw file as ``FILE?offset=BYTES``.

Every failure the user can fix raises ``DiskError`` with one sentence that says what is wrong and what to do.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import re
import struct
import tarfile
import xml.etree.ElementTree as ET

SECTOR = 512
MIB = 1024 ** 2
GIB = 1024 ** 3

# qemu-img's format names of the source formats we convert, with the names people know them by.
SOURCE_FORMATS = {
    "vmdk": "VMware VMDK",
    "vdi": "VirtualBox VDI",
    "vpc": "VHD (Virtual PC / Hyper-V)",
    "vhdx": "VHDX (Hyper-V)",
    "raw": "raw",
    "qcow2": "qcow2",
}
# What a user may write for src_format, to qemu-img's name.
FORMAT_ALIASES = {"vhd": "vpc", "img": "raw"}
OUTPUT_FORMATS = ("qcow2", "raw")

# MBR partition types that cannot be shrunk by resizing one ext filesystem.
MBR_EXTENDED = {"5", "f", "85"}
MBR_LVM = {"8e"}
GPT_LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
GPT_RESERVED_SECTORS = 33  # the backup GPT (header + 32 sectors of entries) at the end of the disk


class DiskError(Exception):
    """A problem with the input or the disk that the user can act on (the message says how)."""


# ---------------------------------------------------------------------------------------------- sizes

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text):
    """'20G', '20 GB', '20GiB', '512M', '1048576' -> bytes. Units are binary (1G = 1024**3), as in qemu-img."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(str(text))
    if not match:
        raise DiskError("size %r is not understood: write a number of bytes or a number with K, M, G or T "
                        "(binary units, e.g. 20G = 20 GiB)" % (text,))
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** "bkmgtp".index(unit or "b"))


def human(num_bytes):
    """Bytes for people: 20.0 GiB, 512.0 MiB."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return "%d B" % num_bytes if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return str(num_bytes)  # not reached


def min_disk_gib(virtual_size):
    """Glance's min_disk (whole GB, as Nova compares it with the flavor's disk): ceil(virtual size in GiB)."""
    return max(1, -(-int(virtual_size) // GIB))


def allocated_bytes(path):
    """Bytes the file really occupies (st_blocks), which is less than its size when it is sparse."""
    return os.stat(path).st_blocks * 512


def sha256_file(path, chunk=4 * MIB):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- inspect

def read_head(path, length=64 * 1024, offset=0):
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def sniff_raw(head):
    """What a raw disk starts with, from its first 64 KiB: 'gpt', 'mbr', a filesystem name, or None.

    qemu-img calls any file it does not recognise 'raw', a text file too; this tells a real raw disk apart.
    """
    if len(head) >= 520 and head[512:520] == b"EFI PART":
        return "gpt"
    fs = identify_filesystem(head)
    if fs:
        return fs
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return "mbr"
    return None


def identify_filesystem(head):
    """The filesystem or volume signature at the start of ``head`` (at least 64 KiB read at its offset)."""
    def at(offset, magic):
        return head[offset:offset + len(magic)] == magic

    if len(head) >= 1082 and at(1080, b"\x53\xef"):
        compat, incompat = struct.unpack_from("<II", head, 1024 + 0x5C)
        if incompat & 0x40 or incompat & 0x80:  # extents or 64bit
            return "ext4"
        return "ext3" if compat & 0x4 else "ext2"
    if at(512 + 0, b"LABELONE") or at(512 + 24, b"LVM2 001"):
        return "LVM2 physical volume"
    if at(0, b"XFSB"):
        return "xfs"
    if at(0x10040, b"_BHRfS_M"):
        return "btrfs"
    if at(3, b"NTFS    "):
        return "ntfs"
    if at(4086, b"SWAPSPACE2") or at(4086, b"SWAP-SPACE"):
        return "swap"
    if at(0x36, b"FAT") or at(0x52, b"FAT32"):
        return "vfat"
    if at(0, b"LUKS\xba\xbe"):
        return "LUKS (encrypted)"
    return None


def qemu_img_info(run, path, fmt=None):
    """`qemu-img info --output=json` as a dict; a file qemu-img cannot open is a DiskError."""
    args = ["qemu-img", "info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    rc, out, err = run(args + [path])
    if rc != 0:
        raise DiskError("qemu-img cannot read %s: %s" % (path, " ".join((err or out).split())))
    try:
        return json.loads(out)
    except ValueError:
        raise DiskError("qemu-img info gave no JSON for %s: %s" % (path, out[:200]))


def check_source(info, path, head, declared_format=None):
    """Refuse what cannot be converted on its own: backing chains, unknown formats, files that are no disk.

    ``info`` is qemu_img_info(), ``head`` the first 64 KiB of the file. Returns the qemu-img format name.
    """
    fmt = info.get("format")
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing:
        raise DiskError("%s is a %s overlay on the backing file %s: a disk with a backing chain is refused. "
                        "Flatten it first (qemu-img convert -O qcow2 %s flat.qcow2, which reads through the "
                        "chain) and give the flat file." % (path, fmt, backing, path))
    if fmt not in SOURCE_FORMATS:
        raise DiskError("%s is in format %r, which is not supported; supported are: %s." % (
            path, fmt, ", ".join("%s (%s)" % (k, v) for k, v in SOURCE_FORMATS.items())))
    if fmt == "raw" and declared_format != "raw" and sniff_raw(head) is None:
        raise DiskError("%s is not a disk image: qemu-img knows no format in it, and it starts with neither a "
                        "partition table nor a filesystem. If it really is a raw disk, set src_format: raw."
                        % path)
    return fmt


def describe(info, path):
    """The facts the module returns about one disk."""
    return {
        "path": path,
        "format": info.get("format"),
        "virtual_size": int(info.get("virtual-size", 0)),
        "allocated_bytes": allocated_bytes(path),
        "file_size": os.path.getsize(path),
        "min_disk": min_disk_gib(info.get("virtual-size", 0)),
    }


def normalise_format(fmt):
    if fmt is None:
        return None
    return FORMAT_ALIASES.get(fmt, fmt)


# ----------------------------------------------------------------------------------------------- OVA

OVF_MAX_BYTES = 16 * MIB


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def ovf_disk_files(ovf_text):
    """The file names an OVF descriptor's References section lists, in order, with their compression."""
    try:
        root = ET.fromstring(ovf_text)
    except ET.ParseError as exc:
        raise DiskError("the .ova's OVF descriptor is not valid XML: %s" % exc)
    files = []
    for refs in root.iter():
        if _local(refs.tag) != "References":
            continue
        for item in refs:
            if _local(item.tag) != "File":
                continue
            attrs = dict((_local(k), v) for k, v in item.attrib.items())
            files.append((attrs.get("href", ""), attrs.get("compression")))
    return files


def safe_member_name(name):
    """A tar member or OVF href is used only if it is a plain file name: no folders, no '..', no absolute path."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and not name.startswith(".") and "\0" not in name


def ova_disk_member(tar):
    """The tar member holding the .ova's first VMDK disk (per its OVF References), checked to be safe."""
    members = dict((m.name, m) for m in tar.getmembers())
    ovfs = [m for m in members.values() if m.name.lower().endswith(".ovf")]
    if not ovfs:
        raise DiskError("the .ova holds no .ovf descriptor (members: %s)" % ", ".join(sorted(members)[:10]))
    ovf = ovfs[0]
    if not ovf.isfile() or ovf.size > OVF_MAX_BYTES:
        raise DiskError("the .ova's descriptor %s is not a regular file of a sane size" % ovf.name)
    text = tar.extractfile(ovf).read()
    vmdks = [(href, comp) for href, comp in ovf_disk_files(text) if href.lower().endswith(".vmdk")]
    if not vmdks:
        raise DiskError("the .ova's descriptor %s lists no .vmdk disk in its References" % ovf.name)
    href, compression = vmdks[0]
    if compression:
        raise DiskError("the .ova's disk %s is stored %s-compressed, which is not supported; export the "
                        "appliance again without compression" % (href, compression))
    if not safe_member_name(href):
        raise DiskError("the .ova's descriptor names the disk %r, which is not a plain file name; refused "
                        "(path traversal)" % href)
    member = members.get(href)
    if member is None:
        raise DiskError("the .ova's descriptor names the disk %s, but the archive does not contain it" % href)
    if not member.isfile():
        raise DiskError("the .ova member %s is not a regular file (a link or device); refused" % href)
    return member


def _open_ova(ova_path):
    """The .ova as an uncompressed tar archive, or a DiskError saying it is not one."""
    try:
        return tarfile.open(ova_path, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise DiskError("%s is not a readable .ova (an OVA is a tar archive): %s" % (ova_path, exc))


def extract_ova_disk(ova_path, workdir):
    """Copy the .ova's disk into workdir (by our own name, never tar's extract) and return its path."""
    with _open_ova(ova_path) as tar:
        member = ova_disk_member(tar)
        target = os.path.join(workdir, "ova-disk.vmdk")
        source = tar.extractfile(member)
        with open(target, "wb") as out:
            for block in iter(lambda: source.read(4 * MIB), b""):
                out.write(block)
        return target, member.name


def ova_disk_spec(ova_path):
    """A qemu-img filename that reads the .ova's disk in place, inside the tar, without extracting it.

    Returns (spec, member name, member size). qemu's raw driver with offset/size exposes the member's bytes,
    and the vmdk driver reads them: no copy of a disk of many GB, and no file is ever written from the tar.
    """
    with _open_ova(ova_path) as tar:
        member = ova_disk_member(tar)
    spec = {"driver": "vmdk", "file": {"driver": "raw", "offset": member.offset_data, "size": member.size,
                                       "file": {"driver": "file", "filename": os.path.abspath(ova_path)}}}
    return "json:" + json.dumps(spec, sort_keys=True), member.name, member.size


def check_ova_vmdk(info, member):
    """An .ova carries one self-contained VMDK; a descriptor that points at other files is refused."""
    kind = (info.get("format-specific") or {}).get("data", {}).get("create-type")
    if kind not in ("streamOptimized", "monolithicSparse"):
        raise DiskError("the .ova's disk %s is a VMDK of type %s, which refers to other files; only a "
                        "self-contained (streamOptimized or monolithicSparse) disk is taken from an .ova"
                        % (member, kind))


def is_ova(path):
    return path.lower().endswith(".ova")


# ------------------------------------------------------------------------------------------ progress

_PROGRESS_RE = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")


def parse_progress(text):
    """The percentages in `qemu-img convert -p` output ('    (42.01/100%)\\r' ...), in order."""
    return [float(m) for m in _PROGRESS_RE.findall(text)]


# ---------------------------------------------------------------------------------------- idempotence

def sidecar_record(source_sha256, options, dest_info, dest_sha256):
    return {
        "source_sha256": source_sha256,
        "options": options,
        "format": dest_info["format"],
        "virtual_size": dest_info["virtual_size"],
        "file_size": dest_info["file_size"],
        "sha256": dest_sha256,
    }


def up_to_date(sidecar, source_sha256, options, dest_size):
    """True when the output was made from the same source bytes with the same options and is still whole."""
    return bool(sidecar) and sidecar.get("source_sha256") == source_sha256 \
        and sidecar.get("options") == options and sidecar.get("file_size") == dest_size


# --------------------------------------------------------------------------------------------- shrink

def last_partition(table):
    """The partition that ends last in sfdisk's JSON table; only it can be shrunk without moving data."""
    parts = table.get("partitions") or []
    if not parts:
        return None
    return max(parts, key=lambda p: int(p["start"]) + int(p["size"]))


def partition_number(part, table):
    return table["partitions"].index(part) + 1


def plan_shrink(disk_size, target, label, part_start, part_size, block_size, fs_blocks, min_blocks):
    """The sizes a shrink to ``target`` bytes of virtual disk leads to, or a DiskError saying why it cannot.

    ``label`` is 'dos', 'gpt' or None (the filesystem fills the whole disk); part_start/part_size are sectors
    (0 and disk size when there is no table); sizes of the filesystem are in its blocks. Returns a dict with
    disk_size (bytes), part_size (sectors), fs_blocks, or None when the disk is already no larger than target.
    """
    target = target - target % SECTOR
    if target >= disk_size:
        return None
    tail = GPT_RESERVED_SECTORS if label == "gpt" else 0
    new_part_sectors = target // SECTOR - tail - part_start
    if label:
        # Keep the partition's end on a MiB boundary, as partitioners do.
        end = (part_start + new_part_sectors) // (MIB // SECTOR) * (MIB // SECTOR)
        new_part_sectors = min(end - part_start, new_part_sectors)
    new_fs_blocks = min(fs_blocks, new_part_sectors * SECTOR // block_size)
    min_bytes = min_blocks * block_size
    need = part_start * SECTOR + min_bytes + tail * SECTOR
    if label:
        need = -(-need // MIB) * MIB
    if new_part_sectors <= 0 or new_fs_blocks < min_blocks:
        raise DiskError("shrink target %s is smaller than the data: the filesystem needs at least %s "
                        "(resize2fs -P), so the disk cannot be smaller than %s. Choose a target of at least "
                        "%s." % (human(target), human(min_bytes), human(need), human(-(-need // GIB) * GIB)
                                 if need > GIB else human(need)))
    return {"disk_size": target, "part_size": new_part_sectors, "fs_blocks": new_fs_blocks,
            "min_disk_size": need}


def _ext_offset(path, offset):
    return "%s?offset=%d" % (path, offset) if offset else path


def _run_checked(run, args, what, ok=(0,)):
    rc, out, err = run(args)
    if rc not in ok:
        raise DiskError("%s failed (%s exit %d): %s" % (what, args[0], rc, " ".join((err or out).split())[-600:]))
    return out


def read_table(run, raw_path):
    """sfdisk's JSON partition table of a raw file, or None when it has none."""
    rc, out, err = run(["sfdisk", "--json", raw_path])
    if rc != 0 or not out.strip():
        return None
    return json.loads(out)["partitiontable"]


def ext_geometry(run, fs_path):
    out = _run_checked(run, ["dumpe2fs", "-h", fs_path], "reading the ext superblock")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(fields["Block size"].strip()), int(fields["Block count"].strip())


def ext_min_blocks(run, fs_path):
    out = _run_checked(run, ["resize2fs", "-P", fs_path], "estimating the filesystem's minimum size")
    match = re.search(r"minimum size of the filesystem:\s*(\d+)", out)
    if not match:
        raise DiskError("resize2fs -P gave no minimum size: %s" % out.strip())
    return int(match.group(1))


def shrink_raw(run, raw_path, target, log=lambda msg: None):
    """Shrink a raw disk file in place to ``target`` bytes: e2fsck, resize2fs, shrink the last partition,
    truncate, move the backup GPT. Refuses (DiskError) anything but ext2/3/4 in the last partition or on the
    whole disk. Returns a dict describing what was done, or one with 'changed': False when no shrink is needed.
    """
    disk_size = os.path.getsize(raw_path)
    table = read_table(run, raw_path)
    if table:
        label = table.get("label")
        part = last_partition(table)
        if part is None:
            raise DiskError("the disk has a %s partition table without partitions; nothing to shrink" % label)
        number = partition_number(part, table)
        ptype = str(part.get("type", "")).lower()
        if label == "dos" and ptype in MBR_EXTENDED:
            raise DiskError("the last partition (%d) is an extended partition holding logical ones; shrinking "
                            "those is not supported" % number)
        if (label == "dos" and ptype in MBR_LVM) or (label == "gpt" and ptype.upper() == GPT_LVM):
            raise DiskError("the last partition (%d) is an LVM physical volume; shrinking LVM is not supported "
                            "(shrink the logical volume and the PV inside the VM first)" % number)
        start, size = int(part["start"]), int(part["size"])
    else:
        label, number, start, size = None, None, 0, disk_size // SECTOR
    offset = start * SECTOR
    where = "partition %d" % number if number else "the whole disk (no partition table)"
    fs = identify_filesystem(read_head(raw_path, 128 * 1024, offset))
    if fs not in ("ext2", "ext3", "ext4"):
        raise DiskError("%s holds %s; only ext2/ext3/ext4 filesystems can be shrunk here" % (
            where, fs or "no filesystem that could be recognised"))
    if target >= disk_size:
        return {"changed": False, "reason": "the disk (%s) is already no larger than the target (%s)" % (
            human(disk_size), human(target))}
    fs_path = _ext_offset(raw_path, offset)
    log("e2fsck -f on %s" % where)
    # 0: clean, 1: errors fixed; anything higher means the filesystem is not fit to be resized.
    _run_checked(run, ["e2fsck", "-f", "-y", fs_path], "checking the filesystem (e2fsck -f)", ok=(0, 1))
    block_size, fs_blocks = ext_geometry(run, fs_path)
    min_blocks = ext_min_blocks(run, fs_path)
    plan = plan_shrink(disk_size, target, label, start, size, block_size, fs_blocks, min_blocks)
    if plan["fs_blocks"] < fs_blocks:
        log("resize2fs to %d blocks of %d bytes" % (plan["fs_blocks"], block_size))
        resize_ext_in_place(run, raw_path, offset, fs_blocks * block_size, plan["fs_blocks"])
    if label:
        log("sfdisk: partition %d to %d sectors, disk to %d bytes" % (number, plan["part_size"], plan["disk_size"]))
        script = shrunk_table_script(_run_checked(run, ["sfdisk", "--dump", raw_path], "reading the partition "
                                                  "table"), number, plan["part_size"])
        boot_code = read_head(raw_path, 440)  # the MBR's boot loader code, which a new table would not keep
        os.truncate(raw_path, plan["disk_size"])
        # A fresh table from the dump: same ids and types, the backup GPT at the new end, last-lba recomputed.
        _sfdisk_write(run, raw_path, script)
        with open(raw_path, "r+b") as handle:
            handle.write(boot_code)
    else:
        os.truncate(raw_path, plan["disk_size"])
    _run_checked(run, ["e2fsck", "-f", "-n", _ext_offset(raw_path, offset)], "checking the shrunk filesystem")
    return {"changed": True, "from": disk_size, "to": plan["disk_size"], "filesystem": fs, "where": where,
            "block_size": block_size, "fs_blocks": plan["fs_blocks"], "min_fs_bytes": min_blocks * block_size,
            "min_disk_size": plan["min_disk_size"]}


def sparse_copy(src, src_off, length, dst, dst_off):
    """Copy length bytes of src at src_off to dst at dst_off, skipping holes (dst keeps its holes there)."""
    chunk = 4 * MIB
    with open(src, "rb") as fin, open(dst, "r+b" if os.path.exists(dst) else "wb") as fout:
        fd, pos, end = fin.fileno(), src_off, src_off + length
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
                hole = os.lseek(fd, data, os.SEEK_HOLE)
            except OSError:  # ENXIO: only a hole is left
                break
            if data >= end:
                break
            pos = data
            while pos < min(hole, end):
                fin.seek(pos)
                block = fin.read(min(chunk, min(hole, end) - pos))
                if block.strip(b"\0"):
                    fout.seek(dst_off + pos - src_off)
                    fout.write(block)
                pos += len(block)
            pos = max(pos, hole)
        if os.fstat(fout.fileno()).st_size < dst_off + length:
            fout.truncate(dst_off + length)


def resize_ext_in_place(run, raw_path, offset, fs_bytes, new_blocks):
    """resize2fs the ext filesystem at ``offset`` of a raw file, on a sparse copy of just that filesystem.

    resize2fs run on FILE?offset=N truncates FILE to the new filesystem size *without* the offset, cutting off
    the filesystem's end (e2fsprogs 1.47). On a file that holds only the filesystem that truncation is right.
    The copy goes back over a punched hole, so the partition holds exactly the resized filesystem.
    """
    if offset == 0:  # the file is the filesystem: resize2fs truncating it is right
        _run_checked(run, ["resize2fs", raw_path, str(new_blocks)], "shrinking the filesystem (resize2fs)")
        return
    fs_file = raw_path + ".fs"
    try:
        sparse_copy(raw_path, offset, fs_bytes, fs_file, 0)
        _run_checked(run, ["resize2fs", fs_file, str(new_blocks)], "shrinking the filesystem (resize2fs)")
        _run_checked(run, ["fallocate", "--punch-hole", "--offset", str(offset), "--length", str(fs_bytes),
                           raw_path], "clearing the old filesystem's place (fallocate --punch-hole)")
        sparse_copy(fs_file, 0, os.path.getsize(fs_file), raw_path, offset)
    finally:
        if os.path.exists(fs_file):
            os.unlink(fs_file)


def shrunk_table_script(dump, number, sectors):
    """sfdisk --dump output with partition ``number`` given ``sectors``, for a disk that gets smaller.

    The 'device:' and 'last-lba:' lines go: sfdisk works them out again for the truncated file.
    """
    lines, seen = [], 0
    for line in dump.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in ("device", "last-lba"):
            continue
        if "start=" in line:
            seen += 1
            if seen == number:
                line = re.sub(r"size=\s*\d+", "size=%d" % sectors, line)
        lines.append(line)
    if seen < number:
        raise DiskError("the partition table dump has no partition %d" % number)
    return "\n".join(lines) + "\n"


def _sfdisk_write(run, raw_path, script):
    rc, out, err = run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--wipe", "never",
                        "--wipe-partitions", "never", raw_path], data=script)
    if rc != 0:
        raise DiskError("writing the shrunk partition table failed (sfdisk exit %d): %s" % (rc, " ".join(
            (err or out).split())))
