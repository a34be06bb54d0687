# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja test for the URL prefix Jupyter is served under, so the jupyter, nginx_proxy and server_proxy roles
check it with one rule:

    base_url is coursevm.openstack.url_base_path

True for '/' and for '/seg/.../' where each segment is 1 or more of A-Z a-z 0-9 . _ ~ - and is neither '.' nor
'..'. A dot segment ('/a/../b/', '/./x/') is resolved away by browsers and nginx, so the page would be asked for
at another path than the one Jupyter serves and nginx proxies; an empty segment ('//') is merged by nginx. A
trailing newline never passes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

SEGMENT_RE = re.compile(r"[A-Za-z0-9._~-]+\Z")


def url_base_path(value):
    if not isinstance(value, str) or not value.startswith("/") or not value.endswith("/"):
        return False
    if value == "/":
        return True
    segments = value[1:-1].split("/")
    return all(SEGMENT_RE.match(segment) and segment not in (".", "..") for segment in segments)


class TestModule:
    """The URL path tests."""

    def tests(self):
        return {"url_base_path": url_base_path}
