# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""course_user_data: a course VM's first-boot cloud-config, from plugins/module_utils/cloud_init.py (the same
text the cohort module sends)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud_init import authorized_keys, user_data


def course_user_data(keys, course, student):
    return user_data(course, student, authorized_keys("", keys))


class FilterModule:
    """cloud-init user data."""

    def filters(self):
        return {"course_user_data": course_user_data}
