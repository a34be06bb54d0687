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

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

try:
    from passlib.hash import argon2 as _passlib_argon2
    from passlib.utils import consteq
    HAS_PASSLIB = True
    PASSLIB_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only on a controller without passlib
    HAS_PASSLIB = False
    PASSLIB_ERROR = exc

# The same cost parameters as jupyter_server.auth.passwd(), so our hashes are indistinguishable from
# the ones `jupyter server password` writes (and verify with jupyter_server's own passwd_check()).
ARGON2_PARAMS = dict(type="ID", memory_cost=10240, rounds=10, parallelism=8)
SHA1_SALT_HEX_CHARS = 12
ALGORITHMS = ("argon2", "sha1")


def _require_passlib():
    if not HAS_PASSLIB:
        raise AnsibleFilterError(
            "jupyter_password_hash needs passlib's API on the controller: pip install 'libpass>=1.9' "
            "argon2-cffi (import error: %s)" % PASSLIB_ERROR
        )


def _check_password(password):
    if password is None or not isinstance(password, (str, bytes)):
        raise AnsibleFilterError("jupyter_password_hash: the password must be a string, got %s"
                                 % type(password).__name__)
    password = to_text(password)
    if password == "":
        raise AnsibleFilterError("jupyter_password_hash: the password is empty; Jupyter would accept anyone")
    return password


def jupyter_password_verify(hashed, password):
    """True when ``hashed`` (a Jupyter hashed_password string) is a hash of ``password``."""
    _require_passlib()
    hashed = to_text(hashed or "")
    password = to_text(password)
    if hashed.startswith("argon2:"):
        try:
            return bool(_passlib_argon2.verify(password, hashed[len("argon2:"):]))
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
    _require_passlib()
    password = _check_password(password)
    algorithm = to_text(algorithm).lower()
    if algorithm not in ALGORITHMS:
        raise AnsibleFilterError("jupyter_password_hash: algorithm must be one of %s, got %r"
                                 % (", ".join(ALGORITHMS), algorithm))
    current = to_text(current) if current else ""
    if current.startswith(algorithm + ":") and jupyter_password_verify(current, password):
        return current
    if algorithm == "argon2":
        return "argon2:" + _passlib_argon2.using(**ARGON2_PARAMS).hash(password)
    # Legacy format, for Jupyter releases older than Notebook 6.1 that cannot read argon2 hashes.
    salt = secrets.token_hex(SHA1_SALT_HEX_CHARS // 2)
    return "sha1:%s:%s" % (salt, hashlib.sha1(password.encode("utf-8") + salt.encode("ascii")).hexdigest())


class FilterModule(object):
    def filters(self):
        return {
            "jupyter_password_hash": jupyter_password_hash,
            "jupyter_password_verify": jupyter_password_verify,
        }
