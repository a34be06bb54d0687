#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: preflight
short_description: Check that a cloud can hold a whole cohort before anything is created
version_added: 0.1.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Looks, without changing anything, at everything a cohort's provisioning needs and reports every
    problem at once in one message, before any resource is created.
  - The image exists and is active.
  - The flavor exists; its root disk is at least the image's C(min_disk) and at least its virtual size
    (rounded up to whole GB); its RAM is at least the image's C(min_ram).
  - The external network exists and is external (C(router:external)).
  - The project's compute and network quotas, minus what is already in use, leave room for
    O(count) student environments. Each environment is assumed to be one server of O(flavor), one
    network, one subnet, one router, one security group with O(security_group_rules) rules (plus the
    two egress rules Neutron adds to every new group), three ports (server, router interface, DHCP),
    one floating IP and one key pair.
  - If the project may not read its quotas, that is a warning, not a failure.
  - Each problem is a plain-English sentence that ends with what to do next.
extends_documentation_fragment:
  - openstack.cloud.openstack
options:
  image:
    description: Name or ID of the Glance image the servers boot from.
    type: str
    required: true
  flavor:
    description: Name or ID of the Nova flavor of every student's server.
    type: str
    required: true
  external_network:
    description: Name or ID of the external network routers and floating IPs come from.
    type: str
    default: public
  count:
    description: Number of student environments the cohort needs (at least 1).
    type: int
    default: 1
  security_group_rules:
    description:
      - Rules added to each environment's security group (for example SSH, HTTP, HTTPS, ICMP).
      - Neutron's two default egress rules of a new group are counted on top of this.
    type: int
    default: 4
  check_quotas:
    description: Compare the cohort's needs with the project's quotas and current usage.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode runs the same checks.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - The options O(wait) and O(timeout) of the common OpenStack options have no effect here.
"""

EXAMPLES = r"""
- name: Check that the cloud can hold the whole cohort before creating anything
  coursevm.openstack.preflight:
    cloud: mycloud
    image: course-vm-2026
    flavor: m1.course
    external_network: public
    count: 30
  register: preflight

- name: Show the sizes that were compared
  ansible.builtin.debug:
    var: preflight.facts
"""

RETURN = r"""
problems:
  description: Every problem found, each a sentence with the next step. Empty when all is well.
  returned: always
  type: list
  elements: str
  sample:
    - "Flavor m1.tiny is too small for image course-vm: flavor m1.tiny has a 1 GB disk but the image's virtual
      size is 10 GB (10737418240 bytes), so the disk could not hold it. Use a flavor that fits: m1.course."
facts:
  description: What was looked at.
  returned: always
  type: dict
  contains:
    image:
      description: The image (id, name, status, min_disk GB, min_ram MB, size and virtual_size in bytes,
        disk_format), or null when not found.
      type: dict
      returned: always
    flavor:
      description: The flavor (id, name, vcpus, ram MB, disk GB), or null when not found.
      type: dict
      returned: always
    external_network:
      description: The external network (id, name, is_router_external), or null when not found.
      type: dict
      returned: always
    flavors_that_fit:
      description: Names of the flavors that can boot the image, smallest first (when the image was found).
      type: list
      elements: str
      returned: always
    cohort_needs:
      description: Resources the whole cohort needs, by quota name.
      type: dict
      returned: always
    quotas:
      description: The project's quotas as {resource {limit, used, reserved}}; only those that could be read.
      type: dict
      returned: always
    environments_that_fit:
      description: How many environments the quotas leave room for (null when quotas were not read or the
        flavor is unknown).
      type: int
      returned: always
"""

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule, what_went_wrong
from ansible_collections.coursevm.openstack.plugins.module_utils.sizing import (
    describe_flavor, flavor_fits, flavors_that_fit, quota_shortfalls)

# Neutron gives every new security group two egress rules (IPv4 and IPv6); a project's first network
# call also creates its "default" group with four rules.
DEFAULT_EGRESS_RULES = 2
DEFAULT_GROUP_RULES = 4

COMPUTE_QUOTAS = ("instances", "cores", "ram", "key_pairs")
NETWORK_QUOTAS = ("networks", "subnets", "routers", "security_groups", "security_group_rules", "ports",
                  "floating_ips")

QUOTA_WORDS = {
    "instances": "servers", "cores": "vCPUs", "ram": "MB of RAM", "key_pairs": "key pairs",
    "networks": "networks", "subnets": "subnets", "routers": "routers", "security_groups": "security groups",
    "security_group_rules": "security group rules", "ports": "ports", "floating_ips": "floating IPs",
}


def per_environment_needs(flavor, security_group_rules):
    """What one student environment takes from each quota (``flavor`` a dict, or None when unknown)."""
    needs = {
        "instances": 1,
        "key_pairs": 1,
        "networks": 1,
        "subnets": 1,
        "routers": 1,
        "security_groups": 1,
        "security_group_rules": security_group_rules + DEFAULT_EGRESS_RULES,
        "ports": 3,
        "floating_ips": 1,
    }
    if flavor:
        needs["cores"] = int(flavor.get("vcpus") or 0)
        needs["ram"] = int(flavor.get("ram") or 0)
    return needs


def cohort_needs(flavor, count, security_group_rules, default_group_exists=True):
    """What ``count`` environments take, plus the project's default security group if it is still to come."""
    needs = dict((k, v * count) for k, v in per_environment_needs(flavor, security_group_rules).items())
    if not default_group_exists:
        needs["security_groups"] += 1
        needs["security_group_rules"] += DEFAULT_GROUP_RULES
    return needs


