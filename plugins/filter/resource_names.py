# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""resource_names: a course's (or one student's) OpenStack resource names, from plugins/module_utils/names.py,
the one place that derives them for modules, roles, playbooks and HOT templates alike."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.module_utils.names import (
    BadName, check_student, classify, resource_names as _names)

# The keys of a course-resources listing (playbooks/tasks/course_resources.yml) and the kind of each.
LISTING_KINDS = {"servers": "server", "keypairs": "keypair", "ports": "port", "networks": "network",
                 "subnets": "subnet", "routers": "router", "security_groups": "security_group",
                 "boot_volumes": "boot_volume", "data_volumes": "data_volume"}


def resource_names(course, student=None, topology="shared"):
    try:
        return _names(course, student or None, topology)
    except BadName as exc:
        raise AnsibleFilterError(str(exc))


def course_resources(resources, course, kind, student=None):
    """The resources (dicts with a name) of ``kind`` that belong to ``course``; with ``student``, only that
    student's (their server, keypair, port, and their own network resources in the isolated topology)."""
    try:
        if student:
            check_student(student)
        picked = []
        for resource in resources or []:
            owner = classify(course, resource.get("name"), kind)
            if owner and (not student or owner == ("student", student)):
                picked.append(resource)
        return picked
    except BadName as exc:
        raise AnsibleFilterError(str(exc))


def course_students(listing, course):
    """The sorted ids of the students any resource of ``listing`` (kind list -> resources) belongs to."""
    try:
        students = set()
        for key, kind in LISTING_KINDS.items():
            for resource in listing.get(key) or []:
                owner = classify(course, resource.get("name"), kind)
                if owner and owner[0] == "student":
                    students.add(owner[1])
        return sorted(students)
    except BadName as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    """Resource names."""

    def filters(self):
        return {"resource_names": resource_names, "course_resources": course_resources,
                "course_students": course_students}
