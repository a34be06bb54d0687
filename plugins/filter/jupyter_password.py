# -*- coding: utf-8 -*-
# Copyright: contributors to coursevm.openstack
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jupyter password hashes made through passlib's API.

Jupyter Server stores ``PasswordIdentityProvider.hashed_password`` as ``argon2:<PHC string>`` (the default
since Notebook 6.1) or, in old configs, ``sha1:<salt>:<hexdigest>``. Hashes are salted, so a fresh hash on
every run would rewrite the config and restart Jupyter each time; ``current=`` keeps an existing hash that
already matches the password, which makes roles idempotent without storing the plaintext on the VM.
"""

from __future__ import annotations

import hashlib
import secrets

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.coursevm.openstack.plugins.plugin_utils.password_filters import (
    checked_algorithm, checked_password, consteq, passlib_hasher)

# The same cost parameters as jupyter_server.auth.passwd(), so our hashes are indistinguishable from
# the ones `jupyter server password` writes (and verify with jupyter_server's own passwd_check()).
ARGON2_PARAMS = dict(type="ID", memory_cost=10240, rounds=10, parallelism=8)
SHA1_SALT_HEX_CHARS = 12
ALGORITHMS = ("argon2", "sha1")


def _argon2():
    return passlib_hasher("jupyter_password_hash", "argon2", "argon2-cffi")


def jupyter_password_verify(hashed, password):
    """True when ``hashed`` (a Jupyter hashed_password string) is a hash of ``password``."""
    argon2 = _argon2()
    hashed = to_text(hashed or "")
    password = to_text(password)
    if hashed.startswith("argon2:"):
        try:
            return bool(argon2.verify(password, hashed[len("argon2:"):]))
        except (ValueError, TypeError):
            return False  # malformed PHC string: not a match, and the caller makes a new hash
    if hashed.startswith("sha1:"):
        parts = hashed.split(":", 2)
        if len(parts) != 3:
            return False
        salt, digest = parts[1], parts[2]
        computed = hashlib.sha1(password.encode("utf-8") + salt.encode("ascii")).hexdigest()
        return consteq(computed, digest)
    return False


def jupyter_password_hash(password, algorithm="argon2", current=None):
    """Hash ``password`` for Jupyter's ``PasswordIdentityProvider.hashed_password``.

    When ``current`` is already a hash of ``password`` made with ``algorithm``, it is returned unchanged.
    """
    argon2 = _argon2()
    password = checked_password("jupyter_password_hash", password, "Jupyter would accept anyone")
    algorithm = checked_algorithm("jupyter_password_hash", algorithm, ALGORITHMS)
    current = to_text(current) if current else ""
    if current.startswith(algorithm + ":") and jupyter_password_verify(current, password):
        return current
    if algorithm == "argon2":
        return "argon2:" + argon2.using(**ARGON2_PARAMS).hash(password)
    # Legacy format, for Jupyter releases older than Notebook 6.1 that cannot read argon2 hashes.
    salt = secrets.token_hex(SHA1_SALT_HEX_CHARS // 2)
    return "sha1:%s:%s" % (salt, hashlib.sha1(password.encode("utf-8") + salt.encode("ascii")).hexdigest())


class FilterModule(object):
    def filters(self):
        return {
            "jupyter_password_hash": jupyter_password_hash,
            "jupyter_password_verify": jupyter_password_verify,
        }
