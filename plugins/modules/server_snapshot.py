#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: server_snapshot
short_description: Snapshot a server to an image, wait until it is active, and keep only the newest ones
version_added: 0.1.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Asks Nova to snapshot a server into a Glance image and (with O(wait)) waits until the image is
    C(active).
  - Every snapshot it makes carries the image property C(coursevm_snapshot_of=<server id>), so the
    snapshots of one server can be found again; with O(keep) only the newest O(keep) of them are kept and the
    older ones are deleted.
  - Idempotent by name. When an image named O(name) already is a snapshot of this server, no new snapshot
    is made (a snapshot still being saved is waited for). An image of that name that is not a snapshot of
    this server is an error.
  - openstack.cloud has no module that does this.
extends_documentation_fragment:
  - openstack.cloud.openstack
options:
  server:
    description: Name or ID of the server to snapshot.
    type: str
    required: true
  name:
    description:
      - Name of the image.
      - Defaults to C(<server name>-<UTC timestamp>), for example C(course-alice-20260301T120000Z), which makes
        a new snapshot on every run.
    type: str
  keep:
    description:
      - Keep only the newest O(keep) snapshots of this server (counting the new one) and delete the older
        ones. Only images with C(coursevm_snapshot_of=<server id>) and owned by the project are considered.
      - With O(series), the newest O(keep) images of the series are kept instead, whichever server made them.
      - Unset keeps every snapshot.
    type: int
  series:
    description:
      - A name for a series of snapshots made from different servers over time, for example a course's golden
        images, each made from a new builder server. The snapshot carries the image property
        C(coursevm_snapshot_series=<series>), and O(keep) counts the images of the series (owned by the
        project) rather than the snapshots of this one server.
    type: str
    version_added: 0.3.0
  metadata:
    description: Extra image properties for the new snapshot.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Reports whether a snapshot would be made and which old snapshots would be deleted.
  diff_mode:
    support: none
    description: No diff is reported.
notes:
  - O(wait) (default true) waits up to O(timeout) seconds for the image to become active. Rotation with
    O(keep) happens only after the new snapshot is active (or right away when O(wait=false)).
"""

EXAMPLES = r"""
- name: Snapshot the teacher's prepared VM for the next cohort, keeping the three newest snapshots
  coursevm.openstack.server_snapshot:
    cloud: mycloud
    server: course-teacher
    keep: 3
    timeout: 1800
  register: snapshot

- name: Use the snapshot as the image of the next launch
  ansible.builtin.set_fact:
    course_server_image: "{{ snapshot.image.id }}"

- name: A named snapshot is made only once
  coursevm.openstack.server_snapshot:
    cloud: mycloud
    server: course-teacher
    name: course-vm-2026-spring
"""

RETURN = r"""
image:
  description: The snapshot image (id, name, status, min_disk, size, virtual_size, created_at, properties).
    Null in check mode when the snapshot would be new.
  returned: always
  type: dict
  sample:
    id: 8d85c9a6-9843-4fd3-9f8b-a1bb85ab4fc5
    name: course-teacher-20260301T120000Z
    status: active
deleted:
  description: Older snapshots of the server deleted by O(keep) (in check mode, those that would be), as
    {id, name, created_at}.
  returned: always
  type: list
  elements: dict
"""

import datetime

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule

SNAPSHOT_OF = "coursevm_snapshot_of"
SERIES = "coursevm_snapshot_series"


def default_name(server_name, now=None):
    """'<server>-<UTC timestamp>', e.g. course-alice-20260301T120000Z."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return "%s-%s" % (server_name, now.strftime("%Y%m%dT%H%M%SZ"))


def snapshots_to_delete(snapshots, keep):
    """The snapshots beyond the ``keep`` newest (dicts with created_at and name); oldest first."""
    if keep is None:
        return []
    ordered = sorted(snapshots, key=lambda s: (s.get("created_at") or "", s.get("name") or "", s.get("id")))
    return ordered[:max(0, len(ordered) - keep)]


def image_summary(image):
    return {"id": image.id, "name": image.name, "status": image.status, "min_disk": image.min_disk,
            "size": image.size, "virtual_size": image.virtual_size, "created_at": image.created_at,
            "properties": dict(image.properties or {})}


class ServerSnapshotModule(CourseVMCloudModule):
    argument_spec = dict(
        server=dict(type="str", required=True),
        name=dict(type="str"),
        keep=dict(type="int"),
        metadata=dict(type="dict", default={}),
        series=dict(type="str"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        keep = self.params["keep"]
        if keep is not None and keep < 1:
            self.fail_json(msg="keep must be at least 1 (the new snapshot is always kept); got %d" % keep)
        server = self.conn.compute.find_server(self.params["server"], ignore_missing=True)
        if server is None:
            self.fail_json(msg="There is no server %s in this project to snapshot. Check its name."
                           % self.params["server"])
        name = self.params["name"] or default_name(server.name)

        changed = False
        image = self.existing_snapshot(name, server)
        if image is None:
            changed = True
            if self.check_mode:
                return dict(changed=True, image=None, deleted=self.rotate(server, keep, pending=1))
            if server.status not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
                self.fail_json(msg="Server %s is %s; Nova snapshots only servers that are ACTIVE, SHUTOFF, PAUSED "
                                   "or SUSPENDED. Wait until it is, then run this again."
                                   % (server.name, server.status))
            metadata = dict((str(k), str(v)) for k, v in self.params["metadata"].items())
            metadata[SNAPSHOT_OF] = server.id
            if self.params["series"]:
                metadata[SERIES] = self.params["series"]
            image = self.conn.compute.create_server_image(server, name, metadata=metadata, wait=False)
        if self.params["wait"] and image.status != "active":
            image = self.wait_for_status(lambda: self.conn.image.find_image(image.id, ignore_missing=True),
                                         ("active",), self.params["timeout"],
                                         failed=("killed", "deleted", "pending_delete", None),
                                         what="snapshot %s of server %s" % (name, server.name))
        else:
            image = self.conn.image.get_image(image.id)
        deleted = self.rotate(server, keep)
        return dict(changed=changed or bool(deleted), image=image_summary(image), deleted=deleted)

    def existing_snapshot(self, name, server):
        """The image called ``name`` if it is a snapshot of ``server``; fail if that name is taken otherwise."""
        images = list(self.conn.image.images(name=name))
        ours = [i for i in images if (i.properties or {}).get(SNAPSHOT_OF) == server.id
                and i.status not in ("killed", "deleted", "pending_delete")]
        if ours:
            return sorted(ours, key=lambda i: i.created_at or "")[-1]
        if images:
            self.fail_json(msg="An image named %s already exists and is not a snapshot of server %s. Choose another "
                               "name, or delete that image." % (name, server.name))
        return None

    def rotate(self, server, keep, pending=0):
        """Delete (or, in check mode, list) the snapshots of ``server`` (or of the series) beyond the ``keep``
        newest."""
        if keep is None:
            return []
        key, value = (SERIES, self.params["series"]) if self.params["series"] else (SNAPSHOT_OF, server.id)
        snapshots = [{"id": i.id, "name": i.name, "created_at": i.created_at}
                     for i in self.conn.image.images(owner=self.conn.current_project_id)
                     if (i.properties or {}).get(key) == value]
        # In check mode the new snapshot does not exist yet but would be the newest: keep one fewer.
        doomed = snapshots_to_delete(snapshots, keep - pending)
        if not self.check_mode:
            for snap in doomed:
                self.conn.image.delete_image(snap["id"], ignore_missing=True)
        return doomed


def main():
    module = ServerSnapshotModule()
    module()


if __name__ == "__main__":
    main()
