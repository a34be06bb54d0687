# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja test for an SSH public key, so the roles check keys with the rule the roster filter and the cohort
module use (plugins/module_utils/ssh_keys.py), never a regex of their own:

    key is coursevm.openstack.ssh_public_key

True for one OpenSSH public key line ('TYPE BASE64 [comment]') whose base64 body parses, carries its own type
and has the right size (RSA at least 2048 bits). A private key, two lines, or a fragment never passes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.coursevm.openstack.plugins.module_utils.ssh_keys import is_ssh_public_key


def ssh_public_key(value):
    return is_ssh_public_key(value)


class TestModule:
    """The SSH key test."""

    def tests(self):
        return {"ssh_public_key": ssh_public_key}
