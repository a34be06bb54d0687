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

import csv
import io
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.coursevm.openstack.plugins.module_utils.names import STUDENT_ID_RE
from ansible_collections.coursevm.openstack.plugins.module_utils.ssh_keys import ssh_public_key_problem

# Student ids become part of resource names (plugins/module_utils/names.py), server host names and keypair
# names: lower-case, digits and '-', starting with a letter or digit, at most 31 characters.
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
HEADER_FIRST_CELLS = ("student_id", "student id", "id", "student")
COLUMNS = ("id", "name", "email", "ssh_public_key")


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
