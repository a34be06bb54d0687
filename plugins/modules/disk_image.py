#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: disk_image
short_description: Inspect a VM disk and convert it to qcow2 or raw, optionally shrinking it
version_added: "0.1.0"
description:
  - Inspects a disk image (format, virtual size, allocated bytes). A disk with a backing file is refused.
  - Converts a VMDK, VDI, VHD, VHDX, raw or qcow2 disk, the first VMDK disk of an C(.ova), or the disk of a
    Vagrant box (C(.box)), to qcow2 (optionally compressed) or raw, with C(qemu-img), or with
    C(VBoxManage clonemedium) when asked for.
  - An C(.ova) or a C(.box) is recognised by its content (a tar archive, plain or gzipped), whatever its name.
    A box for the C(virtualbox) provider gives the first disk its C(box.ovf) lists, else its single C(.vmdk);
    one for C(libvirt) its qcow2 C(box.img). The archive is listed first and refused, before anything is
    written, when it holds a link, a device, a name with C(..) or an absolute path, no disk, several disks and
    no OVF to choose, a disk that refers to other files, when it is truncated, or when it is a box for another
    provider. A plain tar's disk is read in place; a gzipped box's disk is streamed out (never with tar's
    extract) into the module's own temporary folder, next to O(dest) (or in C(TMPDIR) without O(dest)), which
    is removed at the end, failed or not.
  - Optionally shrinks the virtual size to O(shrink_to) when the disk's last partition (or the whole disk)
    holds an ext2/3/4 filesystem whose data fits, using C(e2fsck), C(resize2fs) and C(sfdisk) on a sparse raw
    copy (no loop device, no mount, no libguestfs). Anything else is refused with the reason.
  - Writes C(DEST.sha256) (the output's SHA-256, in C(sha256sum -c) format) and C(DEST.json) (the source's
    SHA-256, size, mtime, inode and device, and the options). A later run with the same source bytes and
    options changes nothing.
  - When a conversion runs, the source's SHA-256 is computed while qemu-img converts it (both only read it),
    not before; the output's SHA-256 is computed after the conversion (a qcow2 is not written in order).
  - Long conversions write their progress (C(42.0%)) to O(progress_file) while they run.
  - The source is only ever read. The output is written under a temporary name in the same folder and
    renamed into place, so a failed run leaves no partial output. A run in which O(dest), O(progress_file) or a
    name made from them (C(DEST.sha256), C(DEST.json), C(DEST.progress), the progress file's C(.tmp)) is the
    source, by its path, a symlink, C(..) or a hard link, fails before anything is written.
version_added_collection: coursevm.openstack
author:
  - coursevm.openstack contributors (@coursevm)
requirements:
  - qemu-img (Debian C(qemu-utils))
  - sfdisk, e2fsck, resize2fs, dumpe2fs (Debian C(fdisk), C(e2fsprogs)) for O(shrink_to)
  - VBoxManage only for O(tool=vboxmanage)
options:
  src:
    description:
      - The disk image to read (C(.vmdk), C(.vdi), C(.vhd), C(.vhdx), raw, C(.qcow2)), an C(.ova), or a Vagrant
        box (C(.box), a tar archive, gzipped or not, for the virtualbox or libvirt provider).
    type: path
    required: true
  src_format:
    description:
      - The source's format, instead of letting qemu-img detect it. C(vhd) is qemu-img's C(vpc).
      - Needed only for a raw disk that starts with neither a partition table nor a filesystem.
      - Not used for an C(.ova) or a C(.box), whose content says what their disk is.
    type: str
    choices: [vmdk, vdi, vhd, vpc, vhdx, raw, qcow2]
  dest:
    description:
      - The output file. Its folder must exist and be writable.
      - Without O(dest) the module only inspects O(src) and changes nothing.
    type: path
  format:
    description: The output format.
    type: str
    choices: [qcow2, raw]
    default: qcow2
  compress:
    description:
      - Compress the qcow2 output (C(qemu-img convert -c)). Smaller upload, slower conversion; the VM reads
        compressed clusters normally.
      - C(auto) compresses when the source is itself compressed, so the output is not twice the size of what
        came in; qemu-img info tells that for a streamOptimized VMDK (what VirtualBox exports, deflate). Any
        other source is not compressed, a qcow2 too (whether it holds compressed clusters is not known
        cheaply); give C(true) for that. With O(format=raw), C(auto) never compresses.
      - C(true) compresses (only for O(format=qcow2)); C(false) never does. The choice made is returned as
        RV(compressed).
    type: raw
    default: auto
  tool:
    description:
      - C(qemu-img) converts directly. C(vboxmanage) uses C(VBoxManage clonemedium) to write a raw copy (then
        qemu-img for qcow2), for disks only VirtualBox reads well; it fails when VBoxManage is not installed.
    type: str
    choices: [qemu-img, vboxmanage]
    default: qemu-img
  shrink_to:
    description:
      - Lower the virtual size to this size (e.g. C(20G); binary units, C(G) = GiB). The filesystem in the last
        partition, or on the whole disk, must be ext2/3/4 and its data must fit; otherwise the module fails
        and says why. A disk already no larger than this is left at its size.
    type: str
  force:
    description: Convert again even when the output is up to date.
    type: bool
    default: false
  trust_source_stat:
    description:
      - Whether the source counts as unchanged, without reading it, when its size, modification time (to the
        nanosecond), inode and device are those C(DEST.json) recorded when the output was made from it.
        A changed size or mtime (any rewrite, copy or C(touch)) always makes the module read and checksum the
        source again; so does a C(DEST.json) without them (written by an older version).
      - C(false) checksums the whole source on every run, for a source rewritten in place with its old mtime
        restored (C(touch -d), C(rsync -t) onto the same inode).
    type: bool
    default: true
  progress_file:
    description:
      - Where the conversion writes its progress while it runs (C(watch cat FILE)). Removed when done.
      - Defaults to C(DEST.progress).
      - The source, the output, C(DEST.sha256) or C(DEST.json) (by path, symlink or hard link) is refused.
    type: path
notes:
  - Check mode reads and checksums the source and reports whether a conversion would happen. It does not try
    the shrink (that needs a raw copy), so a target smaller than the data is found only by a real run, which
    then fails before writing the output.
  - Checking whether the output is up to date reads the whole source once (SHA-256), unless the source's
    size, mtime, inode and device are those recorded in C(DEST.json) (see O(trust_source_stat)). A run that
    converts anyway (no output yet, other options, O(force)) reads the source for its checksum while
    qemu-img converts it.
  - A gzipped box is decompressed on every run, also a run that then finds the output up to date, and also in
    check mode or without O(dest), since its disk is streamed out to learn its size. Its folder needs room for that
    disk (about the box's size) besides the output; the gzipped archive itself is never unpacked whole.
seealso:
  - module: coursevm.openstack.image_upload
"""

EXAMPLES = r"""
- name: Inspect a VirtualBox disk
  coursevm.openstack.disk_image:
    src: /srv/images/course.vdi
  register: course_disk

- name: Convert the VirtualBox appliance's disk to compressed qcow2, shrunk from 64 GB to 20 GB
  coursevm.openstack.disk_image:
    src: /srv/images/course.ova
    dest: /srv/images/course.qcow2
    compress: true
    shrink_to: 20G
  register: course_qcow2

- name: Convert the course's Vagrant box (virtualbox provider) to qcow2
  coursevm.openstack.disk_image:
    src: /srv/images/course-2026.box
    dest: /srv/images/course-2026.qcow2
  register: course_box_qcow2

- name: Show the size Glance's min_disk will need
  ansible.builtin.debug:
    msg: "{{ course_qcow2.dest.virtual_size }} bytes, min_disk {{ course_qcow2.dest.min_disk }} GB"
"""

RETURN = r"""
source:
  description: The source disk as qemu-img sees it.
  returned: always
  type: dict
  contains:
    path:
      description: The source path.
      type: str
      returned: always
    format:
      description: The format in qemu-img's words (vmdk, vdi, vpc for VHD, vhdx, raw or qcow2).
      type: str
      returned: always
    virtual_size:
      description: Virtual size in bytes.
      type: int
      returned: always
    allocated_bytes:
      description: Bytes the file occupies on disk; a sparse file uses less than its size.
      type: int
      returned: always
    file_size:
      description: The file's apparent size in bytes.
      type: int
      returned: always
    min_disk:
      description: The virtual size in GiB, rounded up.
      type: int
      returned: always
    sha256:
      description: SHA-256 of the source file (of the whole archive for an .ova or a .box).
      type: str
      returned: when dest is given
    ova_member:
      description: The tar member that holds the disk of an .ova.
      type: str
      returned: for an .ova
    archive:
      description: The archive the disk was taken from.
      type: dict
      returned: for an .ova or a .box
      contains:
        type:
          description: C(box) (a Vagrant box) or C(ova).
          type: str
          returned: always
        member:
          description: The tar member that holds the disk (without a leading C(./)).
          type: str
          returned: always
        compression:
          description: C(gzip), or an empty string for a plain tar.
          type: str
          returned: always
        provider:
          description: The Vagrant provider from the box's metadata.json (C(virtualbox) or C(libvirt)).
          type: str
          returned: always (null when the archive has no metadata.json)
  sample:
    path: /srv/course.vdi
    format: vdi
    virtual_size: 68719476736
    allocated_bytes: 9123456789
    file_size: 9123459072
    min_disk: 64
dest:
  description: The output disk (after the run; in check mode only its path and format).
  returned: when dest is given
  type: dict
  contains:
    path:
      description: The output path.
      type: str
      returned: always
    format:
      description: The output format, qcow2 or raw.
      type: str
      returned: always
    virtual_size:
      description: Virtual size in bytes.
      type: int
      returned: unless check mode
    allocated_bytes:
      description: Bytes on disk.
      type: int
      returned: unless check mode
    file_size:
      description: Apparent size in bytes.
      type: int
      returned: unless check mode
    min_disk:
      description: The virtual size in GiB rounded up, for Glance's min_disk.
      type: int
      returned: unless check mode
    sha256:
      description: SHA-256 of the output, also written to DEST.sha256.
      type: str
      returned: unless check mode
shrink:
  description: What the shrink did, or why nothing needed doing.
  returned: when shrink_to is given and a conversion ran
  type: dict
  sample:
    changed: true
    from: 68719476736
    to: 21474836480
    filesystem: ext4
    where: partition 1
checksum_file:
  description: The path of DEST.sha256.
  returned: when dest is given
  type: str
compressed:
  description: Whether the output is (or would be) compressed, after O(compress=auto) made its choice.
  returned: when dest is given
  type: bool
reason:
  description: Why nothing was converted.
  returned: when dest is given and nothing changed
  type: str
seconds:
  description: How long the conversion took.
  returned: when a conversion ran
  type: float
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.coursevm.openstack.plugins.module_utils import disk


class Converter:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.src = self.params["src"]
        self.dest = self.params["dest"]
        self.progress_file = self.params["progress_file"] or (self.dest + ".progress" if self.dest else None)
        self.work = None  # the module's temporary folder, made when first needed (workdir)
        self.archive = None  # the disk of an .ova or a Vagrant box (disk.archive_disk), for an archive source
        self.source_info = None  # qemu-img info of the disk read (inspect)
        self.compress_wanted = "auto"  # compress as given (validate)
        self.compress = None  # True/False once compress (maybe auto) is decided (decide_compress)

    def run(self, args, data=None):
        return self.module.run_command(args, data=data, binary_data=False, environ_update={"LC_ALL": "C"})

    # ------------------------------------------------------------------------------------- checks

    def validate(self):
        p = self.params
        if not os.path.exists(self.src):
            raise disk.DiskError("source %s does not exist" % self.src)
        if not os.path.isfile(self.src):
            raise disk.DiskError("source %s is not a regular file" % self.src)
        if not os.access(self.src, os.R_OK):
            raise disk.DiskError("source %s cannot be read by this user" % self.src)
        self.refuse_writes_to_source()
        self.refuse_progress_on_outputs()
        self.compress_wanted = compress_choice(p["compress"])
        if self.compress_wanted is True and p["format"] != "qcow2":
            raise disk.DiskError("compress: true needs format: qcow2 (raw cannot be compressed)")
        if p["shrink_to"] is not None:
            self.target = disk.parse_size(p["shrink_to"])
            if self.target < disk.MIB:
                raise disk.DiskError("shrink_to %s is below 1 MiB; give a size like 20G" % p["shrink_to"])
            for prog in ("sfdisk", "e2fsck", "resize2fs", "dumpe2fs"):
                if not self.module.get_bin_path(prog):
                    raise disk.DiskError("shrink_to needs %s, which is not installed (Debian packages fdisk and "
                                         "e2fsprogs)" % prog)
        if not self.module.get_bin_path("qemu-img"):
            raise disk.DiskError("qemu-img is not installed (Debian package qemu-utils)")
        if p["tool"] == "vboxmanage" and not self.module.get_bin_path("VBoxManage"):
            raise disk.DiskError("tool: vboxmanage was asked for, but VBoxManage is not installed here")
        if self.dest:
            folder = os.path.dirname(os.path.abspath(self.dest))
            if not os.path.isdir(folder):
                raise disk.DiskError("output folder %s does not exist or is not a folder" % folder)
            # A real probe: root passes os.access() even where the filesystem or the kernel refuses writes.
            try:
                handle, probe = tempfile.mkstemp(prefix=".disk_image-probe-", dir=folder)
                os.close(handle)
                os.unlink(probe)
            except OSError as exc:
                raise disk.DiskError("output folder %s cannot be written: %s" % (folder, exc.strerror))
            if os.path.isdir(self.dest):
                raise disk.DiskError("dest %s is a folder; give the output file's path" % self.dest)

    def written_paths(self):
        """(option, its value, path) for every existing name the module writes, renames onto or removes. The
        work folder and what goes in it are new names from mkdtemp, so they cannot be the source."""
        paths = []
        if self.dest:
            paths += [("dest", self.dest, self.dest + suffix) for suffix in ("", ".sha256", ".json")]
        if self.progress_file:
            option = "progress_file" if self.params["progress_file"] else "dest"
            paths += [(option, self.params[option], path) for path in disk.progress_paths(self.progress_file)]
        return paths

    def refuse_writes_to_source(self):
        """The source is only ever read: no output, progress or temporary name may reach it, by the same path,
        a symlink, '..' or a hard link. Checked before anything is written."""
        for option, value, path in self.written_paths():
            if disk.same_file(path, self.src):
                if path == value:
                    raise disk.DiskError("%s is the source itself (%s); give another path: the source is only "
                                         "ever read" % (option, value))
                raise disk.DiskError("%s %s would make the module write %s, which is the source itself; give "
                                     "another path: the source is only ever read" % (option, value, path))

    def refuse_progress_on_outputs(self):
        """The progress file is removed at the end of every run: on the output or its checksum or sidecar, it would
        remove that (also an output that was up to date)."""
        if not (self.params["progress_file"] and self.dest):
            return
        collision = disk.progress_collision(self.progress_file,
                                            (self.dest, self.dest + ".sha256", self.dest + ".json"))
        if collision:
            raise disk.DiskError("progress_file %s would overwrite and then remove the output %s; give another "
                                 "path" % (self.progress_file, collision[1]))

    def workdir(self):
        """The module's own temporary folder: next to dest (the output is renamed from it), else in TMPDIR.
        Everything taken out of an archive goes here, and main() removes it at the end, failed or not."""
        if self.work is None:
            if self.dest:
                self.work = tempfile.mkdtemp(prefix="." + os.path.basename(self.dest) + ".work-",
                                             dir=os.path.dirname(os.path.abspath(self.dest)))
            else:
                self.work = tempfile.mkdtemp(prefix="disk_image-")
        return self.work

    def inspect(self):
        declared = disk.normalise_format(self.params["src_format"])
        compression = disk.archive_compression(self.src)  # by content: a tar or gzipped tar is an .ova or a box
        if compression is None:
            self.source_info = info = disk.qemu_img_info(self.run, self.src, declared)
            fmt = disk.check_source(info, self.src, disk.read_head(self.src), declared)
            self.read_spec, self.read_format = self.src, fmt
            return disk.describe(info, self.src)
        # The listing refuses whatever is odd (links, '..', truncation, another provider, no or several disks)
        # before anything is written; only then is a gzipped box's disk streamed out into the work folder.
        self.archive = found = disk.archive_disk(self.src, compression)
        if found["in_place"]:
            self.read_spec, self.read_format = disk.archive_disk_spec(self.src, found), None
        else:
            self.read_spec, self.read_format = self.extract_archive_disk(), found["format"]
        self.source_info = info = disk.qemu_img_info(self.run, self.read_spec, self.read_format)
        disk.check_archive_disk(info, found["member"], found["format"])
        disk.check_source(info, self.src, b"", found["format"])
        facts = disk.describe(info, self.src)
        facts["archive"] = dict((key, found[key]) for key in ("type", "member", "compression", "provider"))
        if found["type"] == "ova":
            facts["ova_member"] = found["member"]
        return facts

    def extract_archive_disk(self):
        """The archive's disk as a file in the work folder, with the progress in progress_file."""
        step = "taking %s out of %s" % (self.archive["member"], os.path.basename(self.src))
        shown = -1.0

        def progress(done, total):
            nonlocal shown
            percent = 100.0 * done / total if total else 100.0
            if percent - shown >= 1 or percent == 100.0:
                shown = percent
                self.write_progress("%s: %.1f%%" % (step, percent))

        self.module.log("disk_image: %s" % step)
        return disk.extract_archive_disk(self.src, self.archive, self.workdir(), progress)

    # ------------------------------------------------------------------------------------ convert

    def decide_compress(self):
        """compress: auto compresses a qcow2 made from a compressed source (a streamOptimized VMDK)."""
        if self.compress_wanted == "auto":
            self.compress = self.params["format"] == "qcow2" and disk.source_is_compressed(self.source_info or {})
        else:
            self.compress = self.compress_wanted
        return self.compress

    def options(self):
        """What the output is made with, as recorded in DEST.json: compress as decided, never 'auto', so an output
        made with compress: false stays up to date under compress: auto when auto decides the same."""
        p = self.params
        target = getattr(self, "target", None)
        return {"format": p["format"], "compress": self.compress, "tool": p["tool"], "shrink_to": target}

    def write_progress(self, text):
        if self.progress_file:
            disk.write_progress(self.progress_file, text)

    def qemu_convert(self, src_spec, src_format, out_path, out_format, compress, step):
        """qemu-img convert -p, its progress parsed into progress_file and the module's log."""
        args = ["qemu-img", "convert", "-p"]
        if src_format:
            args += ["-f", src_format]
        args += ["-O", out_format]
        if compress:
            args.append("-c")
        args += [src_spec, out_path]
        self.module.log("disk_image: %s" % " ".join(args))
        # Popen, not run_command: the progress must be read while qemu-img runs, not after it ends. stderr goes
        # to a file, not a pipe: a pipe nobody reads until stdout ends blocks qemu-img once it holds 64 KiB.
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)  # pylint: disable=ansible-bad-function
            last, buf = -1.0, b""
            while True:
                chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(64)
                if not chunk:
                    break
                buf = (buf + chunk)[-4096:]
                found = disk.parse_progress(buf.decode("ascii", "replace"))
                if found and found[-1] - last >= 1 or (found and found[-1] == 100.0 and last != 100.0):
                    last = found[-1]
                    self.write_progress("%s: %.1f%%" % (step, last))
                    buf = b""
            proc.stdout.close()
            if proc.wait() != 0:
                errors.seek(max(0, errors.seek(0, os.SEEK_END) - 64 * 1024))
                err = errors.read().decode("utf-8", "replace")
                raise disk.DiskError("qemu-img convert failed: %s" % " ".join(err.split())[-600:])

    def vbox_clone(self, work):
        """VBoxManage clonemedium to a raw file; an archive's disk is copied out first (VBoxManage reads files)."""
        src = self.src
        if self.archive:
            src = self.read_spec if not self.archive["in_place"] else self.extract_archive_disk()
        out = os.path.join(work, "vbox.raw")
        self.write_progress("VBoxManage clonemedium: running")
        rc, stdout, err = self.run(["VBoxManage", "clonemedium", "disk", src, out, "--format", "RAW"])
        # clonemedium registers both media in VirtualBox's list; take them off it again.
        for path in (out, src):
            self.run(["VBoxManage", "closemedium", "disk", path])
        if rc != 0:
            raise disk.DiskError("VBoxManage clonemedium failed: %s" % " ".join((err or stdout).split())[-600:])
        return out

    def convert(self, work):
        p = self.params
        shrink = None
        staged = os.path.join(work, "out." + p["format"])
        if p["tool"] == "vboxmanage":
            raw, raw_format = self.vbox_clone(work), "raw"
        elif p["shrink_to"] is not None:
            raw, raw_format = os.path.join(work, "shrink.raw"), "raw"
            self.qemu_convert(self.read_spec, self.read_format, raw, "raw", False, "copying to raw for the shrink")
        else:
            raw = None
        if p["shrink_to"] is not None:
            self.write_progress("shrinking to %s" % disk.human(self.target))
            shrink = disk.shrink_raw(self.run, raw, self.target, log=self.module.log)
        if raw is None:
            self.qemu_convert(self.read_spec, self.read_format, staged, p["format"], self.compress, "converting")
        elif p["format"] == "raw":
            os.rename(raw, staged)
        else:
            self.qemu_convert(raw, raw_format, staged, p["format"], self.compress, "converting")
        return staged, shrink

    def sidecar_path(self):
        return self.dest + ".json"

    def read_sidecar(self):
        try:
            with open(self.sidecar_path()) as handle:
                return json.load(handle)
        except (OSError, IOError, ValueError):
            return None

    def record_source_stat(self, sidecar, source_stat):
        """The source was read and found the same (touched, copied back, or a DEST.json from an older version):
        its stat goes into DEST.json, under a new name renamed over it, so the next run need not read it."""
        disk.write_sidecar(self.sidecar_path(), dict(sidecar, source_stat=source_stat))

    def main(self):
        self.validate()
        try:
            return self.inspect_and_convert()
        finally:
            if self.work:
                shutil.rmtree(self.work, ignore_errors=True)
            if self.progress_file and os.path.exists(self.progress_file):
                os.unlink(self.progress_file)

    def inspect_and_convert(self):
        result = {"changed": False}
        result["source"] = self.inspect()
        if not self.dest:
            return result
        result["checksum_file"] = self.dest + ".sha256"
        result["compressed"] = self.decide_compress()
        options = self.options()
        source_stat = disk.file_stat(self.src)
        source_sha = None
        if os.path.exists(self.dest) and not self.params["force"]:
            sidecar = self.read_sidecar()
            # Only when nothing but the source could differ does its checksum decide; otherwise the conversion
            # runs anyway and the source is checksummed while qemu-img reads it.
            if disk.same_output(sidecar, options, os.path.getsize(self.dest)):
                if self.params["trust_source_stat"] and disk.source_unchanged(sidecar, source_stat):
                    source_sha = sidecar["source_sha256"]
                    how = "an unchanged source (same size, mtime, inode and device as when sha256 %s was " \
                          "taken)" % source_sha[:12]
                else:
                    source_sha = disk.sha256_file(self.src)
                    how = "the same source (sha256 %s)" % source_sha[:12]
                if sidecar.get("source_sha256") == source_sha:
                    result["source"]["sha256"] = source_sha
                    if sidecar.get("source_stat") != source_stat and not self.module.check_mode:
                        self.record_source_stat(sidecar, source_stat)
                    info = disk.qemu_img_info(self.run, self.dest, sidecar["format"])
                    result["dest"] = dict(disk.describe(info, self.dest), sha256=sidecar["sha256"])
                    result["reason"] = "%s is up to date: made from %s with the same options" % (self.dest, how)
                    return result
        result["changed"] = True
        result["dest"] = {"path": self.dest, "format": self.params["format"]}
        if self.module.check_mode:
            result["source"]["sha256"] = source_sha or disk.sha256_file(self.src)
            return result
        started = time.time()
        hashing = None if source_sha else disk.BackgroundSha256(self.src)
        try:
            staged, shrink = self.convert(self.workdir())
        except BaseException:
            if hashing is not None:
                hashing.cancel()
            raise
        if hashing is not None:
            source_sha = hashing.result()
        result["source"]["sha256"] = source_sha
        # A source rewritten while it was read gets no stat in the sidecar: the next run reads it again.
        if disk.file_stat(self.src) != source_stat:
            source_stat = None
        info = disk.qemu_img_info(self.run, staged, self.params["format"])
        dest_sha = disk.sha256_file(staged)
        os.rename(staged, self.dest)
        dest_info = dict(disk.describe(info, self.dest), sha256=dest_sha)
        with open(self.dest + ".sha256", "w") as handle:
            handle.write("%s  %s\n" % (dest_sha, os.path.basename(self.dest)))
        disk.write_sidecar(self.sidecar_path(), disk.sidecar_record(source_sha, options, dest_info, dest_sha,
                                                                    source_stat))
        result["dest"] = dest_info
        result["seconds"] = round(time.time() - started, 1)
        if shrink is not None:
            result["shrink"] = shrink
        return result


def compress_choice(value):
    """compress as given: 'auto', True or False (Ansible's booleans: yes/no, on/off, 1/0 too)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise disk.DiskError("compress must be true, false or auto; got %r" % (value,))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            src_format=dict(type="str", choices=["vmdk", "vdi", "vhd", "vpc", "vhdx", "raw", "qcow2"]),
            dest=dict(type="path"),
            format=dict(type="str", choices=list(disk.OUTPUT_FORMATS), default="qcow2"),
            compress=dict(type="raw", default="auto"),
            tool=dict(type="str", choices=["qemu-img", "vboxmanage"], default="qemu-img"),
            shrink_to=dict(type="str"),
            force=dict(type="bool", default=False),
            trust_source_stat=dict(type="bool", default=True),
            progress_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    try:
        result = Converter(module).main()
    except disk.DiskError as exc:
        module.fail_json(msg=str(exc))
    except (OSError, IOError) as exc:
        module.fail_json(msg="disk_image could not finish: %s" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
