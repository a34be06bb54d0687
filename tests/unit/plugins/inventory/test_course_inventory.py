"""The course inventory's host records from plain cloud listings: who is ready, who is named apart and why."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.coursevm.openstack.plugins.inventory.course import course_hosts

ROOT = Path(__file__).resolve().parents[4]


def server(sid, student, course="tm351", status="ACTIVE"):
    return dict(id=sid, name="%s-%s" % (course, student), status=status, image_id="img",
                metadata=dict(coursevm_course=course, coursevm_student=student))


def port(pid, name, device_id, ip="192.168.50.10"):
    return dict(id=pid, name=name, device_id=device_id, fixed_ips=[ip])


def test_an_active_server_with_a_floating_ip_is_ready():
    hosts = course_hosts("tm351", [server("s1", "ab12")], [port("p1", "tm351-ab12", "s1")],
                         [dict(floating_ip_address="172.24.4.7", port_id="p1")])
    assert list(hosts) == ["tm351-ab12"]
    record = hosts["tm351-ab12"]
    assert (record["student"], record["floating_ip"], record["fixed_ip"], record["problem"]) == \
        ("ab12", "172.24.4.7", "192.168.50.10", None)


def test_the_students_data_volume_attached_to_their_server_is_a_host_variable():
    volumes = [dict(id="v1", name="tm351-ab12-data", size=5, attachments=[dict(server_id="s1", device="/dev/vdb")]),
               # Another student's, one attached elsewhere, and one that is not a data volume: not ab12's.
               dict(id="v2", name="tm351-cd34-data", size=5, attachments=[dict(server_id="s1", device="/dev/vdc")]),
               dict(id="v3", name="tm351-ab12-data", size=5, attachments=[dict(server_id="s9", device="/dev/vdb")]),
               dict(id="v4", name="tm351-ab12-boot", size=5, attachments=[dict(server_id="s1", device="/dev/vda")])]
    hosts = course_hosts("tm351", [server("s1", "ab12"), server("s2", "cd34")], [port("p1", "tm351-ab12", "s1")],
                         [dict(floating_ip_address="172.24.4.7", port_id="p1")], volumes)
    assert hosts["tm351-ab12"]["data_volume"] == dict(id="v1", name="tm351-ab12-data", size=5, device="/dev/vdb")
    assert hosts["tm351-cd34"]["data_volume"] is None


def test_not_active_or_no_floating_ip_is_named_with_a_problem():
    hosts = course_hosts("tm351", [server("s1", "ab12", status="ERROR"), server("s2", "cd34")],
                         [port("p1", "tm351-ab12", "s1"), port("p2", "tm351-cd34", "s2")],
                         [dict(floating_ip_address="172.24.4.7", port_id="p1")])
    assert hosts["tm351-ab12"]["status"] == "ERROR" and hosts["tm351-ab12"]["problem"]
    assert hosts["tm351-cd34"]["floating_ip"] is None and hosts["tm351-cd34"]["problem"]


def test_a_port_left_without_its_server_is_a_missing_student():
    hosts = course_hosts("tm351", [], [port("p1", "tm351-ab12", "")],
                         [dict(floating_ip_address="172.24.4.7", port_id="p1")])
    assert hosts["tm351-ab12"]["status"] == "MISSING"
    assert hosts["tm351-ab12"]["floating_ip"] == "172.24.4.7" and hosts["tm351-ab12"]["problem"]


def test_other_courses_unlabelled_servers_and_network_ports_are_left_out():
    servers = [server("s1", "ab12", course="other"), dict(id="s2", name="tm351-x", status="ACTIVE", metadata={}),
               server("s3", "Bad Id")]
    ports = [port("p1", "other-ab12", "s1"), port("p2", "tm351-x", "s2"),
             dict(port("p9", "tm351-gw", "router-id"), device_owner="network:router_interface")]
    assert course_hosts("tm351", servers, ports, []) == {}


def run_inventory(tmp_path, config_text):
    config = tmp_path / "course.coursevm.yml"
    config.write_text(config_text)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(p for p in sys.path if p.endswith("collections"))
               + os.pathsep + os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""),
               OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"), ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    (tmp_path / "clouds.yaml").write_text("clouds:\n  one:\n    auth:\n      auth_url: http://127.0.0.1:9/\n")
    return subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(config), "--list"],
                          capture_output=True, text=True, env=env, check=False, timeout=120)


@pytest.mark.parametrize("config, bad", [
    ("plugin: coursevm.openstack.course\ncloud: one\ncourse: Bad-Course\n", "course"),
    ("plugin: coursevm.openstack.course\ncloud: nowhere\ncourse: tm351\n", "nowhere"),
])
def test_bad_settings_fail_the_inventory_naming_the_setting(tmp_path, config, bad):
    run = run_inventory(tmp_path, config)
    assert run.returncode != 0
    assert bad in run.stderr


def test_an_unreachable_cloud_fails_the_inventory_and_lists_no_host(tmp_path):
    run = run_inventory(tmp_path, "plugin: coursevm.openstack.course\ncloud: one\ncourse: tm351\n")
    assert run.returncode != 0, run.stdout
    assert "one" in run.stderr
    assert "tm351-" not in run.stdout
