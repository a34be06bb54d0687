# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk image work for the disk_image module: inspect, take the disk out of an .ova or a Vagrant box,
convert, shrink.

Everything that runs a program takes ``run(args) -> (rc, stdout, stderr)`` (``AnsibleModule.run_command`` in
the module, ``subprocess`` in tests), so the logic is testable without Ansible. Programs used: ``qemu-img``
(qemu-utils), ``sfdisk`` (fdisk), ``e2fsck``/``resize2fs``/``dumpe2fs`` (e2fsprogs). No loop device, mount or
root is needed: e2fsprogs open a filesystem inside a partition of a raw file as ``FILE?offset=BYTES``.

Every failure the user can fix raises ``DiskError`` with one sentence that says what is wrong and what to do.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import hashlib
import json
import os
import re
import struct
import tarfile
import tempfile
import threading
import xml.etree.ElementTree as ET
import zlib

from ansible_collections.coursevm.openstack.plugins.module_utils.sizing import GIB, MIB, gib_ceil

SECTOR = 512

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
    return max(1, gib_ceil(virtual_size))


def allocated_bytes(path):
    """Bytes the file really occupies (st_blocks), which is less than its size when it is sparse."""
    return os.stat(path).st_blocks * 512


def same_file(path, other):
    """True when writing or removing ``path`` would reach the file ``other``: the same name once symlinks and
    '..' are resolved, or another name (a hard link, a bind mount) for the same inode."""
    if os.path.realpath(path) == os.path.realpath(other):
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # path does not exist (yet), so it is no other name for anything
        return False


def sha256_file(path, chunk=4 * MIB, stop=None):
    """The file's SHA-256 as hex, read in chunks (disk images are many GB); disk_image and image_upload use it.
    ``stop`` (a threading.Event) set by another thread ends the reading early: None is returned then."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            if stop is not None and stop.is_set():
                return None
            digest.update(block)  # hashlib releases the GIL on large buffers: another thread runs meanwhile
    return digest.hexdigest()


class BackgroundSha256(threading.Thread):
    """sha256_file(path) in a thread, for reading the source while qemu-img converts it (both only read it, and
    they share the page cache). ``result()`` waits and returns the hex digest or raises what the hashing raised;
    ``cancel()`` ends it early (a failed conversion does not wait for the rest of a large source)."""

    def __init__(self, path, chunk=4 * MIB):
        threading.Thread.__init__(self, name="sha256 of %s" % path)
        self.daemon = True
        self.path, self.chunk, self.stopped = path, chunk, threading.Event()
        self.digest = self.error = None
        self.start()

    def run(self):
        try:
            self.digest = sha256_file(self.path, self.chunk, stop=self.stopped)
        except Exception as exc:  # handed to the caller by result()
            self.error = exc

    def cancel(self):
        self.stopped.set()
        self.join()

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.digest


def file_stat(path):
    """What says a file was not rewritten since it was last read: size, mtime (ns), inode and device."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "dev": st.st_dev}


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


# ------------------------------------------------------------------------------------- .ova and .box

# An .ova and a Vagrant box are both tar archives holding a disk: an .ova (a plain tar) its OVF descriptor and
# VMDK disk(s); a box (a tar, usually gzipped) metadata.json, maybe a Vagrantfile, and for the virtualbox
# provider box.ovf and box-disk001.vmdk, for the libvirt provider a qcow2 box.img. Both are read here the same
# way: one listing that refuses anything odd before anything is written, one choice of the disk, and then the
# disk read in place (a plain tar) or streamed out into the module's own work folder (a gzipped one).