def environments_that_fit(flavor, security_group_rules, quotas):
    """How many environments the free quota holds (None when nothing limits it or nothing is known)."""
    fits = None
    for resource, need in per_environment_needs(flavor, security_group_rules).items():
        quota = quotas.get(resource)
        if not quota or need <= 0 or quota.get("limit") is None or int(quota["limit"]) < 0:
            continue
        free = int(quota["limit"]) - int(quota.get("used") or 0) - int(quota.get("reserved") or 0)
        n = max(0, free) // need
        fits = n if fits is None else min(fits, n)
    return fits


def quota_problems(needs, quotas, count):
    """One sentence per quota that is too small for the cohort."""
    problems = []
    for resource, need, free, limit, used in quota_shortfalls(needs, quotas):
        word = QUOTA_WORDS.get(resource, resource)
        problems.append(
            "The project's %s quota is too small: %d environments need %d %s, but only %d are free (limit %d, "
            "%d in use). Ask the cloud admins to raise the %s quota to at least %d, or provision fewer "
            "students." % (resource, count, need, word, free, limit, used, resource, used + need))
    return problems


def size_problems(image, flavor, all_flavors):
    """Why ``flavor`` cannot boot ``image`` (dicts), with the flavors that would; [] when it fits."""
    reasons = flavor_fits(flavor, image)
    if not reasons:
        return []
    fitting = flavors_that_fit(all_flavors, image)
    if fitting:
        step = "Use a flavor that fits: %s." % ", ".join(fitting)
    else:
        step = ("No flavor of this cloud fits; ask the cloud admins for a larger flavor, or make the image "
                "smaller (a lower min_disk and virtual size).")
    return ["Flavor %s is too small for image %s: %s. %s"
            % (flavor.get("name"), image.get("name"), "; ".join(reasons), step)]


def summary(problems):
    """The one fail_json message that lists every problem."""
    if len(problems) == 1:
        return "Preflight found a problem; nothing was created: %s" % problems[0]
    return "Preflight found %d problems; nothing was created: %s" % (
        len(problems), " ".join("(%d) %s" % (i, p) for i, p in enumerate(problems, 1)))


def some(names, limit=15):
    """'a, b, c' — at most ``limit`` names, then how many more (a public cloud lists hundreds of images)."""
    if not names:
        return "none"
    if len(names) <= limit:
        return ", ".join(names)
    return "%s and %d more" % (", ".join(names[:limit]), len(names) - limit)


def image_facts(image):
    return dict((k, image.get(k)) for k in ("id", "name", "status", "min_disk", "min_ram", "size",
                                            "virtual_size", "disk_format", "visibility"))


def flavor_facts(flavor):
    return dict((k, flavor.get(k)) for k in ("id", "name", "vcpus", "ram", "disk", "ephemeral", "swap"))


