# -*- coding: utf-8 -*-
# Copyright: contributors to coursevm.openstack
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the password-hash filters share (jupyter_password, unix_password): passlib's hashers, and the input
checks: passlib present, the password a non-empty string, the algorithm one the filter makes. Each refusal names
the filter; none quotes the password."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

try:
    from passlib import hash as _passlib_hash
    from passlib.utils import consteq  # pylint: disable=unused-import  # re-exported for jupyter_password
    PASSLIB_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only on a controller without passlib
    _passlib_hash = consteq = None
    PASSLIB_ERROR = exc


def passlib_hasher(filter_name, name, extra_packages=""):
    """passlib's hasher `name` (argon2, sha512_crypt); without passlib's API on the controller, a refusal that
    says what to install."""
    if PASSLIB_ERROR is not None:
        raise AnsibleFilterError(
            "%s needs passlib's API on the controller: pip install 'libpass>=1.9' %s(import error: %s)"
            % (filter_name, extra_packages + " " if extra_packages else "", PASSLIB_ERROR))
    return getattr(_passlib_hash, name)


def checked_password(filter_name, password, empty_note=""):
    """The password as text; refused when it is not a string or empty (`empty_note` says why that matters)."""
    if password is None or not isinstance(password, (str, bytes)):
        raise AnsibleFilterError("%s: the password must be a string, got %s" % (filter_name, type(password).__name__))
    password = to_text(password)
    if password == "":
        raise AnsibleFilterError("%s: the password is empty%s" % (filter_name, "; " + empty_note if empty_note else ""))
    return password


def checked_algorithm(filter_name, algorithm, algorithms, note=""):
    """The algorithm, lower-cased; refused unless it is one of `algorithms`."""
    algorithm = to_text(algorithm).lower()
    if algorithm not in algorithms:
        raise AnsibleFilterError("%s: algorithm must be one of %s, got %r%s"
                                 % (filter_name, ", ".join(algorithms), algorithm, " (%s)" % note if note else ""))
    return algorithm
