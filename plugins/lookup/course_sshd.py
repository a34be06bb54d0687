# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: course_sshd
version_added: 0.4.0
short_description: The key-only sshd drop-in of a course VM (its path, content, or former paths)
description:
  - The one source of the key-only sshd settings (C(PasswordAuthentication), C(KbdInteractiveAuthentication),
    C(PermitRootLogin), C(PermitEmptyPasswords) all V(no)) and of the drop-in's file name, from
    C(plugins/module_utils/cloud_init.py). cloud-init writes the same file at first boot (the
    C(course_user_data) filter and the cohort module); the credentials role writes it again with this lookup.
author:
  - coursevm.openstack contributors (@coursevm)
options:
  _terms:
    description: What to return, one value per term.
    type: list
    elements: str
    choices: [path, content, former_paths]
    required: true
"""

EXAMPLES = r"""
- name: Write the key-only sshd drop-in
  ansible.builtin.copy:
    dest: "{{ lookup('coursevm.openstack.course_sshd', 'path') }}"
    content: "{{ lookup('coursevm.openstack.course_sshd', 'content') }}"
    mode: "0644"
"""

RETURN = r"""
_raw:
  description:
    - For V(path), the drop-in's path (C(/etc/ssh/sshd_config.d/00-coursevm.conf)); for V(content), its text
      (without the C(ansible_managed) header, which the role's template adds); for V(former_paths), the list
      of names it had before (to remove).
  type: list
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud_init import (
    SSHD_DROP_IN, SSHD_FORMER_DROP_INS, SSHD_KEY_ONLY)

VALUES = {"path": SSHD_DROP_IN, "content": SSHD_KEY_ONLY, "former_paths": list(SSHD_FORMER_DROP_INS)}


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        unknown = [term for term in terms if term not in VALUES]
        if unknown or not terms:
            raise AnsibleError("course_sshd takes path, content or former_paths (got %s)" % ", ".join(map(str, unknown)))
        return [VALUES[term] for term in terms]
