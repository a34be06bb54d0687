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
from ansible_collections.coursevm.openstack.plugins.module_utils.sizing import (
    describe_flavor, flavors_that_fit, image_disk_need_gb)

NO_HOST = ("no valid host was found", "exceeded maximum number of retries", "exhausted all hosts available",
           "novalidhost", "maxretriesexceeded")
DISK = ("flavor's disk is too small", "flavor's disk is smaller than the minimum", "flavordisksmallerthan",
        "flavordisktoosmall")
RAM = ("flavor's memory is too small", "flavormemorytoosmall")
IMAGE = ("could not be found", "imagenotfound", "imagenotactive", "is not active", "unacceptable",
         "image ")
QUOTA = ("quota exceeded", "quotaerror", "exceeds quota", "overquota", "quota")
NETWORK = ("failed to allocate the network", "portbindingfailed", "binding failed for port",
           "virtual interface creation failed", "networkambiguous", "networknotfound", "no more ip addresses",
           "ipaddressgeneration")


def classify_fault(message):
    """The kind of a Nova fault message: no_host, disk_too_small, ram_too_small, quota, network, image,
    unknown (checked in this order: the later patterns are looser)."""
    text = (message or "").lower()
    for kind, patterns in (("no_host", NO_HOST), ("disk_too_small", DISK), ("ram_too_small", RAM),
                           ("quota", QUOTA), ("network", NETWORK), ("image", IMAGE)):
        if any(p in text for p in patterns):
            return kind
    return "unknown"


def explain_fault(message, flavor, image, flavors):
    """(kind, explanation, next_step, fitting flavor names) for a fault ``message`` (pure, unit-tested).

    ``flavor``: the server's flavor as a dict (name, vcpus, ram MB, disk GB) or None; ``image``: the image
    as a dict (name, min_disk, min_ram, size, virtual_size, status) or None; ``flavors``: every flavor dict.
    """
    kind = classify_fault(message)
    raw = " ".join((message or "").split()).rstrip(".") or "no fault message"
    fname = flavor.get("name") if flavor else "of this server"
    iname = image.get("name") if image else "of this server"
    fitting = []
    if kind == "no_host":
        size = describe_flavor(flavor) if flavor else "of this server"
        explanation = ("No hypervisor has room for flavor %s: the scheduler found no host with that many free "
                       "vCPUs, that much free RAM and disk (Nova said: %s)." % (size, raw))
        if flavor and image:
            fitting = [n for n in flavors_that_fit(flavors, image, max_vcpus=int(flavor.get("vcpus") or 0),
                                                   max_ram=int(flavor.get("ram") or 0),
                                                   max_disk=int(flavor.get("disk") or 0))
                       if n != flavor.get("name")]
        if fitting:
            next_step = ("Pick a smaller flavor that still fits the image (%s), or ask the cloud admins for more "
                         "capacity." % ", ".join(fitting))
        else:
            next_step = "Pick a smaller flavor, or ask the cloud admins for more capacity for this flavor."
    elif kind in ("disk_too_small", "ram_too_small"):
        if kind == "disk_too_small":
            what = "disk"
            have = "%s GB" % flavor.get("disk") if flavor else "too little"
            need = ("%d GB (min_disk %s GB, virtual size %s bytes)"
                    % (image_disk_need_gb(image), image.get("min_disk"), image.get("virtual_size"))
                    if image else "more")
        else:
            what = "RAM"
            have = "%s MB" % flavor.get("ram") if flavor else "too little"
            need = "%s MB (min_ram)" % image.get("min_ram") if image else "more"
        explanation = ("Flavor %s is too small for image %s: its %s is %s but the image needs %s (Nova said: %s)."
                       % (fname, iname, what, have, need, raw))
        fitting = flavors_that_fit(flavors, image) if image else []
        if fitting:
            next_step = "Use a flavor that fits: %s." % ", ".join(fitting)
        else:
            next_step = ("No flavor of this cloud fits the image; ask the cloud admins for a larger flavor, or "
                         "make the image smaller.")
    elif kind == "image":
        state = ("is %s" % image.get("status")) if image else "no longer exists"
        explanation = "The server could not use its image %s, which %s (Nova said: %s)." % (iname, state, raw)
        next_step = "Upload the image again and wait until it is active, then create the server again."
    elif kind == "quota":
        explanation = "The project ran out of quota while the server was built (Nova said: %s)." % raw
        next_step = ("Delete servers or volumes the course no longer needs, or ask the cloud admins to raise "
                     "the project's quota; run coursevm.openstack.preflight with the cohort size to see which.")
    elif kind == "network":
        explanation = "Nova could not give the server its network port (Nova said: %s)." % raw
        next_step = ("Check that the server's network and subnet exist and have free addresses and that the "
                     "port quota is not used up; otherwise ask the cloud admins (networking).")
    else:
        explanation = "The server failed to boot; Nova recorded: %s." % raw
        next_step = "Ask the cloud admins, quoting the server's ID and this fault."
    return kind, explanation, next_step, fitting


def flavor_of_server(embedded, flavors):
    """The server's flavor as a dict: Nova >= 2.47 embeds it (original_name...), older ones give an id."""
    embedded = embedded or {}
    name = embedded.get("original_name") or embedded.get("name")
    for flavor in flavors:
        if embedded.get("id") and flavor.get("id") == embedded.get("id"):
            return flavor
    if name:
        return {"name": name, "vcpus": embedded.get("vcpus"), "ram": embedded.get("ram"),
                "disk": embedded.get("disk")}
    return None


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
        flavor = flavor_of_server(server.flavor, flavors)
        image = self.image_of_server(server)
        if not fault:
            kind, explanation = "unknown", ("Server %s is in ERROR but Nova shows no fault for it to this user."
                                            % name)
            next_step, fitting = "Ask the cloud admins, quoting the server's ID %s." % server.id, []
        else:
            kind, explanation, next_step, fitting = explain_fault(fault.get("message"), flavor, image, flavors)
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
