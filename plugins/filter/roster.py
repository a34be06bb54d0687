# -*- coding: utf-8 -*-
# Copyright: contributors to coursevm.openstack
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cohort's roster and its per-student subnets, checked on the controller before anything is created.

``roster``: CSV text (student id, name, email, optional SSH public key) -> a list of dicts. Every problem in
the file is collected and reported at once, each with its line number, so a course team fixes the roster in
one pass instead of one error per run.

``cohort_cidrs``: student ids -> {id: CIDR}. Either every student's isolated network uses the same CIDR
(isolation is by network, so that is safe), or each gets its own block carved from a pool. Either way the
CIDRs are checked against the external network's subnets (a router cannot route to a private subnet that
overlaps its gateway network: Neutron refuses the interface only after network, subnet and router exist).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import ipaddress
import re
import struct

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# Student ids become part of resource names (<course>-<student>-net), server host names and keypair names:
# lower-case, digits and '-', starting with a letter or digit, at most 31 characters.
STUDENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
HEADER_FIRST_CELLS = ("student_id", "student id", "id", "student")
COLUMNS = ("id", "name", "email", "ssh_public_key")

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


def _is_header(row):
    # A student whose id happens to be "student" or "id" is still a student: a header has no email address.
    return (bool(row) and row[0].strip().lower() in HEADER_FIRST_CELLS
            and not (len(row) > 2 and "@" in row[2]))


def roster(text):
    """Parse and check a roster CSV; return [{'id', 'name', 'email', 'ssh_public_key', 'line'}, ...]."""
    if text is None:
        raise AnsibleFilterError("roster: no roster text was given (is the roster file empty or missing?)")
    text = to_text(text)
    problems = []
    students = []
    first_line = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header_seen = False
    for row in reader:
        line = reader.line_num
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not header_seen and not students and _is_header(cells):
            header_seen = True
            continue
        header_seen = True
        if len(cells) not in (3, 4):
            problems.append("line %d: expected 3 or 4 columns (student id, name, email, optional SSH public key), "
                            "found %d" % (line, len(cells)))
            continue
        student_id, name, email = cells[0], cells[1], cells[2]
        key = cells[3] if len(cells) == 4 else ""
        if not STUDENT_ID_RE.match(student_id):
            problems.append("line %d: student id %r is not safe in a resource name (use 1-31 lower-case letters, "
                            "digits and '-', starting with a letter or digit)" % (line, student_id))
        elif student_id in first_line:
            problems.append("line %d: student id %r is a duplicate of line %d"
                            % (line, student_id, first_line[student_id]))
        else:
            first_line[student_id] = line
        if not name:
            problems.append("line %d: student %r has no name" % (line, student_id))
        if not EMAIL_RE.match(email):
            problems.append("line %d: %r is not an email address" % (line, email))
        if key:
            problem = ssh_public_key_problem(key)
            if problem:
                problems.append("line %d: the SSH public key of %r %s" % (line, student_id, problem))
            else:
                key = " ".join(key.split())
        students.append(dict(id=student_id, name=name, email=email, ssh_public_key=key, line=line))
    if problems:
        raise AnsibleFilterError("The roster has %d problem%s; nothing was created:\n  %s"
                                 % (len(problems), "" if len(problems) == 1 else "s", "\n  ".join(problems)))
    if not students:
        raise AnsibleFilterError("The roster lists no students (only blank lines, comments or a header)")
    return students


def _network(value, what):
    try:
        return ipaddress.ip_network(to_text(value).strip(), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError("%s %r is not a valid CIDR: %s (a network address with a prefix length, "
                                 "like 192.168.50.0/24)" % (what, value, exc))


def cohort_cidrs(students, cidr, prefix=None, avoid=None):
    """Map each student id to the CIDR of its private subnet, checked for validity and overlaps.

    ``students``: a list of ids or of roster dicts. ``prefix`` None/0: every student gets ``cidr`` (each on its
    own network). Otherwise consecutive /``prefix`` blocks of ``cidr``, in roster order. ``avoid``: CIDRs
    the private subnets must not overlap (the external network's subnets, campus ranges).
    """
    ids = [s["id"] if isinstance(s, dict) else to_text(s) for s in (students or [])]
    pool = _network(cidr, "The private network CIDR")
    if pool.version != 4:
        raise AnsibleFilterError("The private network CIDR %s is IPv6; the course network needs IPv4 (floating "
                                 "IPs are IPv4)" % pool)
    avoided = [(_network(a, "The CIDR to avoid"), a) for a in (avoid or []) if a]
    if prefix:
        prefix = int(prefix)
        if prefix < pool.prefixlen or prefix > 29:
            raise AnsibleFilterError("The per-student prefix /%d must be between /%d (the pool %s) and /29"
                                     % (prefix, pool.prefixlen, pool))
        blocks = pool.subnets(new_prefix=prefix)
        plan = {}
        for student_id in ids:
            try:
                plan[student_id] = next(blocks)
            except StopIteration:
                raise AnsibleFilterError("The pool %s holds only %d /%d subnets, but the roster has %d students; "
                                         "use a larger pool or a longer prefix"
                                         % (pool, 2 ** (prefix - pool.prefixlen), prefix, len(ids)))
    else:
        if pool.prefixlen > 29:
            raise AnsibleFilterError("The private network CIDR %s is too small for a server and a router "
                                     "(/29 at most)" % pool)
        plan = dict((student_id, pool) for student_id in ids)
    problems = []
    for net, original in avoided:
        if net.version == 4 and net.overlaps(pool):
            problems.append("%s overlaps %s" % (pool, original))
    if problems:
        raise AnsibleFilterError("The private subnets overlap networks they must not (the external network's "
                                 "subnets, or cohort_avoid_cidrs): %s. The router could not reach them; pick "
                                 "another CIDR." % "; ".join(problems))
    return dict((k, str(v)) for k, v in plan.items())


class FilterModule:
    """Roster and subnet filters."""

    def filters(self):
        return {
            "roster": roster,
            "cohort_cidrs": cohort_cidrs,
        }
