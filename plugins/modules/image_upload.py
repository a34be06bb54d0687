#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_upload
short_description: Upload a disk image to Glance once per content, keeping the previous one under a dated name
version_added: "0.1.0"
description:
  - Uploads O(filename) to Glance as image O(name) with C(min_disk), C(min_ram), format, visibility and
    hardware properties.
  - The image carries the file's SHA-256 in the property C(coursevm_sha256). A run with the same file uploads
    nothing; differing metadata (min_disk, min_ram, visibility, properties) is updated in place.
  - When the file has changed, the image now called O(name) is renamed C(NAME-YYYYMMDD-HHMMSS) (its own
    creation time) before the new one is uploaded, so two images never share the name; O(previous) decides
    whether it is also deactivated or deleted once the new image is active. If the upload fails, the old
    image gets its name back.
  - C(openstack.cloud.image) alone re-uploads or skips by name only; it neither notices a changed file nor
    keeps the previous image under another name, hence this module.
extends_documentation_fragment:
  - openstack.cloud.openstack
author:
  - coursevm.openstack contributors (@coursevm)
options:
  name:
    description: The image's name in Glance.
    type: str
    required: true
  filename:
    description: The disk image file to upload (typically the qcow2 written by M(coursevm.openstack.disk_image)).
    type: path
    required: true
  checksum:
    description:
      - The file's SHA-256, when known already (C(dest.sha256) of M(coursevm.openstack.disk_image)).
        Computed from the file otherwise.
    type: str
  disk_format:
    description: Glance's disk_format. Glance checks that the data really is in this format.
    type: str
    choices: [qcow2, raw, vmdk, vdi, vhd, vhdx, iso]
    default: qcow2
  container_format:
    description: Glance's container_format.
    type: str
    default: bare
  min_disk:
    description:
      - Smallest root disk in GB a flavor needs to boot the image. Defaults to the virtual size in GiB rounded
        up, read from the file with C(qemu-img info).
    type: int
  min_ram:
    description: Smallest RAM in MB a flavor needs.
    type: int
    default: 0
  visibility:
    description: Who sees the image.
    type: str
    choices: [private, shared, community, public]
    default: private
  properties:
    description:
      - Extra image properties, such as C(hw_disk_bus), C(hw_vif_model), C(hw_scsi_model),
        C(hw_qemu_guest_agent), C(os_distro), C(os_type). Values are sent as strings.
    type: dict
    default: {}
  previous:
    description:
      - What happens to the image the name belonged to when the file changed. C(rename) keeps it under the
        dated name; C(deactivate) also deactivates it (it cannot boot or be downloaded, but can be
        reactivated); C(delete) deletes it after the new image is active.
    type: str
    choices: [rename, deactivate, delete]
    default: rename
  wait:
    description: Wait until the new image is active.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the upload.
    type: int
    default: 1800
  progress_file:
    description:
      - >-
        Where the upload writes its progress while it runs (C(watch cat FILE)), in the format of
        M(coursevm.openstack.disk_image)'s O(coursevm.openstack.disk_image#module:progress_file), one line such as
        C(uploading: 42.0%), rewritten at each whole percent through C(FILE.tmp) renamed over C(FILE) (a reader
        never sees half a line), C(uploading: 100.0%) when the last byte is sent. Removed at the end of the run,
        failed or not.
      - Not written in check mode, nor when the file is already in Glance.
      - The uploaded file itself (by path, symlink, C(..) or hard link, also through C(FILE.tmp)) is refused
        before anything is uploaded; so is a folder that does not exist.
    type: path
requirements:
  - openstacksdk
  - qemu-img when O(min_disk) is not given
notes:
  - Supports check mode, which reads and checksums the file and reports what would change.
  - The upload streams the file as it is, read by the module (which counts the bytes for O(progress_file)).
    A qcow2 sends its allocated data only; a raw file sends its whole virtual size, holes included.
"""

EXAMPLES = r"""
- name: Upload the course image (a new file keeps the old image as course-image-YYYYMMDD-HHMMSS)
  coursevm.openstack.image_upload:
    cloud: mycloud
    name: course-image
    filename: /srv/images/course.qcow2
    min_ram: 2048
    properties:
      hw_disk_bus: virtio
      hw_vif_model: virtio
      os_distro: debian
