# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for the ids a course is made of, so every playbook and role checks them with the rule the
roster and the resource names use (plugins/module_utils/names.py), never a regex of its own:

    student is coursevm.openstack.student_id     (1-31 of a-z, 0-9, '-'; starts with a letter or digit)
    course is coursevm.openstack.course_id       (1-20 of a-z, 0-9, '_'; starts with a letter or digit)
    user is coursevm.openstack.linux_name        (a Linux user or group name: [a-z_][a-z0-9_-]{0,31})

A student id names files and cloud resources, never a Linux account (the course account is the same on
every VM), so a university id starting with a digit is a student id. A trailing newline never passes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.coursevm.openstack.plugins.module_utils.names import COURSE_ID_RE, STUDENT_ID_RE

LINUX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")


def _matches(pattern, value):
    return isinstance(value, str) and pattern.match(value) is not None


def student_id(value):
    return _matches(STUDENT_ID_RE, value)


def course_id(value):
    return _matches(COURSE_ID_RE, value)


def linux_name(value):
    return _matches(LINUX_NAME_RE, value)


class TestModule:
    """The course's id tests."""

    def tests(self):
        return {"student_id": student_id, "course_id": course_id, "linux_name": linux_name}
