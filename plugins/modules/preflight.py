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
    (rounded up to whole GB); its RAM is at least the image's C(min_ram). A flavor with a 0 GB root disk (clouds
    that back servers with volumes) is refused unless O(boot_from_volume) is on, and the refusal says so.
  - With O(boot_from_volume), the boot volume (O(volume_size), by default the image's size) must hold the
    image's C(min_disk) and virtual size, O(volume_type) must exist, and the project's volume quotas
    (C(volumes) and C(gigabytes)) must leave room for a volume per student.
  - The external network exists and is external (C(router:external)).
  - The project's compute and network quotas, minus what is already in use, leave room for
    O(count) students. Each student takes one server of O(flavor), a key pair, a port and a floating IP. In
    the C(isolated) topology each student also has a network, a subnet, a router, a security group with
    O(security_group_rules) rules (plus the two egress rules Neutron adds to every new group) and two more
    ports (router interface, DHCP); in the C(shared) topology the course has one of each, counted once.
  - With O(course), what the course already has is not counted again, only the students still missing (of
    O(students), or O(count) when no list is given) and the course network if it is still to come; and a
    course provisioned in the other topology is refused (switching would strand every student's VM).
  - The public IPv4 addresses the run takes (a floating IP per student, a router gateway per network) are
    reported, and compared with the free addresses of the external network when the cloud shows them.
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
  topology:
    description: C(shared) (one network, router and security group per course) or C(isolated) (per student).
    type: str
    choices: [shared, isolated]
    default: shared
  course:
    description:
      - The course id. When given, existing servers and networks of the course are looked at (see above).
    type: str
  students:
    description:
      - The ids of the cohort's students (with O(course)); those whose server exists are not counted.
    type: list
    elements: str
  boot_from_volume:
    description:
      - Whether the servers boot from a Cinder volume made from the image (as M(coursevm.openstack.cohort)
        does with the same option) instead of the flavor's root disk. Needed on flavors with a 0 GB disk.
    type: bool
    default: false
    version_added: 0.4.0
  volume_size:
    description:
      - Size in GB of each boot volume, with O(boot_from_volume). Default the smallest that holds the image
        (its C(min_disk), virtual size and stored size).
    type: int
    version_added: 0.4.0
  volume_type:
    description: The Cinder volume type of the boot volumes, with O(boot_from_volume); default the cloud's.
    type: str
    version_added: 0.4.0
  student_volume_size:
    description:
      - Size in GB of each student's data volume (as M(coursevm.openstack.cohort) makes with the same option);
        C(0) for none. The students without one yet are counted against the volume quotas (C(volumes),
        C(gigabytes)).
    type: int
    default: 0
    version_added: 0.4.0
  student_volume_type:
    description: The Cinder volume type of the data volumes, with O(student_volume_size); it must exist.
    type: str
    version_added: 0.4.0
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
      description: The external network (id, name, is_router_external, and cidrs - its subnets' CIDRs, which
        private subnets must not overlap), or null when not found.
      type: dict
      returned: always
    flavors_that_fit:
      description: Names of the flavors that can boot the image, smallest first (when the image was found).
      type: list
      elements: str
      returned: always
    boot_volume:
      description: The boot volume each student gets (size GB, type), or null without O(boot_from_volume).
      type: dict
      returned: always
    data_volumes:
      description: With O(student_volume_size), the data volume each student gets (size GB, type) and how
        many are still to be made (C(missing)); else null.
      type: dict
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
      description: How many more students the quotas leave room for (null when quotas were not read or
        the flavor is unknown).
      type: int
      returned: always
    missing_students:
      description: The students (of O(students)) without a server yet, or null without O(course).
      type: list
      elements: str
      returned: always
    course_network_exists:
      description: Whether the course's shared network exists already (with O(course), shared topology).
      type: bool
      returned: always
    public_addresses:
      description: Public IPv4 addresses the missing students and networks take (floating IPs and router
        gateways).
      type: int
      returned: always
    free_public_addresses:
      description: Free addresses of the external network's subnets, or null when the cloud does not show them
        to this user (Neutron's network IP availability is admin-only by default).
      type: int
      returned: always
"""

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule, what_went_wrong
from ansible_collections.coursevm.openstack.plugins.module_utils.names import (
    BadName, check_course, classify, network_names)
from ansible_collections.coursevm.openstack.plugins.module_utils.sizing import (
    describe_flavor, flavor_fits, flavors_that_fit, image_disk_need_gb, quota_shortfalls, volume_fits)

# Neutron gives every new security group two egress rules (IPv4 and IPv6); a project's first network
# call also creates its "default" group with four rules.
DEFAULT_EGRESS_RULES = 2
DEFAULT_GROUP_RULES = 4

COMPUTE_QUOTAS = ("instances", "cores", "ram", "key_pairs")
VOLUME_QUOTAS = ("volumes", "gigabytes")
NETWORK_QUOTAS = ("networks", "subnets", "routers", "security_groups", "security_group_rules", "ports",
                  "floating_ips")

QUOTA_WORDS = {
    "instances": "servers", "cores": "vCPUs", "ram": "MB of RAM", "key_pairs": "key pairs",
    "networks": "networks", "subnets": "subnets", "routers": "routers", "security_groups": "security groups",
    "security_group_rules": "security group rules", "ports": "ports", "floating_ips": "floating IPs",
    "volumes": "volumes", "gigabytes": "GB of volumes",
}


def per_environment_needs(flavor, security_group_rules, topology="isolated", volume_gb=None):
    """What one student takes from each quota (``flavor`` a dict, or None when unknown).

    isolated: the student's own network, subnet, router, security group, and three ports (server, router
    interface, DHCP). shared: only the server's port; the network is the course's (course_needs). A server
    booted from a volume (``volume_gb``) takes a volume of that size.
    """
    needs = {"instances": 1, "key_pairs": 1, "ports": 1, "floating_ips": 1}
    if volume_gb:
        needs.update(volumes=1, gigabytes=volume_gb)
    if topology == "isolated":
        needs.update(course_needs(security_group_rules))
        needs["ports"] += 1
    if flavor:
        needs["cores"] = int(flavor.get("vcpus") or 0)
        needs["ram"] = int(flavor.get("ram") or 0)
    return needs


def course_needs(security_group_rules):
    """What one network of its own takes: the course's in shared, each student's in isolated. Two ports:
    the router's interface and the DHCP port."""
    return {"networks": 1, "subnets": 1, "routers": 1, "security_groups": 1,
            "security_group_rules": security_group_rules + DEFAULT_EGRESS_RULES, "ports": 2}


def cohort_needs(flavor, count, security_group_rules, default_group_exists=True, topology="isolated",
                 course_network_exists=False, volume_gb=None, data_volumes=(0, 0)):
    """What ``count`` students take, plus the course network (shared, when it is still to come), the
    project's default security group (when it is still to come) and ``data_volumes`` (how many data volumes are
    still to be made, of how many GB each)."""
    needs = dict((k, v * count) for k, v in per_environment_needs(flavor, security_group_rules, topology,
                                                                  volume_gb).items())
    data_count, data_gb = data_volumes
    if data_count and data_gb:
        needs["volumes"] = needs.get("volumes", 0) + data_count
        needs["gigabytes"] = needs.get("gigabytes", 0) + data_count * data_gb
    if topology == "shared" and not course_network_exists:
        for k, v in course_needs(security_group_rules).items():
            needs[k] = needs.get(k, 0) + v
    if not default_group_exists:
        needs["security_groups"] = needs.get("security_groups", 0) + 1
        needs["security_group_rules"] = needs.get("security_group_rules", 0) + DEFAULT_GROUP_RULES
    return needs


def public_addresses(count, topology, course_network_exists=False):
    """Public IPv4 addresses the students still missing take: a floating IP each, and a router gateway
    for each network that is still to come (one per course in shared, one per student in isolated)."""
    if topology == "shared":
        return count + (0 if course_network_exists else 1)
    return 2 * count


def environments_that_fit(flavor, security_group_rules, quotas, topology="isolated", course_network_exists=True,
                          volume_gb=None):
    """How many students the free quota holds (None when nothing limits it or nothing is known)."""
    fixed = {}
    if topology == "shared" and not course_network_exists:
        fixed = course_needs(security_group_rules)
    fits = None
    for resource, need in per_environment_needs(flavor, security_group_rules, topology, volume_gb).items():
        quota = quotas.get(resource)
        if not quota or need <= 0 or quota.get("limit") is None or int(quota["limit"]) < 0:
            continue
        free = (int(quota["limit"]) - int(quota.get("used") or 0) - int(quota.get("reserved") or 0)
                - fixed.get(resource, 0))
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


def size_problems(image, flavor, all_flavors, boot_from_volume=False):
    """Why ``flavor`` cannot boot ``image`` (dicts), with the flavors that would; [] when it fits."""
    reasons = flavor_fits(flavor, image, boot_from_volume)
    if not reasons:
        return []
    fitting = flavors_that_fit(all_flavors, image, boot_from_volume=boot_from_volume)
    if fitting:
        step = "Use a flavor that fits: %s." % ", ".join(fitting)
    else:
        step = ("No flavor of this cloud fits; ask the cloud admins for a larger flavor, or make the image "
                "smaller (a lower min_disk and virtual size).")
    if int(flavor.get("disk") or 0) == 0 and not boot_from_volume:
        # The usual case on clouds that back servers with Ceph: every flavor has a 0 GB disk.
        step = ("Boot from a volume on it (boot_from_volume: true; cohort_boot_from_volume: true in the "
                "playbooks)%s." % (", or use a flavor that fits: %s" % ", ".join(fitting) if fitting else ""))
    return ["Flavor %s is too small for image %s: %s. %s"
            % (flavor.get("name"), image.get("name"), "; ".join(reasons), step)]


def volume_problems(image, volume_gb):
    """Why a boot volume of ``volume_gb`` GB cannot hold ``image``, with the size that would; [] when it fits."""
    reasons = volume_fits(volume_gb, image)
    if not reasons:
        return []
    need = image_disk_need_gb(image)
    return ["The boot volume is too small for image %s: %s. Set volume_size to at least %d GB, or leave it unset "
            "(the default is the image's size)." % (image.get("name"), "; ".join(reasons), need)]


def quota_usage(quota_set, resources):
    """{resource: {limit, used, reserved}} of a compute or block-storage quota set read with usage=True."""
    usage = quota_set.usage or {}
    reservation = quota_set.reservation or {}
    return dict((resource, {"limit": getattr(quota_set, resource, None), "used": usage.get(resource, 0),
                            "reserved": reservation.get(resource, 0)}) for resource in resources)


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
        topology=dict(type="str", choices=["shared", "isolated"], default="shared"),
        course=dict(type="str"),
        students=dict(type="list", elements="str"),
        boot_from_volume=dict(type="bool", default=False),
        volume_size=dict(type="int"),
        volume_type=dict(type="str"),
        student_volume_size=dict(type="int", default=0),
        student_volume_type=dict(type="str"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        count = self.params["count"]
        rules = self.params["security_group_rules"]
        if count < 1:
            self.fail_json(msg="count must be at least 1 (the number of student environments); got %d" % count)
        if rules < 0:
            self.fail_json(msg="security_group_rules must be 0 or more; got %d" % rules)
        bfv, volume_size = self.params["boot_from_volume"], self.params["volume_size"]
        if not bfv and (volume_size is not None or self.params["volume_type"]):
            self.fail_json(msg="volume_size and volume_type are for boot volumes: set boot_from_volume: true too")
        if volume_size is not None and volume_size < 1:
            self.fail_json(msg="volume_size must be at least 1 (GB); got %d" % volume_size)
        data_gb = self.params["student_volume_size"]
        if data_gb < 0:
            self.fail_json(msg="student_volume_size must be 0 (no data volumes) or a size in GB; got %d" % data_gb)
        if self.params["student_volume_type"] and not data_gb:
            self.fail_json(msg="student_volume_type is for data volumes: set student_volume_size too")
        topology = self.params["topology"]
        if self.params["course"] is not None:
            try:
                check_course(self.params["course"])
            except BadName as exc:
                self.fail_json(msg=str(exc))
        elif self.params["students"]:
            self.fail_json(msg="students needs course: the students' servers are found by the course's names")

        problems = []
        facts = {"image": None, "flavor": None, "external_network": None, "flavors_that_fit": [],
                 "cohort_needs": {}, "quotas": {}, "environments_that_fit": None, "missing_students": None,
                 "course_network_exists": False, "public_addresses": None, "free_public_addresses": None,
                 "boot_volume": None, "data_volumes": None}
        course_network_exists = False
        if self.params["course"] is not None:
            course_network_exists, missing = self.look_at_course(problems)
            facts["course_network_exists"] = course_network_exists
            if missing is not None:
                facts["missing_students"] = missing
                count = len(missing)

        image = self.find_image(problems)
        all_flavors = [flavor_facts(f) for f in self.conn.compute.flavors()]
        flavor = self.find_flavor(all_flavors, problems)
        volume_gb = None
        if image:
            facts["image"] = image
            facts["flavors_that_fit"] = flavors_that_fit(all_flavors, image, boot_from_volume=bfv)
            if bfv:
                volume_gb = volume_size or max(1, image_disk_need_gb(image))
                facts["boot_volume"] = {"size": volume_gb, "type": self.params["volume_type"]}
                problems.extend(volume_problems(image, volume_gb))
        if bfv and self.params["volume_type"]:
            self.find_volume_type(problems)
        data_count = 0
        if data_gb:
            if self.params["student_volume_type"]:
                self.find_volume_type(problems, "student_volume_type")
            data_count = self.data_volumes_missing(count, problems)
            facts["data_volumes"] = {"size": data_gb, "type": self.params["student_volume_type"],
                                     "missing": data_count}
            if str(image.get("status")).lower() != "active":
                problems.append("Image %s is %s, not active, so no server can boot from it. Wait for its upload "
                                "to finish, or upload it again." % (image["name"], image.get("status")))
        if flavor:
            facts["flavor"] = flavor
        if image and flavor:
            problems.extend(size_problems(image, flavor, all_flavors, bfv))
        facts["external_network"] = self.find_external_network(problems)
        addresses = public_addresses(count, topology, course_network_exists)
        facts["public_addresses"] = addresses
        if facts["external_network"]:
            free = self.free_addresses(facts["external_network"]["id"])
            facts["free_public_addresses"] = free
            if free is not None and free < addresses:
                problems.append(
                    "The external network %s has %d free addresses, but %d students in the %s topology need %d "
                    "(a floating IP each%s). Ask the cloud admins for more public addresses, or provision fewer "
                    "students%s." % (facts["external_network"]["name"], free, count, topology, addresses,
                                     " and a router gateway each" if topology == "isolated" else
                                     "" if course_network_exists else " and the course router's gateway",
                                     " (the shared topology needs about half as many)"
                                     if topology == "isolated" else ""))

        if self.params["check_quotas"] and count > 0:
            quotas, default_group = self.read_quotas(volumes=bfv or bool(data_gb))
            needs = cohort_needs(flavor, count, rules, default_group, topology, course_network_exists, volume_gb,
                                 (data_count, data_gb))
            facts["cohort_needs"] = needs
            facts["quotas"] = quotas
            if flavor:
                facts["environments_that_fit"] = environments_that_fit(flavor, rules, quotas, topology,
                                                                       course_network_exists, volume_gb)
            problems.extend(quota_problems(needs, quotas, count))

        if problems:
            self.fail_json(msg=summary(problems), problems=problems, facts=facts, changed=False)
        return dict(changed=False, problems=[], facts=facts)

    # ---- look-ups; each adds a sentence to ``problems`` instead of failing

    def find_by_name_or_id(self, find, name, several, problems):
        """(what `find` finds by name or ID or None, whether the name was unique); `several` % name is the problem
        said when more than one has that name."""
        try:
            return find(name, ignore_missing=True), True
        except self.sdk.exceptions.DuplicateResource:
            problems.append(several % name)
            return None, False

    def find_image(self, problems):
        name = self.params["image"]
        image, unique = self.find_by_name_or_id(
            self.conn.image.find_image, name, "Several images are named %s. Use the image's ID instead of its name.",
            problems)
        if not unique:
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

    def data_volumes_missing(self, count, problems):
        """How many of the students have no data volume yet (``count`` without course and students)."""
        if not self.conn.has_service("block-storage"):
            problems.append("student_volume_size needs the block-storage (Cinder) service, which this cloud's "
                            "catalog does not have. Leave student_volume_size at 0 on this cloud.")
            return 0
        if self.params["course"] is None or self.params["students"] is None:
            return count
        have = set(o[1] for o in (classify(self.params["course"], v.name, "data_volume")
                                  for v in self.conn.block_storage.volumes()) if o)
        return len([s for s in self.params["students"] if s not in have])

    def find_volume_type(self, problems, option="volume_type"):
        name = self.params[option]
        try:
            found = self.conn.block_storage.find_type(name, ignore_missing=True)
        except self.sdk.exceptions.SDKException as exc:
            problems.append("The volume types could not be read (%s), so %s %s could not be checked. Does this "
                            "cloud have a block-storage (Cinder) service?" % (what_went_wrong(exc), option, name))
            return
        if found is None:
            types = sorted(t.name for t in self.conn.block_storage.types() if t.name)
            problems.append("Volume type %s was not found. Volume types of this cloud: %s. Set %s to one of them, "
                            "or leave it unset for the cloud's default." % (name, some(types), option))

    def find_external_network(self, problems):
        name = self.params["external_network"]
        net, unique = self.find_by_name_or_id(
            self.conn.network.find_network, name,
            "Several networks are named %s. Set external_network to the network's ID.", problems)
        if not unique:
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
        cidrs = sorted(sn.cidr for sn in self.conn.network.subnets(network_id=net.id) if sn.cidr)
        return {"id": net.id, "name": net.name, "is_router_external": bool(net.is_router_external),
                "cidrs": cidrs}

    def look_at_course(self, problems):
        """(whether the shared course network exists, the students still without a server or None).

        A course made in the other topology is a problem: its students' VMs would be stranded."""
        course, topology = self.params["course"], self.params["topology"]
        owners = [classify(course, n.name, "network") for n in self.conn.network.networks()]
        course_net = ("course", None) in owners
        student_nets = sorted(o[1] for o in owners if o and o[0] == "student")
        if topology == "shared" and student_nets:
            problems.append(
                "Course %s was provisioned in the isolated topology (networks of its own for %s), so it cannot "
                "be provisioned shared. Keep cohort_topology: isolated for this course, or tear the course down "
                "first (teardown.yml -e teardown_whole_course=true) and provision it again."
                % (course, some(student_nets, 5)))
        if topology == "isolated" and course_net:
            problems.append(
                "Course %s was provisioned in the shared topology (its network %s exists), so it cannot be "
                "provisioned isolated. Keep cohort_topology: shared for this course, or tear the course down "
                "first (teardown.yml -e teardown_whole_course=true) and provision it again."
                % (course, network_names(course)["network"]))
        if self.params["students"] is None:
            return course_net, None
        existing = set(o[1] for o in (classify(course, s.name, "server") for s in
                                      self.conn.compute.servers(name="^%s-" % course)) if o)
        return course_net, [s for s in self.params["students"] if s not in existing]

    def free_addresses(self, network_id):
        """Free addresses of the external network, or None when this user may not see them."""
        try:
            availability = self.conn.network.get_network_ip_availability(network_id)
        except self.sdk.exceptions.SDKException:
            return None
        total = used = 0
        for subnet in availability.subnet_ip_availability or []:
            if subnet.get("ip_version") == 4:
                total += int(subnet.get("total_ips") or 0)
                used += int(subnet.get("used_ips") or 0)
        return max(0, total - used) if total else None

    def read_quotas(self, volumes=False):
        """Quotas as {resource: {limit, used, reserved}}; a warning (not a failure) for what cannot be read.
        Volume quotas only with ``volumes``: a cloud without Cinder has none to read."""
        project = self.conn.current_project_id
        quotas = {}
        try:
            quotas.update(quota_usage(self.conn.compute.get_quota_set(project, usage=True), COMPUTE_QUOTAS))
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
        if volumes:
            try:
                quotas.update(quota_usage(self.conn.block_storage.get_quota_set(project, usage=True),
                                          VOLUME_QUOTAS))
            except self.sdk.exceptions.SDKException as exc:
                self.warn("Could not read the project's volume quotas, so they were not checked: %s"
                          % what_went_wrong(exc))
        return quotas, default_group


def main():
    module = PreflightModule()
    module()


if __name__ == "__main__":
    main()
