"""The one naming scheme: every name of a course, and which student a name belongs to."""

import pytest

from ansible_collections.coursevm.openstack.plugins.module_utils import names


def test_shared_student_uses_the_course_network_and_has_its_own_server_keypair_and_port():
    assert names.resource_names("tm351", "ab12") == {
        "network": "tm351-net", "subnet": "tm351-subnet", "router": "tm351-router", "security_group": "tm351-sg",
        "server": "tm351-ab12", "keypair": "tm351-ab12", "port": "tm351-ab12", "boot_volume": "tm351-ab12-boot",
        "data_volume": "tm351-ab12-data"}


def test_isolated_student_has_a_network_of_its_own():
    got = names.resource_names("tm351", "ab12", "isolated")
    assert got["network"] == "tm351-ab12-net" and got["security_group"] == "tm351-ab12-sg"
    assert got["router"] == "tm351-ab12-router" and got["server"] == "tm351-ab12"


def test_the_course_alone_has_only_network_names():
    assert names.resource_names("tm351") == names.network_names("tm351")
    assert set(names.resource_names("tm351")) == {"network", "subnet", "router", "security_group"}


@pytest.mark.parametrize("course, student, topology", [
    ("TM351", "ab12", "shared"), ("tm-351", "ab12", "shared"), ("", "ab12", "shared"), ("a" * 21, "x", "shared"),
    ("tm351", "AB12", "shared"), ("tm351", "ab_12", "shared"), ("tm351", "ab12\n", "shared"),
    ("tm351\n", "ab12", "shared"), ("tm351", "-ab", "shared"), ("tm351", "a" * 32, "shared"),
    ("tm351", "ab12", "mesh"), (None, "ab12", "shared"),
])
def test_unsafe_ids_and_unknown_topologies_are_refused(course, student, topology):
    with pytest.raises(names.BadName):
        names.resource_names(course, student, topology)


@pytest.mark.parametrize("name, kind, owner", [
    ("tm351-net", "network", ("course", None)),
    ("tm351-sg", "security_group", ("course", None)),
    ("tm351-ab12-net", "network", ("student", "ab12")),
    ("tm351-ab-12-router", "router", ("student", "ab-12")),
    ("tm351-ab12", "server", ("student", "ab12")),
    ("tm351-net", "server", ("student", "net")),   # a student may be called "net": servers are another kind
    ("tm351-ab12", "port", ("student", "ab12")),
    ("tm351-ab12-boot", "boot_volume", ("student", "ab12")),
    ("tm351-ab-boot-boot", "boot_volume", ("student", "ab-boot")),
    ("tm351-ab12", "boot_volume", None),            # a volume Nova made unnamed, or someone else's
    ("tm351-boot", "boot_volume", None),
    ("tm351-ab12-data", "boot_volume", None),
    ("tm351-ab12-data", "data_volume", ("student", "ab12")),
    ("tm351-ab12-boot", "data_volume", None),
    ("tm3510-ab12", "server", None),               # another course that starts alike
    ("tm351_x-ab12", "server", None),
    ("tm351-AB12", "server", None),
    ("tm351-ab12-net", "subnet", None),
    ("tm351-", "server", None),
    ("", "port", None),
    (None, "port", None),
])
def test_classify_tells_whose_a_resource_is(name, kind, owner):
    assert names.classify("tm351", name, kind) == owner


def test_every_made_name_classifies_back_to_its_owner():
    for topology in names.TOPOLOGIES:
        made = names.resource_names("c1", "s-9", topology)
        for kind, name in made.items():
            expected = ("course", None) if topology == "shared" and kind in names.NETWORK_KINDS else ("student", "s-9")
            assert kind in names.NETWORK_KINDS + ("server", "keypair", "port") + tuple(names.VOLUME_SUFFIXES)
            assert names.classify("c1", name, kind) == expected


def test_cohort_problems_are_every_problem_at_once():
    """The one prologue of the cohort and cohort_health modules: course, concurrency and ids, all reported."""
    problems = names.cohort_problems("TM-351", [{"id": "ab12"}, {"id": "AB_1"}, {"id": "ab12"}, "cd34", {}], 0)
    assert len(problems) == 6, problems
    assert problems[0].startswith("course id 'TM-351'")
    assert problems[1] == "concurrency must be 1 to 100; got 0"
    assert "student id 'AB_1' must be" in problems[2]
    assert problems[3:] == ["student id 'ab12' is given twice", "students[4] must be a dict with an id",
                            "students[5] must be a dict with an id"]
    assert names.cohort_problems("tm351", [{"id": "ab12"}, {"id": "cd34"}], 10) == []