OVF_MAX_BYTES = 16 * MIB
METADATA_MAX_BYTES = MIB
GZIP_MAGIC = b"\x1f\x8b"
# Compressions a Vagrant box may come in that are not read here; repacking with tar -czf helps.
OTHER_COMPRESSIONS = ((b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
                      (b"\x28\xb5\x2f\xfd", "zstd"))
# The Vagrant providers whose box holds a disk converted here, with that disk's format (an .ova: virtualbox's).
BOX_PROVIDERS = {"virtualbox": "vmdk", "libvirt": "qcow2"}
# How a disk taken from an archive must start. A VMDK text descriptor or a qcow2's backing/external data file
# names other files, which qemu-img would open: only self-contained disks are read out of an archive.
DISK_MAGIC = {"vmdk": b"KDMV", "qcow2": b"QFI\xfb"}
QCOW2_EXTERNAL_DATA_FILE = 1 << 2  # incompatible feature bit


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def ovf_disk_files(ovf_text):
    """The file names an OVF descriptor's References section lists, in order, with their compression."""
    try:
        root = ET.fromstring(ovf_text)
    except ET.ParseError as exc:
        raise DiskError("the archive's OVF descriptor is not valid XML: %s" % exc)
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


def is_archive_name(path):
    return path.lower().endswith((".ova", ".box"))


def _archive_noun(path):
    """What messages call the archive: by its name's extension, as the user knows it."""
    lower = path.lower()
    return ".ova" if lower.endswith(".ova") else "box" if lower.endswith(".box") else "archive"


def _archive_label(path):
    return "the " + _archive_noun(path)


def _plain_name(name):
    """A member's name without the leading './' that bsdtar writes (Vagrant packs boxes with it)."""
    while name.startswith("./"):
        name = name[2:]
    return name


def _is_tar(block):
    """A ustar, GNU or pax tar header ('ustar' at byte 257), as tar, bsdtar, Python and Go write them."""
    return len(block) >= 262 and block[257:262] == b"ustar"


def archive_compression(path):
    """Whether ``path`` is a tar archive (an .ova or a Vagrant box), by its content: 'gzip' (a gzipped tar),
    '' (a plain tar) or None (no archive: a disk). A name ending in .ova or .box counts as a plain tar even
    without the tar magic, so that opening it says what is wrong; a gzip file with no tar inside is refused."""
    head = read_head(path, 512)
    named = is_archive_name(path)
    if head[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(512)
        except (OSError, EOFError, zlib.error) as exc:
            if not named:
                return None  # not gzip after all; qemu-img says what it is
            raise DiskError("%s is gzip-compressed but cannot be decompressed (truncated or damaged): %s; copy "
                            "or download it again" % (path, exc))
        if _is_tar(inner):
            return "gzip"
        raise DiskError("%s is gzip-compressed but holds no tar archive, so it is neither a Vagrant box nor an "
                        ".ova; if it is a gzipped disk, gunzip it first" % path)
    if named:
        for magic, name in OTHER_COMPRESSIONS:
            if head.startswith(magic):
                raise DiskError("%s is compressed with %s, which is not read here: only a tar archive, plain or "
                                "gzipped, is; repack it (tar -czf) or give its disk" % (path, name))
    return "" if _is_tar(head) or named else None


def _open_archive(path, compression, stream=False):
    """The archive as a tarfile, for random access (listing) or as a stream read once front to back."""
    mode = ("r|" if stream else "r:") + ("gz" if compression == "gzip" else "")
    try:
        return tarfile.open(path, mode)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DiskError("%s is not a readable %s (an .ova or a Vagrant box is a tar archive, plain or gzipped): %s"
                        % (path, _archive_noun(path), exc))


def _member_kind(member):
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    return "special member"


def _archive_members(tar, path, compression, label):
    """The archive's files by name (a leading './', as bsdtar writes Vagrant boxes, dropped), after refusing
    what no disk archive holds: a name that climbs out ('..', absolute), a link, a device, a FIFO, a name twice,
    and an archive that ends early. The whole listing is read (tarfile checks that each member's data is there
    when it steps over it), and a gzip stream up to its checksum."""
    try:
        listed = tar.getmembers()
        if compression == "gzip":
            while tar.fileobj.read(4 * MIB):  # to the end, where gzip checks the CRC and length
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DiskError("%s is truncated or damaged: reading it to the end failed (%s); copy or download it again"
                        % (path, exc))
    members = {}
    for member in listed:
        parts = re.split(r"[/\\]", member.name)
        if member.name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", member.name):
            raise DiskError("%s member %r is not a plain file name; refused (path traversal: an absolute path or "
                            "'..')" % (label, member.name))
        if not (member.isfile() or member.isdir()):
            raise DiskError("%s member %s is not a regular file but a %s; refused (an archive's links and "
                            "devices are never read)" % (label, member.name, _member_kind(member)))
        name = _plain_name(member.name)
        if member.isdir():
            continue
        if name in members:
            raise DiskError("%s holds %s twice; refused (which one is meant is unclear)" % (label, name))
        members[name] = member
    return members


def _read_small(tar, member, limit, label):
    if member.size > limit:
        raise DiskError("%s's %s is %s, more than such a file can be; refused" % (label, member.name,
                                                                                  human(member.size)))
    return tar.extractfile(member).read()


def _named_disk(members, href, label, named_by):
    if not safe_member_name(href):
        raise DiskError("%s's %s names the disk %r, which is not a plain file name; refused (path traversal)"
                        % (label, named_by, href))
    member = members.get(href)
    if member is None:
        raise DiskError("%s's %s names the disk %s, but the archive does not contain it"
                        % (label, named_by, href))
    return member


def _vmdk_disk(tar, members, label):
    """The VMDK of an .ova or a virtualbox box: the first .vmdk in the OVF's References, else the single .vmdk."""
    ovfs = [name for name in members if name.lower().endswith(".ovf")]
    if ovfs:
        text = _read_small(tar, members[ovfs[0]], OVF_MAX_BYTES, label)
        vmdks = [(href, comp) for href, comp in ovf_disk_files(text) if href.lower().endswith(".vmdk")]
        if not vmdks:
            raise DiskError("%s's descriptor %s lists no .vmdk disk in its References" % (label, ovfs[0]))
        href, compression = vmdks[0]
        if compression:
            raise DiskError("%s's disk %s is stored %s-compressed, which is not supported; export the appliance "
                            "again without compression" % (label, href, compression))
        return _named_disk(members, href, label, "descriptor %s" % ovfs[0])
    vmdks = [name for name in members if name.lower().endswith(".vmdk")]
    if len(vmdks) == 1:
        return members[vmdks[0]]
    if not vmdks:
        raise DiskError("%s holds no disk: neither an .ovf descriptor nor a .vmdk (it holds: %s)" % (
            label, ", ".join(sorted(members)[:10]) or "nothing"))
    raise DiskError("%s holds %d disks (%s) and no .ovf descriptor that says which one boots; refused: pack the "
                    "box.ovf VirtualBox exported with them, or only the boot disk" % (
                        label, len(vmdks), ", ".join(vmdks[:10])))


def _box_metadata(tar, members, label):
    """A Vagrant box's metadata.json as a dict, or None when the archive has none (an .ova, an old box)."""
    if "metadata.json" not in members:
        return None
    try:
        metadata = json.loads(_read_small(tar, members["metadata.json"], METADATA_MAX_BYTES, label)
                              .decode("utf-8"))
    except ValueError as exc:
        raise DiskError("%s's metadata.json is not valid JSON: %s" % (label, exc))
    if not isinstance(metadata, dict):
        raise DiskError("%s's metadata.json is not a JSON object" % label)
    return metadata


def archive_disk_member(tar, path, compression=""):
    """Which member of an .ova or a Vagrant box holds its disk, refusing (DiskError) whatever is odd.

    Returns a dict: type ('box' with metadata.json, a Vagrantfile or a .box name; else 'ova'), provider (from
    metadata.json, or None), format ('vmdk' or 'qcow2') and member (the TarInfo). A virtualbox box and an .ova
    give their VMDK (the OVF's first, else the single one), a libvirt box its qcow2 (metadata.json's first
    ``disks`` entry, else box.img).
    """
    label = _archive_label(path)
    members = _archive_members(tar, path, compression, label)
    top = dict((name, m) for name, m in members.items() if "/" not in name)  # Vagrant's include/ holds no disk
    metadata = _box_metadata(tar, top, label)
    box = metadata is not None or "Vagrantfile" in top or path.lower().endswith(".box")
    provider = metadata.get("provider") if metadata else None
    if provider is not None and provider not in BOX_PROVIDERS:
        raise DiskError("%s is a Vagrant box for the provider %r; only virtualbox boxes (a VMDK disk) and libvirt "
                        "boxes (a qcow2 box.img) hold a disk converted here: get the course's virtualbox box"
                        % (label, provider))
    if provider == "libvirt":
        disks = metadata.get("disks")
        first = disks[0] if isinstance(disks, list) and disks and isinstance(disks[0], dict) else {}
        declared = first.get("format") or metadata.get("format") or "qcow2"
        if declared != "qcow2":
            raise DiskError("%s's metadata.json says its disk is %s; only a qcow2 libvirt box is read" % (
                label, declared))
        member = _named_disk(top, first.get("path") or "box.img", label, "metadata.json")
    else:
        member = _vmdk_disk(tar, top, label)
    return {"type": "box" if box else "ova", "provider": provider, "member": member,
            "format": BOX_PROVIDERS[provider or "virtualbox"]}


def check_disk_header(head, fmt, name):
    """Before qemu-img opens a disk taken from an archive: its first bytes show a self-contained disk."""
    if not head.startswith(DISK_MAGIC[fmt]):
        if fmt == "vmdk" and head.lstrip().startswith(b"#"):
            raise DiskError("the archive's disk %s is a VMDK text descriptor, which refers to other files; only a "
                            "self-contained (streamOptimized or monolithicSparse) disk is taken from an archive"
                            % name)
        raise DiskError("the archive's disk %s is not a %s image: it does not start as one" % (name, fmt))
    if fmt == "qcow2" and len(head) >= 80:
        version, backing = struct.unpack_from(">IQ", head, 4)
        incompatible = struct.unpack_from(">Q", head, 72)[0] if version >= 3 else 0
        if backing:
            raise DiskError("the archive's disk %s is a qcow2 overlay on a backing file: a disk with a backing "
                            "chain is refused; pack a flattened copy (qemu-img convert -O qcow2) instead" % name)
        if incompatible & QCOW2_EXTERNAL_DATA_FILE:
            raise DiskError("the archive's disk %s keeps its data in an external file; refused" % name)


def archive_disk(path, compression):
    """The disk of an .ova or a Vagrant box at ``path``, from the archive's listing alone (nothing is written).

    Returns a dict: type, provider, format (see archive_disk_member), compression ('gzip' or ''), member (its
    name), offset and size (of its bytes in the tar), and in_place: True when qemu-img can read the disk inside
    the file (a plain tar whose member is stored in one piece), False when it must be streamed out first.
    """
    with _open_archive(path, compression) as tar:
        found = archive_disk_member(tar, path, compression)
        member = found["member"]
        in_place = not compression and not member.issparse()
        if in_place:
            check_disk_header(tar.extractfile(member).read(512), found["format"], _plain_name(member.name))
    return dict(found, member=_plain_name(member.name), compression=compression, offset=member.offset_data,
                size=member.size, in_place=in_place)


def archive_disk_spec(path, found):
    """A qemu-img filename that reads a plain tar's disk in place: qemu's raw driver with offset/size exposes
    the member's bytes and the disk's own driver reads them. No copy of a disk of many GB, no file written."""
    spec = {"driver": found["format"], "file": {
        "driver": "raw", "offset": found["offset"], "size": found["size"],
        "file": {"driver": "file", "filename": os.path.abspath(path)}}}
    return "json:" + json.dumps(spec, sort_keys=True)


def extract_archive_disk(path, found, workdir, progress=lambda done, total: None):
    """Stream the archive's disk (``found`` from archive_disk) into ``workdir`` under our own name, never with
    tar's extract (which would use the archive's names and modes), and return the file's path.

    The archive is read once from the front up to the member, so a gzipped box is decompressed on the fly: the
    only copy written is the disk itself. Its first bytes are checked (check_disk_header) before any is written.
    """
    target = os.path.join(workdir, "archive-disk." + found["format"])
    copied = 0
    try:
        with _open_archive(path, found["compression"], stream=True) as tar:
            member = next((m for m in tar if m.offset_data == found["offset"]
                           and _plain_name(m.name) == found["member"]), None)
            if member is None:
                raise DiskError("%s changed while it was read: its disk %s is no longer at the same place" % (
                    path, found["member"]))
            source = tar.extractfile(member)
            block = source.read(4 * MIB)
            check_disk_header(block[:512], found["format"], found["member"])
            with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                while block:
                    out.write(block)
                    copied += len(block)
                    progress(copied, member.size)
                    block = source.read(4 * MIB)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DiskError("%s is truncated or damaged: reading its disk %s failed (%s)"
                        % (path, found["member"], exc))
    if copied != found["size"]:
        raise DiskError("%s is truncated: its disk %s has %d of %d bytes"
                        % (path, found["member"], copied, found["size"]))
    return target


def check_archive_disk(info, member, fmt="vmdk"):
    """An archive carries one self-contained disk; one that points at other files is refused."""
    data = (info.get("format-specific") or {}).get("data", {})
    if fmt == "vmdk":
        kind = data.get("create-type")
        if kind not in ("streamOptimized", "monolithicSparse"):
            raise DiskError("the archive's disk %s is a VMDK of type %s, which refers to other files; only a "
                            "self-contained (streamOptimized or monolithicSparse) disk is taken from an archive"
                            % (member, kind))
    elif data.get("data-file"):
        raise DiskError("the archive's disk %s keeps its data in the external file %s; refused" % (
            member, data["data-file"]))


# ------------------------------------------------------------------------------------------ progress

_PROGRESS_RE = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")


def write_progress(path, text):
    """One line (``converting: 42.0%``) in the progress file ``path``: written to ``PATH.tmp`` and renamed over it,
    so a reader (``watch cat PATH``) never sees half a line. disk_image and image_upload write it alike, and
    remove it at the end of their run."""
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text + "\n")
    os.rename(tmp, path)


def progress_paths(path):
    """Every name writing the progress file ``path`` creates, renames onto or removes."""
    return (path, path + ".tmp")


def progress_collision(progress_file, paths):
    """The first name writing the progress file creates, renames onto or removes (``progress_paths``) that reaches
    one of ``paths`` (``same_file``: by path, symlink, '..' or hard link), as ``(progress name, path)``; or None."""
    for written in progress_paths(progress_file):
        for path in paths:
            if same_file(written, path):
                return written, path
    return None


def parse_progress(text):
    """The percentages in `qemu-img convert -p` output ('    (42.01/100%)\\r' ...), in order."""
    return [float(m) for m in _PROGRESS_RE.findall(text)]


# ---------------------------------------------------------------------------------------- idempotence

def sidecar_record(source_sha256, options, dest_info, dest_sha256, source_stat=None):
    record = {
        "source_sha256": source_sha256,
        "options": options,
        "format": dest_info["format"],
        "virtual_size": dest_info["virtual_size"],
        "file_size": dest_info["file_size"],
        "sha256": dest_sha256,
    }
    if source_stat is not None:
        record["source_stat"] = source_stat
    return record


def write_sidecar(path, record):
    """The sidecar ``record`` as indented, sorted JSON in ``path``: written under a new name in the same folder and
    renamed over it, so a failed or interrupted write never leaves half a sidecar. It keeps the mode of the file
    it replaces; a new one gets what open() would give it (0666 less the umask)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(record, out, indent=2, sort_keys=True)
            out.write("\n")
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def same_output(sidecar, options, dest_size):
    """True when the output was made with the same options and is still whole: only the source may differ."""
    return bool(sidecar) and sidecar.get("options") == options and sidecar.get("file_size") == dest_size


def up_to_date(sidecar, source_sha256, options, dest_size):
    """True when the output was made from the same source bytes with the same options and is still whole."""
    return same_output(sidecar, options, dest_size) and sidecar.get("source_sha256") == source_sha256


def source_unchanged(sidecar, stat):
    """True when the sidecar recorded the source's file_stat() and it is the same now (same size, mtime to the
    nanosecond, inode and device): the source's SHA-256 is then taken from the sidecar instead of re-read."""
    recorded = (sidecar or {}).get("source_stat")
    return isinstance(recorded, dict) and recorded.get("size") is not None and recorded == stat \
        and bool(sidecar.get("source_sha256"))


def source_is_compressed(info):
    """True for a source whose data is itself compressed, as qemu-img info tells cheaply: a streamOptimized
    VMDK (deflate; what VirtualBox exports). A qcow2 may hold compressed clusters, but only reading its whole
    cluster map would tell, so it counts as not compressed."""
    data = (info.get("format-specific") or {}).get("data") or {}
    return info.get("format") == "vmdk" and data.get("create-type") == "streamOptimized"


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
