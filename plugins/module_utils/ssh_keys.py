# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a text a well-formed OpenSSH public key line? One check, for the roster filter and the cohort module."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
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
    """None when ``key`` is a well-formed OpenSSH public key line, else what is wrong with it (pure)."""
    if "PRIVATE KEY" in key:
        return "is a private key; give the public key (the one line of the .pub file) and keep the private key secret"
    parts = key.split()
    if len(parts) < 2:
        return "is not an OpenSSH public key ('<type> <base64> [comment]')"
    key_type, data = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        return "has the unknown key type '%s' (expected one of %s)" % (key_type, ", ".join(sorted(KEY_TYPES)))
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
