# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which pip requirement entries name a package, and which of them may install a release below a floor.

The roles install pip lists (jupyter_pip_packages, jupyter_extra_pip_packages, server_proxy_pip_packages); a
security floor such as jupyter-server-proxy >= 4.2.0 holds only if EVERY entry that names the package keeps it,
whatever the spelling (PEP 503: '-', '_', '.' and case are the same) and whatever the form:

    jupyter-server-proxy>=4.2.0               a specifier set (PEP 440), with extras or markers
    jupyter_server_proxy @ https://.../x.whl  a direct reference (PEP 508)
    /srv/wheels/jupyter_server_proxy-4.1.0-py3-none-any.whl, https://.../x.tar.gz, git+https://...#egg=...

An entry keeps the floor when one of its specifiers alone excludes every release below it (>=V, >V, ~=V,
==V, ===V or ==V.* with V at or above the floor); a file's version is read from its wheel or sdist name. An
entry whose version cannot be known (no specifier, a VCS URL) may install anything, so it does not keep it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import posixpath
import re

from ansible.errors import AnsibleFilterError

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version
    HAS_PACKAGING = True
except ImportError:  # pragma: no cover - packaging comes with ansible-core
    HAS_PACKAGING = False

# Operators whose version is a lower bound of everything the specifier allows.
FLOOR_OPERATORS = (">=", ">", "~=", "==", "===")


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_version(location, name):
    """The version in the wheel or sdist file name at the end of a URL or path; None when it is not a file
    of `name` or has no version there."""
    path = re.split(r"[?#]", location, maxsplit=1)[0]
    base = posixpath.basename(path.rstrip("/"))
    for parse in (parse_wheel_filename, parse_sdist_filename):
        try:
            parsed = parse(base)
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
        return parsed[1] if _canonical(str(parsed[0])) == name else None
    return None


def _keeps_floor(specifier, floor):
    if specifier.operator not in FLOOR_OPERATORS:
        return False
    version = specifier.version
    if specifier.operator == "==" and version.endswith(".*"):
        version = version[:-2]
    try:
        return Version(version) >= floor
    except InvalidVersion:
        return False


def _classify(entry, name, floor):
    """None when `entry` does not name package `name`; else whether it keeps the floor (always True when
    `floor` is None)."""
    try:
        requirement = Requirement(entry)
    except InvalidRequirement:
        requirement = None
    if requirement is not None:
        if _canonical(requirement.name) != name:
            return None
        if floor is None:
            return True
        if requirement.url:
            version = _file_version(requirement.url, name)
            return version is not None and version >= floor
        return any(_keeps_floor(specifier, floor) for specifier in requirement.specifier)
    # Not a requirement: a URL, a path or a pip option (-e ...). A file name tells its package and version.
    location = entry.split()[-1] if entry.split() else entry
    version = _file_version(location, name)
    if version is not None:
        return True if floor is None else version >= floor
    # Any other mention of the name (git+https://.../jupyter-server-proxy@v4.2.0, #egg=...): no version to check.
    if re.search(r"(?<![a-z0-9])%s(?![a-z0-9])" % re.escape(name), _canonical(entry)):
        return True if floor is None else False
    return None


def _check(entries, name):
    if not HAS_PACKAGING:
        raise AnsibleFilterError("the Python package 'packaging' is needed on the controller")
    if not isinstance(entries, (list, tuple)) or not all(isinstance(entry, str) for entry in entries):
        raise AnsibleFilterError("expected a list of pip requirement strings, got %r" % (entries,))
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("expected a package name, got %r" % (name,))
    return _canonical(name)


def requirements_naming(entries, name):
    """The entries that name package `name` (any spelling, any form)."""
    canonical = _check(entries, name)
    return [entry for entry in entries if _classify(entry, canonical, None) is not None]


def requirements_allowing_below(entries, name, floor):
    """The entries that name package `name` and may install a release below version `floor`."""
    canonical = _check(entries, name)
    try:
        floor_version = Version(str(floor))
    except InvalidVersion:
        raise AnsibleFilterError("expected a version as the floor, got %r" % (floor,))
    return [entry for entry in entries if _classify(entry, canonical, floor_version) is False]


class FilterModule:
    """pip requirement filters."""

    def filters(self):
        return {"requirements_naming": requirements_naming, "requirements_allowing_below": requirements_allowing_below}
