"""The naming filters the playbooks read: names, a course's resources out of a listing, its students."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter import course_user_data as user_data_filter
from ansible_collections.coursevm.openstack.plugins.filter import resource_names as f

LISTING = {
    "servers": [{"name": "tm351-ab12"}, {"name": "tm351-cd34"}, {"name": "tm3510-ab12"}, {"name": "other"}],
    "keypairs": [{"name": "tm351-ef56"}],  # a half-made student: only the keypair is left
    "ports": [{"name": ""}, {"name": "tm351-ab12"}, {"name": "tm351-gh78"}],
    "networks": [{"name": "tm351-net"}, {"name": "tm351-ij90-net"}, {"name": "public"}],
    "subnets": [{"name": "tm351-subnet"}], "routers": [{"name": "tm351-router"}],
    "security_groups": [{"name": "default"}, {"name": "tm351-sg"}],
    "floating_ips": [{"name": None}],
}


def test_names_of_the_course_and_of_a_student():
    assert f.resource_names("tm351")["router"] == "tm351-router"
    assert f.resource_names("tm351", "ab12", "isolated")["network"] == "tm351-ab12-net"
    assert f.resource_names("tm351", "")["network"] == "tm351-net"  # an empty student is the course


@pytest.mark.parametrize("args", [("tm-351",), ("tm351", "Ab12"), ("tm351", "ab12", "ring")])
def test_unsafe_names_fail_as_filter_errors(args):
    with pytest.raises(AnsibleFilterError):
        f.resource_names(*args)


def test_course_resources_keeps_the_course_and_leaves_other_courses_out():
    assert [r["name"] for r in f.course_resources(LISTING["servers"], "tm351", "server")] == ["tm351-ab12",
                                                                                              "tm351-cd34"]
    assert [r["name"] for r in f.course_resources(LISTING["networks"], "tm351", "network")] == [
        "tm351-net", "tm351-ij90-net"]


def test_one_students_resources_never_include_the_shared_network():
    assert f.course_resources(LISTING["networks"], "tm351", "network", "ij90") == [{"name": "tm351-ij90-net"}]
    assert f.course_resources(LISTING["networks"], "tm351", "network", "ab12") == []
    assert f.course_resources(LISTING["ports"], "tm351", "port", "ab12") == [{"name": "tm351-ab12"}]


def test_course_students_are_found_through_any_of_their_resources():
    assert f.course_students(LISTING, "tm351") == ["ab12", "cd34", "ef56", "gh78", "ij90"]


def test_user_data_filter_puts_the_given_keys_in_order():
    text = user_data_filter.course_user_data([" k1 ", "", "k2", "k1"], "tm351", "ab12")
    assert text.startswith("#cloud-config\n") and text.index('"k1"') < text.index('"k2"')
    assert text.count('"k1"') == 1


def test_a_student_of_whom_only_a_kept_boot_volume_is_left_is_found():
    listing = dict(LISTING, boot_volumes=[{"name": "tm351-zz99-boot"}, {"name": "tm351-zz98"}, {"name": None}])
    assert "zz99" in f.course_students(listing, "tm351") and "zz98" not in f.course_students(listing, "tm351")
    assert f.course_resources(listing["boot_volumes"], "tm351", "boot_volume", "zz99") == [
        {"name": "tm351-zz99-boot"}]
