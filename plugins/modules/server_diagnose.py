#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: server_diagnose
short_description: Explain why a server failed to boot, and remove it
version_added: 0.1.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Waits until the server has left C(BUILD) (with O(wait)), then looks at its status.
  - When the server is C(ERROR), reads the fault Nova recorded for it and translates the common faults into
    an explanation and a next step, deletes the failed server (unless O(delete_failed=false)) and fails with
    that explanation.
  - C(No valid host was found), C(Exceeded maximum number of retries) and C(Exhausted all hosts available)
    mean that no hypervisor has room for the flavor; the message names the flavor's size and the smaller
    flavors that would still boot the image.
  - A flavor whose disk or RAM is smaller than the image needs names the sizes and the flavors that fit.
  - A missing or inactive image, an exceeded quota and a failed network allocation are recognised too;
    any other fault is shown as Nova recorded it.
  - A server in any other state than C(ERROR) is reported and left alone.
extends_documentation_fragment:
  - openstack.cloud.openstack
options:
  server:
    description: Name or ID of the server.
    type: str
    required: true
  delete_failed:
    description: Delete a server that is in C(ERROR), and wait (up to O(timeout)) until it is gone.
    type: bool
    default: true
  ignore_missing:
    description:
      - When the server does not exist, report C(diagnosis.status=MISSING) and succeed instead of failing.
      - Useful in a C(rescue) block after a server creation that Nova refused outright (for example HTTP 400
        for a flavor below the image's C(min_disk)), so that the next task can report the original error.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: In check mode the diagnosis is made but the failed server is never deleted.
  diff_mode:
    support: none
    description: No diff is reported.
notes:
  - With O(wait=true) (the default) the module waits up to O(timeout) seconds for the server to leave
    C(BUILD). A server still building then is a failure.
  - Nova shows the fault's message to the project that owns the server; the details (a traceback) only to
    admins. The message is all this module needs.
"""

EXAMPLES = r"""
- name: Create the server without waiting, so that a boot failure can be explained
  openstack.cloud.server:
    cloud: mycloud
    name: course-alice
    image: course-vm
    flavor: m1.course
    network: course-alice-net
    wait: false

- name: Wait for the boot; on ERROR explain the fault and remove the server
  coursevm.openstack.server_diagnose:
    cloud: mycloud
    server: course-alice
    timeout: 600
"""

RETURN = r"""
diagnosis:
  description: What was found.
  returned: always
  type: dict
  contains:
    status:
      description: The server's status (C(ACTIVE), C(ERROR), ...), or C(MISSING).
      type: str
      sample: ERROR
    fault_message:
      description: The fault message Nova recorded, or null.
      type: str
      sample: "No valid host was found. "
    fault_code:
      description: The fault's HTTP-like code, or null.
      type: int
      sample: 500
    kind:
      description: >-
        The fault recognised: C(no_host), C(disk_too_small), C(ram_too_small), C(image), C(quota),
        C(network), C(unknown); null when the server is not in ERROR.
      type: str
      sample: no_host
    explanation:
      description: What went wrong, in plain English.
      type: str
    next_step:
      description: What to do about it.
      type: str
    flavors_that_fit:
      description: Flavors that would boot the image (smaller ones first); only for size faults.
      type: list
      elements: str
    server_id:
      description: The server's ID.
      type: str
    deleted:
      description: Whether the failed server was deleted.
      type: bool
"""

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule
from ansible_collections.coursevm.openstack.plugins.module_utils.faults import explain_server_fault


class ServerDiagnoseModule(CourseVMCloudModule):
    argument_spec = dict(
        server=dict(type="str", required=True),
        delete_failed=dict(type="bool", default=True),
        ignore_missing=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        name = self.params["server"]
        server = self.conn.compute.find_server(name, ignore_missing=True)
        diagnosis = {"status": "MISSING", "fault_message": None, "fault_code": None, "kind": None,
                     "explanation": None, "next_step": None, "flavors_that_fit": [], "server_id": None,
                     "deleted": False}
        if server is None:
            diagnosis.update(explanation="There is no server %s in this project." % name,
                             next_step="Check the server's name, and that it was created in this project.")
            if self.params["ignore_missing"]:
                return dict(changed=False, diagnosis=diagnosis)
            self.fail_json(msg="%s %s" % (diagnosis["explanation"], diagnosis["next_step"]), diagnosis=diagnosis)
        diagnosis["server_id"] = server.id

        if self.params["wait"] and server.status == "BUILD":
            server = self.wait_for_status(lambda: self.conn.compute.find_server(server.id, ignore_missing=True),
                                          ("ACTIVE", "ERROR", "SHUTOFF", "PAUSED", "SUSPENDED", None),
                                          self.params["timeout"], failed=(), what="server %s" % name)
            if server is None:
                diagnosis.update(explanation="Server %s was deleted while it was being built." % name,
                                 next_step="Create it again.")
                self.fail_json(msg="%s %s" % (diagnosis["explanation"], diagnosis["next_step"]),
                               diagnosis=diagnosis)
        diagnosis["status"] = server.status

        if server.status != "ERROR":
            diagnosis["explanation"] = "Server %s is %s, not in ERROR: there is no fault to explain." % (
                name, server.status)
            return dict(changed=False, diagnosis=diagnosis)

        fault = server.fault or {}
        diagnosis["fault_message"] = fault.get("message")
        diagnosis["fault_code"] = fault.get("code")
        flavors = [dict((k, f[k]) for k in ("id", "name", "vcpus", "ram", "disk")) for f in
                   self.conn.compute.flavors()]
        kind, explanation, next_step, fitting = explain_server_fault(
            name, server.id, fault, server.flavor, flavors, self.image_of_server(server))
        diagnosis.update(kind=kind, explanation=explanation, next_step=next_step, flavors_that_fit=fitting)

        changed = False
        if self.params["delete_failed"]:
            changed = True
            if not self.check_mode:
                self.conn.compute.delete_server(server.id, ignore_missing=True)
                self.wait_for_status(lambda: self.conn.compute.find_server(server.id, ignore_missing=True),
                                     (None,), self.params["timeout"], failed=(),
                                     what="deletion of the failed server %s" % name)
                diagnosis["deleted"] = True
        removed = (" The failed server was deleted." if diagnosis["deleted"] else
                   " The failed server would be deleted." if changed else " The failed server was kept.")
        self.fail_json(msg="Server %s failed to boot. %s %s%s" % (name, explanation, next_step, removed),
                       diagnosis=diagnosis, changed=changed)

    def image_of_server(self, server):
        image_id = (server.image or {}).get("id")
        if not image_id:
            return None  # booted from a volume
        image = self.conn.image.find_image(image_id, ignore_missing=True)
        if image is None:
            return None
        return dict((k, getattr(image, k, None)) for k in ("id", "name", "status", "min_disk", "min_ram", "size",
                                                           "virtual_size"))


def main():
    module = ServerDiagnoseModule()
    module()


if __name__ == "__main__":
    main()