class PreflightModule(CourseVMCloudModule):
    argument_spec = dict(
        image=dict(type="str", required=True),
        flavor=dict(type="str", required=True),
        external_network=dict(type="str", default="public"),
        count=dict(type="int", default=1),
        security_group_rules=dict(type="int", default=4),
        check_quotas=dict(type="bool", default=True),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        count = self.params["count"]
        rules = self.params["security_group_rules"]
        if count < 1:
            self.fail_json(msg="count must be at least 1 (the number of student environments); got %d" % count)
        if rules < 0:
            self.fail_json(msg="security_group_rules must be 0 or more; got %d" % rules)

        problems = []
        facts = {"image": None, "flavor": None, "external_network": None, "flavors_that_fit": [],
                 "cohort_needs": {}, "quotas": {}, "environments_that_fit": None}

        image = self.find_image(problems)
        all_flavors = [flavor_facts(f) for f in self.conn.compute.flavors()]
        flavor = self.find_flavor(all_flavors, problems)
        if image:
            facts["image"] = image
            facts["flavors_that_fit"] = flavors_that_fit(all_flavors, image)
            if str(image.get("status")).lower() != "active":
                problems.append("Image %s is %s, not active, so no server can boot from it. Wait for its upload "
                                "to finish, or upload it again." % (image["name"], image.get("status")))
        if flavor:
            facts["flavor"] = flavor
        if image and flavor:
            problems.extend(size_problems(image, flavor, all_flavors))
        facts["external_network"] = self.find_external_network(problems)

        if self.params["check_quotas"]:
            quotas, default_group = self.read_quotas()
            needs = cohort_needs(flavor, count, rules, default_group)
            facts["cohort_needs"] = needs
            facts["quotas"] = quotas
            if flavor:
                facts["environments_that_fit"] = environments_that_fit(flavor, rules, quotas)
            problems.extend(quota_problems(needs, quotas, count))

        if problems:
            self.fail_json(msg=summary(problems), problems=problems, facts=facts, changed=False)
        return dict(changed=False, problems=[], facts=facts)

    # ---- look-ups; each adds a sentence to ``problems`` instead of failing

    def find_image(self, problems):
        name = self.params["image"]
        try:
            image = self.conn.image.find_image(name, ignore_missing=True)
        except self.sdk.exceptions.DuplicateResource:
            problems.append("Several images are named %s. Use the image's ID instead of its name." % name)
            return None
        if image is None:
            names = sorted(set(i.name for i in self.conn.image.images() if i.name))
            problems.append("Image %s was not found. Images this project can use: %s. Upload the course image "
                            "first, or fix the image name." % (name, some(names)))
            return None
        return image_facts(image.to_dict(computed=False))

    def find_flavor(self, all_flavors, problems):
        name = self.params["flavor"]
        matches = [f for f in all_flavors if f["id"] == name] or [f for f in all_flavors if f["name"] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            problems.append("Several flavors are named %s. Use the flavor's ID instead." % name)
            return None
        problems.append("Flavor %s was not found. Flavors this project can use: %s. Pick one of them."
                        % (name, "; ".join(describe_flavor(f) for f in
                                           sorted(all_flavors, key=lambda f: (f["ram"], f["disk"])))
                           or "none"))
        return None

    def find_external_network(self, problems):
        name = self.params["external_network"]
        try:
            net = self.conn.network.find_network(name, ignore_missing=True)
        except self.sdk.exceptions.DuplicateResource:
            problems.append("Several networks are named %s. Set external_network to the network's ID." % name)
            return None
        external = sorted(n.name or n.id for n in self.conn.network.networks(is_router_external=True))
        if net is None:
            problems.append("External network %s was not found. External networks of this cloud: %s. Set "
                            "external_network to one of them." % (name, some(external)))
            return None
        if not net.is_router_external:
            problems.append("Network %s exists but is not external (router:external is false), so routers and "
                            "floating IPs cannot use it. External networks of this cloud: %s. Set "
                            "external_network to one of them." % (name, some(external)))
        return {"id": net.id, "name": net.name, "is_router_external": bool(net.is_router_external)}

    def read_quotas(self):
        """Quotas as {resource: {limit, used, reserved}}; a warning (not a failure) for what cannot be read."""
        project = self.conn.current_project_id
        quotas = {}
        try:
            qs = self.conn.compute.get_quota_set(project, usage=True)
            usage = qs.usage or {}
            reservation = qs.reservation or {}
            for resource in COMPUTE_QUOTAS:
                quotas[resource] = {"limit": getattr(qs, resource, None), "used": usage.get(resource, 0),
                                    "reserved": reservation.get(resource, 0)}
        except self.sdk.exceptions.SDKException as exc:
            self.warn("Could not read the project's compute quotas, so they were not checked: %s"
                      % what_went_wrong(exc))
        default_group = True
        try:
            nq = self.conn.network.get_quota(project, details=True)
            for resource in NETWORK_QUOTAS:
                value = getattr(nq, resource, None)
                if isinstance(value, dict):
                    quotas[resource] = {"limit": value.get("limit"), "used": value.get("used", 0),
                                        "reserved": value.get("reserved", 0)}
            groups = self.conn.network.security_groups(name="default", project_id=project)
            default_group = next(iter(groups), None) is not None
        except self.sdk.exceptions.SDKException as exc:
            self.warn("Could not read the project's network quotas, so they were not checked: %s"
                      % what_went_wrong(exc))
        return quotas, default_group


def main():
    module = PreflightModule()
    module()


if __name__ == "__main__":
    main()
