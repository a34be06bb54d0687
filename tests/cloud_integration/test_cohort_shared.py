"""A cohort in the shared topology (the default) on the local cloud, checked through openstacksdk.

Twelve students are provisioned by provision.yml under OpenStack's default router and security-group quotas
(the local cloud's test project keeps them): one network, subnet, router and security group for the course,
a keypair, port, server and floating IP per student. Then: a re-run changes nothing; check mode plans per
student; the other topology is refused; one student whose server cannot be scheduled does not stop the
others and is cleaned up, and a re-run completes the cohort; teardown of one student, then of the course,
leaves nothing. Every resource is named `t11-...`.

The test that kills Neutron in the middle of a run is marked `disruptive`: tests/run.sh runs it alone, after
the tests that share the cloud with it have finished.
"""

import json
import subprocess
import sys
import time

import pytest

import cohort_support
from cloud_support import ROOT
from conftest import CLOUD

COURSE = "t11"
PREFIX = COURSE + "-"
STUDENTS = tuple("s%02d" % i for i in range(1, 13))
CLOUD_PY = ["/usr/bin/python3", str(ROOT / "tests" / "cloud" / "cloud.py")]
TASK = "Provision every student's keypair, port, server and floating IP"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return cohort_support.make_keys(tmp_path_factory.mktemp("keys"), ("s01", "admin"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("cohort-shared")


@pytest.fixture(scope="module")
def roster(files, keys):
    # s01 brings a key; the others get the course team's key as their keypair.
    rows = ["s01,Ada One,ada@example.edu,%s" % keys["s01"]]
    rows += ["%s,Student %s,%s@example.edu," % (s, s, s) for s in STUDENTS[1:]]
    return cohort_support.write_roster(files, "roster.csv", rows)


@pytest.fixture(scope="module")
def run(env, files, keys):
    return cohort_support.playbook_runner(env, files, COURSE, keys["admin"])


@pytest.fixture(scope="module", autouse=True)
def clean(conn):
    cohort_support.remove_course(conn, PREFIX)
    yield
    cohort_support.remove_course(conn, PREFIX)


def module_args(keys, students, **extra):
    """The cohort module's arguments as provision.yml gives them for this course."""
    args = {"cloud": CLOUD, "course": COURSE, "students": students, "image": "cirros-like",
            "flavor": "m1.course", "admin_public_keys": [keys["admin"]], "timeout": 300}
    args.update(extra)
    return args


@pytest.fixture(scope="module")
def provisioned(run, roster):
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0, errors
    return out


def test_twelve_students_share_one_network_router_and_group_within_default_quotas(provisioned, conn):
    quota = conn.network.get_quota(conn.current_project_id)
    assert quota.routers == 10 and quota.security_groups == 10  # OpenStack's defaults, not raised
    result = cohort_support.task_result(provisioned, TASK)
    assert sorted(result["students"]) == list(STUDENTS) and result["failed_students"] == []
    assert all(r["status"] == "ACTIVE" for r in result["students"].values())

    left = cohort_support.course_resources(conn, PREFIX)
    assert left["networks"] == [PREFIX + "net"] and left["subnets"] == [PREFIX + "subnet"]
    assert left["routers"] == [PREFIX + "router"] and left["security_groups"] == [PREFIX + "sg"]
    assert left["servers"] == [PREFIX + s for s in STUDENTS] == left["keypairs"]

    network = conn.network.find_network(PREFIX + "net")
    group = conn.network.find_security_group(PREFIX + "sg")
    router = conn.network.find_router(PREFIX + "router")
    public = conn.network.find_network("public")
    assert router.external_gateway_info["network_id"] == public.id
    # Only 22 and 80 come in, from anywhere; no rule lets members of the group reach each other.
    ingress = [r for r in group.security_group_rules if r["direction"] == "ingress"]
    assert sorted((r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
                  for r in ingress) == [("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 80, 80, "0.0.0.0/0")]
    assert all(r["remote_group_id"] is None for r in group.security_group_rules)

    fixed, floating = set(), set()
    for student in STUDENTS:
        server = conn.compute.find_server(PREFIX + student)
        [port] = list(conn.network.ports(device_id=server.id))
        assert port.name == PREFIX + student and port.network_id == network.id
        assert port.security_group_ids == [group.id]  # never the project's default group
        [fip] = list(conn.network.ips(port_id=port.id))
        assert fip.floating_ip_address == result["students"][student]["floating_ip"]
        fixed.add(port.fixed_ips[0]["ip_address"])
        floating.add(fip.floating_ip_address)
    assert len(fixed) == len(floating) == 12
    # N + 1 public addresses: a floating IP per student and the course router's gateway.
    gateway = [ip["ip_address"] for ip in router.external_gateway_info["external_fixed_ips"]]
    assert len(floating | set(gateway)) == 13


def test_rerun_changes_nothing(provisioned, run, roster, conn):
    before = cohort_support.course_resources(conn, PREFIX)
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0, errors
    assert cohort_support.changed_total(out) == 0, dict((h, s["changed"]) for h, s in out["stats"].items())
    assert all(r["actions"] == [] for r in cohort_support.task_result(out, TASK)["students"].values())
    assert cohort_support.course_resources(conn, PREFIX) == before


def test_a_rule_added_by_hand_to_the_course_group_is_removed(provisioned, run, roster, conn):
    """Someone opens the group to its own members (students' VMs could then reach each other): the next run
    puts the group back to exactly its rules."""
    group = conn.network.find_security_group(PREFIX + "sg")
    conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ethertype="IPv4",
                                            remote_group_id=group.id)
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0, errors
    assert cohort_support.changed_total(out) == 1
    rules = conn.network.get_security_group(group.id).security_group_rules
    assert all(r["remote_group_id"] is None for r in rules)
    assert sorted(r["port_range_min"] for r in rules if r["direction"] == "ingress") == [22, 80]


def test_check_mode_plans_each_student_and_creates_nothing(provisioned, ansible, keys, conn):
    before = cohort_support.course_resources(conn, PREFIX)
    students = [{"id": s} for s in STUDENTS] + [{"id": "s13"}]
    result = ansible("cohort", module_args(keys, students), check=True, diff=True)
    assert result["changed"] is True and not result.get("failed")
    assert result["students"]["s13"]["actions"] == ["create keypair", "create port", "create floating ip",
                                                    "create server"]
    assert result["students"]["s13"]["status"] == "PLANNED"
    assert all(result["students"][s]["actions"] == [] for s in STUDENTS)
    assert result["diff"]["before"]["s13"] == dict.fromkeys(("keypair", "port", "server", "floating_ip"), "absent")
    assert result["diff"]["after"]["s13"] == dict.fromkeys(("keypair", "port", "server", "floating_ip"), "present")
    assert cohort_support.course_resources(conn, PREFIX) == before


def test_the_other_topology_is_refused_before_anything_changes(provisioned, run, roster, conn):
    before = cohort_support.course_resources(conn, PREFIX)
    status, out, errors = run("provision.yml", cohort_roster=roster, cohort_topology="isolated")
    assert status != 0
    assert any("was provisioned in the shared topology" in message for message in errors), errors
    assert cohort_support.course_resources(conn, PREFIX) == before


def test_a_student_that_cannot_be_scheduled_does_not_stop_the_others(provisioned, ansible, keys, conn):
    """s13 asks for m1.huge, which no hypervisor can hold: s13 is explained and cleaned up, s14 is made; a
    re-run with the cause fixed completes the cohort."""
    students = [{"id": s} for s in STUDENTS] + [{"id": "s13", "flavor": "m1.huge"}, {"id": "s14"}]
    result = ansible("cohort", module_args(keys, students))
    assert result["failed"] is True and result["failed_students"] == ["s13"]
    assert result["students"]["s13"]["error"]["kind"] == "no_host"
    assert "m1.huge" in result["students"]["s13"]["error"]["explanation"]
    assert result["students"]["s14"]["status"] == "ACTIVE" and result["students"]["s14"]["floating_ip"]
    left = cohort_support.course_resources(conn, PREFIX)
    assert PREFIX + "s13" not in left["servers"] + left["keypairs"]
    assert not list(conn.network.ports(name=PREFIX + "s13"))

    students[-2] = {"id": "s13"}
    result = ansible("cohort", module_args(keys, students))
    assert not result.get("failed") and result["failed_students"] == []
    assert result["students"]["s13"]["status"] == "ACTIVE" and result["students"]["s14"]["actions"] == []


def test_teardown_of_one_student_keeps_the_others_and_the_course_network(provisioned, run, conn):
    status, unused, errors = run("teardown.yml", teardown_student="s14")
    assert status == 0, errors
    left = cohort_support.course_resources(conn, PREFIX)
    assert PREFIX + "s14" not in left["servers"] + left["keypairs"] and PREFIX + "s13" in left["servers"]
    assert left["routers"] == [PREFIX + "router"] and left["networks"] == [PREFIX + "net"]
    assert not list(conn.network.ports(name=PREFIX + "s14"))


@pytest.mark.disruptive
def test_neutron_killed_in_the_middle_of_a_run_then_a_rerun_converges(ansible, env, keys, conn, files):
    """Neutron dies (SIGKILL, as a crash) while six students are being made: the run fails with a clear
    message, a re-run after Neutron is back makes every student once, and teardown leaves nothing."""
    students = [{"id": "k%d" % i} for i in range(1, 7)]
    net_roster = cohort_support.write_roster(files, "k.csv", ["k1,K One,k1@example.edu,"])
    run = cohort_support.playbook_runner(env, files, COURSE, keys["admin"])
    # The course network first (provision.yml of one student), so the module has somewhere to put ports.
    status, unused, errors = run("provision.yml", cohort_roster=net_roster)
    assert status == 0, errors

    cmd = ["ansible", "localhost", "-m", "coursevm.openstack.cohort", "-a",
           json.dumps(module_args(keys, students, concurrency=2)), "-e", "ansible_python_interpreter=" + sys.executable]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(conn.network.ports(name=PREFIX + "k3")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before k3's port existed"
            time.sleep(0.5)
        subprocess.run(CLOUD_PY + ["kill", "neutron"], check=True, capture_output=True)
        out, err = proc.communicate(timeout=600)
    finally:
        subprocess.run(CLOUD_PY + ["restart", "neutron"], check=True, capture_output=True, timeout=300)
    assert proc.returncode != 0
    result = json.loads(out)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] is True
    # Either the whole call or named students failed, each with a sentence that says the cloud's API failed.
    assert result.get("failed_students") or "Cannot reach the cloud's API" in result["msg"], result["msg"]

    result = ansible("cohort", module_args(keys, students))
    assert not result.get("failed"), result.get("msg")
    assert all(result["students"][s["id"]]["status"] == "ACTIVE" for s in students)
    for s in students:  # one of each, however the first run ended
        assert len(list(conn.network.ports(name=PREFIX + s["id"]))) == 1
        assert len(list(conn.compute.servers(name="^%s%s$" % (PREFIX, s["id"])))) == 1

    status, unused, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0, errors
    assert not cohort_support.left_over(conn, PREFIX)


def test_teardown_of_the_course_leaves_nothing(provisioned, run, conn):
    status, out, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0, errors
    left = cohort_support.left_over(conn, PREFIX)
    assert not left, left
    status, out, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0 and cohort_support.changed_total(out) == 0, errors


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
