# -*- coding: utf-8 -*-
# Copyright: contributors to coursevm.openstack
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unix (/etc/shadow) password hashes made through passlib's API.

ansible.builtin.password_hash prefers libxcrypt when the controller has it, and libxcrypt's crypt_gensalt()
takes a given salt as entropy rather than as the salt: an existing hash cannot be reproduced with it, so a
role re-hashing the same password would change /etc/shadow on every run. This filter hashes with passlib and
keeps ``current`` when it already matches, which makes roles idempotent without the plaintext on the VM.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.coursevm.openstack.plugins.plugin_utils.password_filters import (
    checked_algorithm, checked_password, passlib_hasher)

# passlib has no yescrypt; sha512_crypt ($6$) is what every glibc and libxcrypt verifies.
ALGORITHMS = ("sha512_crypt",)
DEFAULT_ROUNDS = 656000


def _sha512_crypt():
    return passlib_hasher("unix_password_hash", "sha512_crypt")


def unix_password_verify(hashed, password):
    """True when ``hashed`` (an /etc/shadow password field) is a sha512_crypt hash of ``password``.

    A locked field (``!`` prefix) or any other format is never a match.
    """
    sha512_crypt = _sha512_crypt()
    hashed = to_text(hashed or "")
    if not sha512_crypt.identify(hashed):
        return False
    try:
        return bool(sha512_crypt.verify(to_text(password), hashed))
    except (ValueError, TypeError):
        return False


def unix_password_hash(password, algorithm="sha512_crypt", current=None, rounds=DEFAULT_ROUNDS):
    """Hash ``password`` for /etc/shadow; return ``current`` unchanged when it is already a hash of it."""
    sha512_crypt = _sha512_crypt()
    password = checked_password("unix_password_hash", password)
    checked_algorithm("unix_password_hash", algorithm, ALGORITHMS, "passlib has no yescrypt")
    try:
        rounds = int(rounds)
    except (TypeError, ValueError):
        raise AnsibleFilterError("unix_password_hash: rounds must be an integer, got %r" % (rounds,))
    if not 1000 <= rounds <= 999999999:
        raise AnsibleFilterError("unix_password_hash: rounds must be 1000-999999999, got %d" % rounds)
    if current and unix_password_verify(current, password):
        return to_text(current)
    return sha512_crypt.using(rounds=rounds).hash(password)


class FilterModule(object):
    def filters(self):
        return {
            "unix_password_hash": unix_password_hash,
            "unix_password_verify": unix_password_verify,
        }
