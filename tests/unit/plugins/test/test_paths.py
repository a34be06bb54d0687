"""The one base-URL rule of the jupyter, nginx_proxy and server_proxy roles (test url_base_path)."""

import pytest

from ansible_collections.coursevm.openstack.plugins.test.paths import url_base_path

GOOD = ["/", "/jupyter/", "/a/b/", "/tm351-2026/", "/a.b/c~d/e_f/", "/.well/", "/.../", "/v1.2/"]
# Dot segments: a browser and nginx resolve them, so '/a/../b/' is served at '/b/', not where Jupyter serves.
BAD = ["/../", "/./", "/a/../b/", "/./x/", "/a/./", "/a/..", "/..", "//", "/a//b/", "", "a/", "/a", "/a b/",
       "/a?b/", "/a#/", "/a%2e/", "/jupyter/\n", None, 1, ["/"]]


@pytest.mark.parametrize("value", GOOD)
def test_good_base_paths(value):
    assert url_base_path(value)


@pytest.mark.parametrize("value", BAD)
def test_bad_base_paths(value):
    assert not url_base_path(value)
