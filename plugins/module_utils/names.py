# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every OpenStack resource name of a course, derived in one place.

Provisioning (the cohort module, the cloud_network and course_server roles), teardown, the course-resources
listing and the HOT templates all read these names, so a course's resources are found by the names they were
made with. Pure functions, no SDK.

Topologies:

- ``shared`` (the default): one network, subnet, router and security group per course —
  ``<course>-net``, ``<course>-subnet``, ``<course>-router``, ``<course>-sg``;
- ``isolated``: the same four per student — ``<course>-<student>-net``, ...

In both, a student's server and keypair are ``<course>-<student>``; a server booted from a volume has its boot
volume ``<course>-<student>-boot``. A course id never holds ``-``, so the
prefix ``<course>-`` alone tells a course's resources apart from any other course's.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

TOPOLOGIES = ("shared", "isolated")
NETWORK_KINDS = ("network", "subnet", "router", "security_group")
SUFFIXES = {"network": "net", "subnet": "subnet", "router": "router", "security_group": "sg"}
# Cinder volumes: their own name space, so a student id ending in "-boot" cannot be mistaken for one.
VOLUME_SUFFIXES = {"boot_volume": "boot", "data_volume": "data"}

COURSE_ID_PATTERN = r"[a-z0-9][a-z0-9_]{0,19}"
STUDENT_ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,30}"
# \Z, not $: "$" also matches before a trailing newline, which must not pass.
COURSE_ID_RE = re.compile(r"^%s\Z" % COURSE_ID_PATTERN)
STUDENT_ID_RE = re.compile(r"^%s\Z" % STUDENT_ID_PATTERN)

COURSE_ID_RULE = ("1-20 characters of a-z, 0-9 and '_', starting with a letter or digit ('-' is not allowed: it "
                  "separates course, student and kind in resource names)")
STUDENT_ID_RULE = "1-31 characters of a-z, 0-9 and '-', starting with a letter or digit"


class BadName(ValueError):
    """A course or student id that cannot be part of a resource name."""


def check_course(course):
    if not isinstance(course, str) or not COURSE_ID_RE.match(course):
        raise BadName("course id %r must be %s" % (course, COURSE_ID_RULE))
    return course


def check_student(student):
    if not isinstance(student, str) or not STUDENT_ID_RE.match(student):
        raise BadName("student id %r must be %s" % (student, STUDENT_ID_RULE))
    return student


def student_problems(students):
    """Every problem with a students list's ids at once (pure): a list of sentences, empty when all is well.
    Each student is a dict with an ``id``; an id must be valid and given once."""
    problems = []
    seen = set()
    for index, student in enumerate(students or [], 1):
        if not isinstance(student, dict) or not isinstance(student.get("id"), str):
            problems.append("students[%d] must be a dict with an id" % index)
            continue
        try:
            check_student(student["id"])
        except BadName as exc:
            problems.append(str(exc))
            continue
        if student["id"] in seen:
            problems.append("student id %r is given twice" % student["id"])
        seen.add(student["id"])
    return problems


def cohort_problems(course, students, concurrency):
    """The checks every cohort-wide module makes before it asks the cloud anything (pure): the course id, the
    students' ids, and a concurrency of 1 to 100 threads. A list of sentences, empty when all is well."""
    problems = []
    try:
        check_course(course)
    except BadName as exc:
        problems.append(str(exc))
    if not 1 <= concurrency <= 100:
        problems.append("concurrency must be 1 to 100; got %d" % concurrency)
    return problems + student_problems(students)


def check_topology(topology):
    if topology not in TOPOLOGIES:
        raise BadName("topology %r must be one of %s" % (topology, ", ".join(TOPOLOGIES)))
    return topology


def server_name(course, student):
    """The student's server and keypair: <course>-<student>."""
    return "%s-%s" % (check_course(course), check_student(student))


def network_names(course, student=None):
    """The network, subnet, router and security group of a course (student None) or of one student."""
    owner = check_course(course) if student is None else server_name(course, student)
    return dict((kind, "%s-%s" % (owner, SUFFIXES[kind])) for kind in NETWORK_KINDS)


def resource_names(course, student=None, topology="shared"):
    """All names a student (or, with student None, the course itself) uses in ``topology``.

    With a student: server, keypair and the network kinds the student's server uses (the course's in
    ``shared``, the student's own in ``isolated``). Without: the course's network kinds.
    """
    check_topology(topology)
    if student is None:
        return network_names(course)
    names = network_names(course, student if topology == "isolated" else None)
    # The server, its keypair and its port (made before the server, so Nova keeps it) share one name.
    names["server"] = names["keypair"] = names["port"] = server_name(course, student)
    for kind, suffix in VOLUME_SUFFIXES.items():
        names[kind] = "%s-%s" % (names["server"], suffix)
    return names


def classify(course, name, kind):
    """Which student (or the course) a resource of ``kind`` named ``name`` belongs to.

    Returns ``("course", None)`` for the shared course network's resources, ``("student", <id>)`` for a
    student's server/keypair or isolated network resource, and None for anything else (other courses,
    foreign names). ``kind`` is "server", "keypair", "port", one of VOLUME_SUFFIXES or one of NETWORK_KINDS.
    """
    prefix = check_course(course) + "-"
    if not isinstance(name, str) or not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if kind in ("server", "keypair", "port"):
        return ("student", rest) if STUDENT_ID_RE.match(rest) else None
    if kind in VOLUME_SUFFIXES:
        suffix = "-" + VOLUME_SUFFIXES[kind]
        student = rest[:-len(suffix)] if rest.endswith(suffix) else None
        return ("student", student) if student and STUDENT_ID_RE.match(student) else None
    if kind not in SUFFIXES:
        raise BadName("unknown resource kind %r" % kind)
    suffix = SUFFIXES[kind]
    if rest == suffix:
        return ("course", None)
    if rest.endswith("-" + suffix):
        student = rest[:-len(suffix) - 1]
        if STUDENT_ID_RE.match(student):
            return ("student", student)
    return None
