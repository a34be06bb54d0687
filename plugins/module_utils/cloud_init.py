# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The first-boot cloud-config of a course VM, written in one place for the cohort module, the course_server
role and the HOT templates (through the course_user_data filter).

cloud-init keeps it at /var/lib/cloud/instance/user-data.txt and runs it once, so a change here affects new
servers only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

# The key-only sshd drop-in: one file name and one content for cloud-init's first boot (user_data below) and the
# credentials role (lookup coursevm.openstack.course_sshd), so a VM has one such file whoever wrote it last.
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/00-coursevm.conf"
# Names the credentials role wrote it under before; the role removes them.
SSHD_FORMER_DROP_INS = ("/etc/ssh/sshd_config.d/00-coursevm-hardening.conf",)
SSHD_KEY_ONLY = (
    "# Key-only logins, no root: students and operators sign in with their SSH keys.\n"
    "# sshd keeps the first value it reads for each keyword and reads this folder before sshd_config's own lines,\n"
    "# so this file (sorted first) wins over later drop-ins such as cloud-init's 50-cloud-init.conf.\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "PermitRootLogin no\n"
    "PermitEmptyPasswords no\n"
)


def authorized_keys(student_key, admin_keys):
    """The student's key first, then the course team's; trimmed, empties dropped, each once."""
    keys = []
    for key in [student_key or ""] + list(admin_keys or []):
        key = (key or "").strip()
        if key and key not in keys:
            keys.append(key)
    return keys


def user_data(course, student, keys):
    """#cloud-config text: the keys installed, password and root login off, the key-only sshd drop-in."""
    lines = [
        "#cloud-config",
        "# Managed by coursevm.openstack",
        "# coursevm %s/%s: first-boot settings. cloud-init keeps this text at "
        "/var/lib/cloud/instance/user-data.txt;" % (course, student),
        "# it runs once, so a change affects new servers only.",
        "ssh_authorized_keys:",
    ]
    # JSON strings are YAML scalars: a key's comment may hold any character.
    lines += ["  - %s" % json.dumps(key) for key in keys]
    lines += [
        "# Keys only: no ssh password login for anyone, no root login, and no password set for the default user.",
        "ssh_pwauth: false",
        "disable_root: true",
        "chpasswd:",
        "  expire: false",
        "write_files:",
        "  - path: %s" % SSHD_DROP_IN,
        "    owner: root:root",
        '    permissions: "0644"',
        "    content: |",
    ]
    lines += ["      " + line for line in SSHD_KEY_ONLY.splitlines()]
    return "\n".join(lines) + "\n"
