"""The .deb route: the given files (MongoDB's, or the scenario's probe package) pushed as a local apt repository that
the machine's apt reads, with no MongoDB repository configured."""

import re

from conftest import GIVEN_DEBS, deb_packages

testinfra_hosts = ["cvm-mongo-debs"]


def file_repository(host):
    """The folder of the local repository the role offered to apt."""
    sources = host.check_output("cat /etc/apt/sources.list.d/coursevm-wheelhouse-*.list")
    folders = re.findall(r"^deb \[trusted=yes\] file:(/var/cache/coursevm/wheelhouse/debs-[0-9a-f]+) \./$", sources,
                         re.M)
    assert len(folders) == 1, sources
    return folders[0]


def test_every_given_deb_was_pushed(host):
    folder = file_repository(host)
    pushed = host.check_output("ls %s", folder).split()
    assert sorted(name for name in pushed if name.endswith(".deb")) == sorted(deb_packages())
    assert host.file(folder + "/.complete").exists


def test_apt_offers_the_given_packages_from_the_pushed_repository(host):
    folder = file_repository(host)
    for package in deb_packages().values():
        policy = host.check_output("apt-cache policy %s", package)
        assert "Candidate: (none)" not in policy, policy
        assert "file:" + folder in policy, policy


def test_no_mongodb_repository_is_configured_here(host):
    assert not host.file("/etc/apt/sources.list.d/mongodb-org-8.0.list").exists


def test_the_probe_is_not_installed(host):
    # The probe only proves the route; the role installs MongoDB's packages, never it.
    if not GIVEN_DEBS:
        assert host.run("dpkg-query -W coursevm-mongodb-route-probe").rc != 0
