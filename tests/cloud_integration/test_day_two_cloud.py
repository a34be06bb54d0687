"""Day two against the local cloud: the course inventory plugin and cohort_health.

cohort_health: one student's server, made with openstacksdk as the cohort module
leaves it (metadata coursevm_course/coursevm_student, a floating IP through a router), and one student given
with a password but without a server.

The image cirros-like boots no machine, so the server is ACTIVE with a floating IP but nothing answers on
port 22: the student fails at step ssh. Every resource is named `t17h-...` (course id t17h) and removed before
and after the module.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import cohort_support
from ansible_json import inventory_json
from cloud_support import CLOUD

COURSE = "t17h"
PREFIX = COURSE + "-"
STUDENT = "s1"
GHOST = "ghost"
# Distinctive, so that finding it anywhere means it leaked (and Ansible's no_log masking cannot hide a
# shorter common string).
PASSWORDS = {STUDENT: "t17h-jupyter-pw-Qx7vLm2", GHOST: "t17h-jupyter-pw-Zr4kNp8"}
STEP_TIMEOUT = 3


@pytest.fixture(scope="module")
def student_server(conn):
    """t17h-s1: ACTIVE on the course network, with a floating IP (the course's router reaches public)."""
    cohort_support.remove_course(conn, PREFIX)
    public = conn.network.find_network("public")
    network = conn.network.create_network(name=PREFIX + "net")
    subnet = conn.network.create_subnet(name=PREFIX + "subnet", network_id=network.id, ip_version=4,
                                        cidr="192.168.217.0/24")
    router = conn.network.create_router(name=PREFIX + "router", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    server = conn.compute.create_server(
        name=PREFIX + STUDENT, image_id=conn.image.find_image("cirros-like").id,
        flavor_id=conn.compute.find_flavor("m1.tiny").id, networks=[{"uuid": network.id}],
        metadata={"coursevm_course": COURSE, "coursevm_student": STUDENT})
    server = conn.compute.wait_for_server(server, wait=120)
    port = list(conn.network.ports(device_id=server.id))[0]
    floating_ip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    yield server, floating_ip.floating_ip_address
    cohort_support.remove_course(conn, PREFIX)
    assert not cohort_support.left_over(conn, PREFIX)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health")
    return {"report_json": str(folder / "health.json"), "report_csv": str(folder / "health.csv")}


def health_args(reports):
    return dict(reports, cloud=CLOUD, course=COURSE, timeout=STEP_TIMEOUT,
                students=[{"id": sid, "password": password} for sid, password in PASSWORDS.items()])


@pytest.fixture(scope="module")
def health(ansible, student_server, reports):
    return ansible("cohort_health", health_args(reports))


def by_id(result):
    return dict((s["id"], s) for s in result["students"])


def test_a_server_without_a_machine_fails_at_ssh(health, student_server):
    server, address = student_server
    assert not health.get("failed"), health.get("msg")
    assert health["changed"] is False
    student = by_id(health)[STUDENT]
    assert student["server"] == server.name and student["status"] == "ACTIVE"
    assert student["floating_ip"] == address and student["url"] == "http://%s/" % address
    assert student["healthy"] is False and student["failed_step"] == "ssh"
    assert [(s["name"], s["ok"]) for s in student["steps"]] == [
        ("server", True), ("floating_ip", True), ("ssh", False), ("web", None), ("kernel", None)]


def test_a_given_student_without_a_server_fails_at_server(health):
    ghost = by_id(health)[GHOST]
    assert ghost["failed_step"] == "server" and ghost["server"] is None and ghost["floating_ip"] is None
    assert [s["ok"] for s in ghost["steps"]] == [False, None, None, None, None]


def test_the_summary_and_the_table_cover_every_student(health):
    assert [s["id"] for s in health["students"]] == sorted(PASSWORDS)
    assert health["healthy"] == 0 and health["unhealthy"] == sorted(PASSWORDS)
    assert len(health["table"]) == 1 + len(PASSWORDS)


def test_the_reports_are_private_and_hold_no_password(health, reports):
    for path in reports.values():
        with open(path) as handle:
            text = handle.read()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not any(password in text for password in PASSWORDS.values())
    with open(reports["report_json"]) as handle:
        report = json.load(handle)
    assert report["course"] == COURSE and report["unhealthy"] == sorted(PASSWORDS)
    with open(reports["report_csv"]) as handle:
        assert len(handle.read().splitlines()) == 1 + len(PASSWORDS)
    assert not any(password in json.dumps(health) for password in PASSWORDS.values())


def test_check_mode_writes_no_report(ansible, student_server, tmp_path):
    args = health_args({"report_json": str(tmp_path / "health.json"), "report_csv": str(tmp_path / "health.csv")})
    result = ansible("cohort_health", dict(args, timeout=1), check=True)
    assert by_id(result)[STUDENT]["failed_step"] == "ssh"
    assert list(tmp_path.iterdir()) == []


# The course inventory plugin, on the same course: t17h-s1 is ready; a server without a floating IP and a port
# left without its server are named apart, never dropped.
def inventory(env, tmp_path):
    config = tmp_path / "course.coursevm.yml"
    config.write_text("plugin: coursevm.openstack.course\ncloud: %s\ncourse: %s\nvm_user: debian\n"
                      "private_key_file: /nonexistent/key\nknown_hosts_file: %s\n" % (CLOUD, COURSE, tmp_path / "known hosts"))
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(config), "--list"],
                         capture_output=True, text=True, env=dict(env, ANSIBLE_INVENTORY_UNPARSED_FAILED="true"),
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return inventory_json(run.stdout), run.stderr


def test_the_inventory_lists_the_ready_student_at_its_floating_ip(env, tmp_path, student_server):
    listing, unused = inventory(env, tmp_path)
    host = PREFIX + STUDENT
    assert listing["course_vms"]["hosts"] == [host]
    assert host in listing["course_" + COURSE]["hosts"]
    hostvars = listing["_meta"]["hostvars"][host]
    assert (hostvars["ansible_host"], hostvars["ansible_user"], hostvars["credentials_student"],
            hostvars["credentials_course"], hostvars["coursevm_server_status"]) == \
        (student_server[1], "debian", STUDENT, COURSE, "ACTIVE")
    assert hostvars["ansible_ssh_private_key_file"] == "/nonexistent/key"
    # The VM's host key is checked against the course's known_hosts (recorded at first contact).
    assert hostvars["ansible_host_key_checking"] is True
    assert "StrictHostKeyChecking=accept-new" in hostvars["ansible_ssh_args"]
    assert "UserKnownHostsFile='%s'" % (tmp_path / "known hosts") in hostvars["ansible_ssh_args"]


def test_the_inventory_names_the_students_that_are_not_ready(conn, env, tmp_path, student_server):
    network = conn.network.find_network(PREFIX + "net", ignore_missing=False)
    left_port = conn.network.create_port(name=PREFIX + "gone", network_id=network.id)
    server = conn.compute.create_server(
        name=PREFIX + "nofip", image_id=conn.image.find_image("cirros-like").id,
        flavor_id=conn.compute.find_flavor("m1.tiny").id, networks=[{"uuid": network.id}],
        metadata={"coursevm_course": COURSE, "coursevm_student": "nofip"})
    try:
        conn.compute.wait_for_server(server, wait=120)
        listing, warnings = inventory(env, tmp_path)
        assert sorted(listing["coursevm_not_ready"]["hosts"]) == [PREFIX + "gone", PREFIX + "nofip"]
        assert listing["course_vms"]["hosts"] == [PREFIX + STUDENT]
        hostvars = listing["_meta"]["hostvars"]
        assert hostvars[PREFIX + "gone"]["coursevm_server_status"] == "MISSING"
        assert hostvars[PREFIX + "nofip"]["coursevm_floating_ip"] is None
        assert "ansible_host" not in hostvars[PREFIX + "nofip"]
        assert PREFIX + "gone" in warnings and PREFIX + "nofip" in warnings
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
        conn.network.delete_port(left_port)


def test_the_inventory_cache_answers_without_the_cloud(env, tmp_path, student_server):
    cache = tmp_path / "cache"
    config = tmp_path / "course.coursevm.yml"
    config.write_text("plugin: coursevm.openstack.course\ncloud: %s\ncourse: %s\ncache: true\n"
                      "cache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\ncache_timeout: 600\n"
                      % (CLOUD, COURSE, cache))
    tool = str(Path(sys.executable).with_name("ansible-inventory"))
    first = subprocess.run([tool, "-i", str(config), "--list"], capture_output=True, text=True, env=env,
                           timeout=120, check=False)
    assert first.returncode == 0 and any(cache.iterdir()), first.stderr[-2000:]
    # A clouds.yaml that reaches nothing: the listing comes from the cache, unchanged.
    dead = tmp_path / "clouds.yaml"
    dead.write_text("clouds:\n  %s:\n    auth:\n      auth_url: http://127.0.0.1:9/\n" % CLOUD)
    second = subprocess.run([tool, "-i", str(config), "--list"], capture_output=True, text=True,
                            env=dict(env, OS_CLIENT_CONFIG_FILE=str(dead), ANSIBLE_INVENTORY_UNPARSED_FAILED="true"),
                            timeout=120, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert inventory_json(second.stdout) == inventory_json(first.stdout)
