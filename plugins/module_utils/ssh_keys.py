# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a text a well-formed OpenSSH public key line? The one rule of the collection.

Used by the roster filter, the cohort module (a student's key and the team's admin keys) and, as the Jinja test
``coursevm.openstack.ssh_public_key`` (plugins/test/ssh_keys.py), by the credentials and heat_stack roles'
checks. A problem sentence never quotes the key: a private key pasted by mistake must not reach a log.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
import struct

# Key types OpenStack's Nova accepts in a keypair, and what their blob must carry after the type name.
KEY_TYPES = {
    "ssh-ed25519": "ed25519",
    "ssh-rsa": "rsa",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "sk-ssh-ed25519@openssh.com": "sk-ed25519",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa",
}
RSA_MIN_BITS = 2048
# What a key type looks like (ssh-dss, ecdsa-sha2-nistp192, ...), so an unknown one may be named in a message;
# anything else (a password pasted where a key belongs) is not repeated.
TYPE_LIKE_RE = re.compile(r"(ssh|ecdsa|sk|rsa|x509v3)-[a-z0-9.@-]{1,60}\Z")


def _ssh_strings(blob):
    """Split an SSH wire-format blob into its length-prefixed fields; ValueError when it does not parse."""
    fields = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated length field")
        (length,) = struct.unpack(">I", blob[offset:offset + 4])
        offset += 4
        if offset + length > len(blob):
            raise ValueError("a field is longer than the key")
        fields.append(blob[offset:offset + length])
        offset += length
    return fields


def ssh_public_key_problem(key):
    """None when ``key`` is a well-formed OpenSSH public key line, else what is wrong with it (pure).

    Whitespace around the line is ignored (a YAML block scalar ends in a newline); a line break inside it is
    not, since the key is written to authorized_keys, where it would make a second line of its own.
    """
    if not isinstance(key, str):
        return "is not text"
    if "PRIVATE KEY" in key:
        return "is a private key; give the public key (the one line of the .pub file) and keep the private key secret"
    key = key.strip()
    if any(ord(char) < 32 and char != "\t" or ord(char) == 127 for char in key):
        return "is more than one line or holds control characters (one key per entry, as in a .pub file)"
    parts = key.split()
    if len(parts) < 2:
        return "is not an OpenSSH public key ('<type> <base64> [comment]')"
    key_type, data = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        named = " '%s'" % key_type if TYPE_LIKE_RE.match(key_type) else ""
        return "has the unknown key type%s (expected one of %s)" % (named, ", ".join(sorted(KEY_TYPES)))
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "has a key body that is not valid base64 (copied incompletely?)"
    try:
        fields = _ssh_strings(blob)
    except ValueError as exc:
        return "has a key body that does not parse (%s; copied incompletely?)" % exc
    if not fields or fields[0] != key_type.encode("ascii"):
        return "says '%s' but its key body is of another type" % key_type
    kind = KEY_TYPES[key_type]
    if kind == "ed25519" and (len(fields) != 2 or len(fields[1]) != 32):
        return "is not a valid ed25519 key (its key body has the wrong size)"
    if kind == "rsa":
        if len(fields) != 3:
            return "is not a valid RSA key"
        modulus = fields[2].lstrip(b"\x00")
        bits = (len(modulus) - 1) * 8 + modulus[0].bit_length() if modulus else 0
        if bits < RSA_MIN_BITS:
            return "is an RSA key of %d bits; at least %d are required" % (bits, RSA_MIN_BITS)
    if kind == "ecdsa" and (len(fields) != 3 or fields[1] != key_type.rsplit("-", 1)[1].encode("ascii")):
        return "is not a valid ECDSA key (its curve does not match its type)"
    return None


def is_ssh_public_key(key):
    """True when ``key`` is a string holding one well-formed OpenSSH public key line."""
    return ssh_public_key_problem(key) is None