"""

RETURN = r"""
image:
  description: The image now called O(name) (in check mode, the one that would be replaced, if any).
  returned: always
  type: dict
  contains:
    id: {description: Image id., type: str, returned: always}
    name: {description: Name., type: str, returned: always}
    status: {description: Glance status., type: str, returned: always}
    size: {description: Bytes stored in Glance., type: int, returned: always}
    virtual_size: {description: Virtual size Glance read from the data., type: int, returned: always}
    min_disk: {description: min_disk in GB., type: int, returned: always}
    min_ram: {description: min_ram in MB., type: int, returned: always}
    disk_format: {description: disk_format., type: str, returned: always}
    visibility: {description: visibility., type: str, returned: always}
    sha256: {description: The file's SHA-256 recorded on the image., type: str, returned: always}
    properties: {description: All other image properties., type: dict, returned: always}
previous:
  description: The image that had the name before, and what was done with it.
  returned: when the file changed and an image had the name
  type: dict
  sample: {id: 0b8e..., name: course-image-20261129-001812, action: rename}
uploaded:
  description: Whether data was uploaded.
  returned: always
  type: bool
updated:
  description: The metadata fields updated in place on an image whose file had not changed.
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule
from ansible_collections.coursevm.openstack.plugins.module_utils.disk import (
    min_disk_gib, progress_collision, sha256_file, write_progress)

SHA_PROPERTY = "coursevm_sha256"
GONE = ("killed", "deleted", "pending_delete")


def dated_name(name, created_at):
    """NAME-YYYYMMDD-HHMMSS from Glance's created_at ('2026-11-29T00:18:12Z')."""
    stamp = "".join(ch for ch in (created_at or "") if ch.isdigit())[:14]
    return "%s-%s-%s" % (name, stamp[:8], stamp[8:14]) if len(stamp) == 14 else "%s-previous" % name


def wanted_metadata(params, min_disk):
    """The metadata the image should carry, as Glance keeps it (properties as strings)."""
    props = dict((str(k), as_property(v)) for k, v in (params["properties"] or {}).items())
    return {"min_disk": min_disk, "min_ram": params["min_ram"], "visibility": params["visibility"],
            "properties": props}


def metadata_drift(image, wanted):
    """Fields to update on ``image`` (an SDK Image) to match ``wanted``: {field: value}."""
    drift = {}
    for key in ("min_disk", "min_ram", "visibility"):
        if getattr(image, key) != wanted[key]:
            drift[key] = wanted[key]
    for key, value in wanted["properties"].items():
        if image_value(image, key) != value:
            drift[key] = value
    return drift


def as_property(value):
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def image_value(image, key):
    """A property's value as a string. openstacksdk gives well-known ones (hw_disk_bus, os_distro...) as
    attributes of their own, typed, and only the others in ``properties``."""
    attrs = image.to_dict(computed=False)
    if key in attrs and key != "properties":
        return as_property(attrs[key])
    return as_property((image.properties or {}).get(key))


def summary(image, wanted_keys=()):
    if image is None:
        return None
    props = dict(image.properties or {})
    for key in wanted_keys:
        props[key] = image_value(image, key)
    return {"id": image.id, "name": image.name, "status": image.status, "size": image.size,
            "virtual_size": image.virtual_size, "min_disk": image.min_disk, "min_ram": image.min_ram,
            "disk_format": image.disk_format, "visibility": image.visibility,
            "sha256": props.get(SHA_PROPERTY), "properties": props}


class ProgressReader:
    """The file to upload as openstacksdk's ``data=``: read() hands on the bytes and counts them, calling
    ``show(percent)`` at each whole percent and at 100. ``len()`` is the size (requests' Content-Length)."""

    def __init__(self, handle, size, show):
        self.handle, self.size, self.show = handle, size, show
        self.sent, self.shown = 0, -1.0

    def read(self, size=-1):
        block = self.handle.read(size)
        self.sent += len(block)
        percent = min(100.0, 100.0 * self.sent / self.size) if self.size else 100.0
        if percent - self.shown >= 1 or (percent == 100.0 and self.shown != 100.0):
            self.shown = percent
            self.show(percent)
        return block

    def __len__(self):
        return self.size

    def __bool__(self):  # openstacksdk tests ``if data``: an empty file is data too
        return True


def refuse_progress_on_file(progress_file, filename):
    """The message refusing a progress_file that is (or through its .tmp reaches) the file to upload, or None."""
    collision = progress_collision(progress_file, (filename,))
    if collision:
        if collision[0] == progress_file:
            return "progress_file is the file to upload itself (%s); give another path: it would be " \
                   "overwritten and removed" % progress_file
        return "progress_file %s would make the module write %s, which is the file to upload; give another " \
               "path" % (progress_file, collision[0])
    folder = os.path.dirname(os.path.abspath(progress_file))
    if not os.path.isdir(folder):
        return "progress_file %s: its folder %s does not exist" % (progress_file, folder)
    return None


class ImageUploadModule(CourseVMCloudModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        filename=dict(type="path", required=True),
        checksum=dict(type="str"),
        disk_format=dict(type="str", default="qcow2", choices=["qcow2", "raw", "vmdk", "vdi", "vhd", "vhdx", "iso"]),
        container_format=dict(type="str", default="bare"),
        min_disk=dict(type="int"),
        min_ram=dict(type="int", default=0),
        visibility=dict(type="str", default="private", choices=["private", "shared", "community", "public"]),
        properties=dict(type="dict", default={}),
        previous=dict(type="str", default="rename", choices=["rename", "deactivate", "delete"]),
        # Uploads of several GB take longer than openstack.cloud's default 180 s.
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=1800),
        progress_file=dict(type="path"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def check_input(self):
        path = self.params["filename"]
        if not os.path.isfile(path):
            self.fail_json(msg="filename %s does not exist or is not a regular file" % path)
        if self.params["progress_file"]:
            refused = refuse_progress_on_file(self.params["progress_file"], path)
            if refused:
                self.fail_json(msg=refused)
        for key in ("min_disk", "min_ram"):
            if (self.params[key] or 0) < 0:
                self.fail_json(msg="%s must be 0 or more; got %d" % (key, self.params[key]))
        checksum = (self.params["checksum"] or "").lower()
        if checksum and (len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum)):
            self.fail_json(msg="checksum must be the file's SHA-256 as 64 hex digits; got %r" % self.params["checksum"])
        return checksum or sha256_file(path)

    def min_disk(self):
        if self.params["min_disk"] is not None:
            return self.params["min_disk"]
        path = self.params["filename"]
        rc, out, err = self.ansible.run_command(["qemu-img", "info", "--output=json", "-f",
                                                 self.params["disk_format"], path])
        try:
            if rc != 0:
                raise ValueError(err.strip())
            return min_disk_gib(json.loads(out)["virtual-size"])
        except (ValueError, KeyError) as exc:
            self.fail_json(msg="min_disk was not given and qemu-img could not read the virtual size of %s as %s: %s"
                               % (path, self.params["disk_format"], exc))

    def current(self, name):
        images = [i for i in self.conn.image.images(name=name, owner=self.conn.current_project_id)
                  if i.status not in GONE]
        if len(images) > 1:
            ids = ", ".join(sorted(i.id for i in images))
            self.fail_json(msg="%d images in this project are named %s (%s); this module keeps one image per name. "
                               "Rename or delete the extra ones." % (len(images), name, ids))
        return images[0] if images else None

    def run(self):
        self.progress_written = False
        try:
            return self.reconcile()
        finally:
            # Only a file this run wrote is removed: never one a refused progress_file names.
            if self.progress_written and os.path.exists(self.params["progress_file"]):
                os.unlink(self.params["progress_file"])

    def show_progress(self, percent):
        if self.params["progress_file"]:
            self.progress_written = True
            write_progress(self.params["progress_file"], "uploading: %.1f%%" % percent)

    def reconcile(self):
        name = self.params["name"]
        sha = self.check_input()
        wanted = wanted_metadata(self.params, self.min_disk())
        image = self.current(name)

        if image is not None and (image.properties or {}).get(SHA_PROPERTY) == sha and image.status == "active":
            drift = metadata_drift(image, wanted)
            if drift and not self.check_mode:
                # By id: a patch computed from the fetched image would also touch read-only properties
                # (Glance answers 409 "Property stores does not exist").
                self.conn.image.update_image(image.id, **drift)
                image = self.conn.image.get_image(image.id)
            return dict(changed=bool(drift), uploaded=False, updated=sorted(drift),
                        image=summary(image, wanted["properties"]))

        if self.check_mode:
            return dict(changed=True, uploaded=False, updated=[], image=summary(image, wanted["properties"]),
                        previous=None if image is None else {"id": image.id, "name": dated_name(
                            name, image.created_at), "action": self.params["previous"]})

        self.show_progress(0.0)  # before anything changes in Glance: an unwritable progress file fails here
        previous = None
        if image is not None:
            previous = {"id": image.id, "name": dated_name(name, image.created_at), "action": self.params["previous"]}
            self.conn.image.update_image(image.id, name=previous["name"])
        try:
            new = self.upload(name, sha, wanted)
        except Exception:
            if previous is not None:  # give the old image its name back: the course keeps a bootable image
                self.conn.image.update_image(previous["id"], name=name)
            raise
        if previous is not None and self.params["previous"] == "deactivate":
            self.conn.image.deactivate_image(previous["id"])
        elif previous is not None and self.params["previous"] == "delete":
            self.conn.image.delete_image(previous["id"], ignore_missing=True)
        return dict(changed=True, uploaded=True, updated=[], image=summary(new, wanted["properties"]),
                    previous=previous)

    def upload(self, name, sha, wanted):
        props = dict(wanted["properties"])
        props[SHA_PROPERTY] = sha
        # data= (a reader that counts the bytes for the progress file), not filename=: openstacksdk would open the
        # file itself. The SHA-256 recorded is the one checked or given above, as before.
        with open(self.params["filename"], "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            new = self.conn.image.create_image(
                name, data=ProgressReader(handle, size, self.show_progress), size=size,
                disk_format=self.params["disk_format"], container_format=self.params["container_format"],
                min_disk=wanted["min_disk"], min_ram=wanted["min_ram"], visibility=wanted["visibility"],
                allow_duplicates=True, wait=self.params["wait"], timeout=self.params["timeout"],
                validate_checksum=False, **props)
        if self.params["wait"]:
            new = self.wait_for_status(lambda: self.conn.image.find_image(new.id, ignore_missing=True), ("active",),
                                       self.params["timeout"], failed=GONE + (None,), what="image %s" % name)
        return self.conn.image.get_image(new.id)


def main():
    module = ImageUploadModule()
    module()


if __name__ == "__main__":
    main()
