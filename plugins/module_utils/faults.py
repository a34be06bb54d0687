# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why a server went to ERROR, in plain words and with a next step: one explanation for server_diagnose (one
server) and the cohort module (each failed student). Pure functions over dicts, unit-tested.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

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
           "ipaddressgeneration", "no valid network", "portnotfound", "securitygroupnotfound")
# Nova's NetworkNotFound, PortNotFound, SecurityGroupNotFound... say "<Thing> <id> could not be found." as its
# ImageNotFound does: what was not found decides the kind, before IMAGE's loose "could not be found".
NETWORK_NOT_FOUND = re.compile(r"\b(network|port|subnet|security group)\b[^.:]*\bnot (be )?found")


def classify_fault(message):
    """The kind of a Nova fault message: no_host, disk_too_small, ram_too_small, quota, network, image,
    unknown (checked in this order: the later patterns are looser)."""
    text = (message or "").lower()
    for kind, patterns in (("no_host", NO_HOST), ("disk_too_small", DISK), ("ram_too_small", RAM),
                           ("quota", QUOTA), ("network", NETWORK), ("image", IMAGE)):
        if any(p in text for p in patterns) or (kind == "network" and NETWORK_NOT_FOUND.search(text)):
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


def explain_server_fault(name, server_id, fault, embedded_flavor, flavors, image):
    """(kind, explanation, next_step, fitting flavor names) for a server in ERROR.

    ``fault``: the server's fault record (dict, maybe empty); ``embedded_flavor``: the server's flavor as Nova
    returns it; ``flavors``: every flavor dict; ``image``: the server's image dict or None.
    """
    if not fault:
        return ("unknown", "Server %s is in ERROR but Nova shows no fault for it to this user." % name,
                "Ask the cloud admins, quoting the server's ID %s." % server_id, [])
    return explain_fault(fault.get("message"), flavor_of_server(embedded_flavor, flavors), image, flavors)
