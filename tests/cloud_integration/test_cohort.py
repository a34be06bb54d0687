"""playbooks/provision.yml and playbooks/teardown.yml in the isolated topology (a network, router and security
group per student) against the local cloud, checked through openstacksdk.

A cohort of 3 is provisioned, re-run (0 changed), one student is torn down (the others stay), then the course
(nothing is left). Bad input fails with a clear message before anything is created. Every resource is named
`t5b-...` (course id t5b) and removed before and after the module. The shared topology (the default) has its
own module, test_cohort_shared.py.
"""

import base64
import sys

import openstack
import pytest
import yaml

import cohort_support
from conftest import CLOUD

COURSE = "t5b"
PREFIX = COURSE + "-"
STUDENTS = ("s1", "s2", "s3")
INGRESS = {22, 80}


def course_resources(conn):
    return cohort_support.course_resources(conn, PREFIX)


def nothing_left(conn):
    left = cohort_support.left_over(conn, PREFIX)
    assert not left, "resources of course %s exist: %s" % (COURSE, left)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return cohort_support.make_keys(tmp_path_factory.mktemp("keys"), STUDENTS + ("admin",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("cohort")


write_roster = cohort_support.write_roster
changed_total = cohort_support.changed_total


@pytest.fixture(scope="module")
def roster(files, keys):
    # s3 has no key: its keypair is the course team's key.
    rows = ["s1,Ada One,ada@example.edu,%s" % keys["s1"],
            "s2,\"Hopper, Grace\",grace@example.edu,%s" % keys["s2"],
            "s3,Edsger Three,ed@example.org,"]
    return write_roster(files, "roster.csv", rows)


@pytest.fixture(scope="module")
def run(env, files, keys):
    """run(playbook, **extra_vars) -> (exit status, json callback output, the error messages); this module's
    course is provisioned in the isolated topology."""
    play = cohort_support.playbook_runner(env, files, COURSE, keys["admin"])

    def isolated(name, **extra):
        return play(name, **dict({"cohort_topology": "isolated"}, **extra))

    return isolated


@pytest.fixture(scope="module")
def admin_conn(clouds_yaml):
    return openstack.connect(cloud=CLOUD + "-admin")


@pytest.fixture(scope="module", autouse=True)
def clean(conn):
    cohort_support.remove_course(conn, PREFIX)
    yield
    cohort_support.remove_course(conn, PREFIX)


# ---- bad input: a clear error before any resource is created -------------------------------------------

@pytest.mark.parametrize("rows, extra, expected", [
    (["s1,A,a@example.edu,", "s1,B,b@example.edu,"], {}, "line 3: student id 's1' is a duplicate of line 2"),
    (["S_1,A,a@example.edu,"], {}, "student id 'S_1' is not safe in a resource name"),
    (["s1,A,a@example.edu,ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroken"], {}, "the SSH public key of 's1'"),
    (["s1,A,a@example.edu,"], {"cohort_cidr": "10.0.0.300/24"}, "'10.0.0.300/24' is not a valid CIDR"),
    (["s1,A,a@example.edu,"], {"cohort_cidr": "172.24.0.0/16"},
     "172.24.0.0/16 overlaps 172.24.4.0/24"),
    (["s1,A,a@example.edu,"], {"cohort_cloud": "no-such-cloud"}, "Cloud 'no-such-cloud' is not defined"),
    (["s1,A,a@example.edu,"], {"cohort_course": "t5b-x"}, "cohort_course 't5b-x' must be 1-20 characters"),
], ids=["duplicate-id", "unsafe-id", "malformed-key", "invalid-cidr", "overlapping-subnet", "unknown-cloud",
        "unsafe-course-id"])
def test_bad_input_fails_clearly_and_creates_nothing(run, conn, files, rows, extra, expected):
    path = write_roster(files, "bad.csv", rows)
    status, unused, errors = run("provision.yml", cohort_roster=path, **extra)
    assert status != 0
    assert any(expected in message for message in errors), errors
    nothing_left(conn)


@pytest.mark.parametrize("extra, expected", [
    ({"cohort_vm_user": "Root User"}, "cohort_vm_user must be the image's Linux account"),
    ({"cohort_admin_private_key_file": "keys/team"}, "must be an absolute path"),
    ({"cohort_admin_private_key_file": "/nonexistent/team"}, "does not exist or is not a file"),
], ids=["vm-user", "relative-key", "missing-key"])
def test_deploy_refuses_bad_connection_settings_before_anything(run, conn, files, extra, expected):
    path = write_roster(files, "deploy.csv", ["s1,A,a@example.edu,"])
    status, out, errors = run("deploy.yml", cohort_roster=path, **extra)
    assert status != 0
    assert any(expected in message for message in errors), errors
    # Refused in deploy.yml's first play: provision.yml never started.
    assert [p["play"]["name"] for p in out["plays"]] == [
        "Check how Ansible will reach the new course VMs, before anything is created"]
    nothing_left(conn)


# ---- the cohort's life: provision, re-run, one student out, the course out -----------------------------

@pytest.fixture(scope="module")
def provisioned(run, roster):
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0, errors
    return out


def test_cohort_of_three_is_provisioned_each_on_its_own_network(provisioned, conn, admin_conn, keys):
    out = provisioned
    # The networks in parallel (a host per student), the servers from one cohort module call.
    hosts = sorted(h for h in out["stats"] if h != "localhost")
    assert hosts == [PREFIX + s for s in STUDENTS]
    assert all(out["stats"][h]["failures"] == 0 and out["stats"][h]["changed"] > 0 for h in hosts)
    result = cohort_support.task_result(out, "Provision every student's keypair, port, server and floating IP")
    assert sorted(result["students"]) == list(STUDENTS) and result["failed_students"] == []

    public = conn.network.find_network("public")
    floating = set()
    for student in STUDENTS:
        name = PREFIX + student
        server = conn.compute.find_server(name)
        assert server is not None and conn.compute.get_server(server.id).status == "ACTIVE"
        server = conn.compute.get_server(server.id)
        assert server.key_name == name
        assert server.metadata["coursevm_course"] == COURSE and server.metadata["coursevm_student"] == student
        # Its own network, subnet, router (gateway on public, interface on the subnet) and security group.
        network = conn.network.find_network(name + "-net")
        subnet = conn.network.find_subnet(name + "-subnet")
        router = conn.network.find_router(name + "-router")
        group = conn.network.find_security_group(name + "-sg")
        assert subnet.network_id == network.id and subnet.cidr == "192.168.50.0/24"
        assert router.external_gateway_info["network_id"] == public.id
        interfaces = list(conn.network.ports(device_id=router.id, device_owner="network:router_interface"))
        assert [p.fixed_ips[0]["subnet_id"] for p in interfaces] == [subnet.id]
        ingress = [r for r in group.security_group_rules if r["direction"] == "ingress"]
        assert sorted((r["protocol"], r["port_range_min"], r["port_range_max"]) for r in ingress) == [
            ("tcp", 22, 22), ("tcp", 80, 80)]
        ports = list(conn.network.ports(device_id=server.id))
        assert len(ports) == 1 and ports[0].network_id == network.id
        assert ports[0].security_group_ids == [group.id]
        fips = list(conn.network.ips(port_id=ports[0].id))
        assert len(fips) == 1 and fips[0].floating_network_id == public.id
        floating.add(fips[0].floating_ip_address)
        # The keypair is the student's key, or the course team's for s3 who gave none.
        assert conn.compute.get_keypair(name).public_key.strip() == keys[student if student != "s3" else "admin"]
        # cloud-init user data (read with admin rights, microversion 2.3+): keys installed, passwords off.
        detail = admin_conn.compute.get(
            "/servers/%s" % server.id, microversion="2.3").json()["server"]
        user_data = base64.b64decode(detail["OS-EXT-SRV-ATTR:user_data"]).decode()
        assert user_data.startswith("#cloud-config\n")
        config = yaml.safe_load(user_data)
        expected_keys = [keys["admin"]] if student == "s3" else [keys[student], keys["admin"]]
        assert config["ssh_authorized_keys"] == expected_keys
        assert config["ssh_pwauth"] is False and config["disable_root"] is True
        drop_in = config["write_files"][0]
        assert drop_in["path"] == "/etc/ssh/sshd_config.d/00-coursevm.conf"
        assert "PasswordAuthentication no" in drop_in["content"].splitlines()
    assert len(floating) == 3


def test_rerun_changes_nothing_and_allocates_no_address(provisioned, run, roster, conn):
    before = course_resources(conn)
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0, errors
    assert changed_total(out) == 0, dict((h, s["changed"]) for h, s in out["stats"].items())
    assert course_resources(conn) == before


def test_teardown_of_one_student_leaves_the_others(provisioned, run, conn):
    status, unused, errors = run("teardown.yml", teardown_student="s2")
    assert status == 0, errors
    left = course_resources(conn)
    assert left["servers"] == [PREFIX + "s1", PREFIX + "s3"]
    assert left["networks"] == [PREFIX + "s1-net", PREFIX + "s3-net"]
    assert left["routers"] == [PREFIX + "s1-router", PREFIX + "s3-router"]
    assert left["security_groups"] == [PREFIX + "s1-sg", PREFIX + "s3-sg"]
    assert left["keypairs"] == [PREFIX + "s1", PREFIX + "s3"]
    assert len(left["floating_ips"]) == 2


def ingress_ports(conn, student):
    group = conn.network.find_security_group(PREFIX + student + "-sg")
    return sorted(r["port_range_min"] for r in group.security_group_rules if r["direction"] == "ingress")


def test_https_opens_443_and_turning_it_off_closes_it(provisioned, run, files, keys, conn):
    roster = write_roster(files, "s1.csv", ["s1,Ada One,ada@example.edu,%s" % keys["s1"]])
    status, out, errors = run("provision.yml", cohort_roster=roster, cohort_https=True)
    assert status == 0, errors
    assert out["stats"][PREFIX + "s1"]["changed"] == 1
    assert ingress_ports(conn, "s1") == [22, 80, 443]
    assert ingress_ports(conn, "s3") == [22, 80]
    status, out, errors = run("provision.yml", cohort_roster=roster)
    assert status == 0 and out["stats"][PREFIX + "s1"]["changed"] == 1, errors
    assert ingress_ports(conn, "s1") == [22, 80]


def test_server_in_error_is_explained_and_removed(provisioned, run, files, conn):
    """m1.huge fits no hypervisor: the server goes to ERROR, is explained, and the student's server, port,
    floating IP and keypair are removed (the student's own network stays until teardown)."""
    roster = write_roster(files, "s9.csv", ["s9,Nine,nine@example.edu,"])
    status, out, errors = run("provision.yml", cohort_roster=roster, cohort_flavor="m1.huge")
    assert status != 0
    result = cohort_support.task_result(out, "Provision every student's keypair, port, server and floating IP")
    assert result["failed_students"] == ["s9"] and result["students"]["s9"]["error"]["kind"] == "no_host"
    assert any("No hypervisor has room for flavor m1.huge" in message for message in errors), errors
    left = course_resources(conn)
    assert PREFIX + "s9" not in left["servers"] + left["keypairs"]
    assert not list(conn.network.ports(name=PREFIX + "s9"))
    # The others are untouched.
    assert conn.compute.find_server(PREFIX + "s1") is not None


def test_teardown_of_the_course_leaves_nothing(provisioned, run, conn):
    fips = set(f.id for f in conn.network.ips() if f.port_id in set(
        p.id for s in STUDENTS[::2] for p in conn.network.ports(name=PREFIX + s)))
    assert len(fips) == 2
    status, out, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0, errors
    nothing_left(conn)
    # The floating IPs were released, not just detached.
    assert not fips & set(f.id for f in conn.network.ips())
    # A second teardown finds nothing and changes nothing.
    status, out, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0 and changed_total(out) == 0, errors


def test_teardown_needs_a_student_or_the_whole_course(run):
    status, unused, errors = run("teardown.yml")
    assert status != 0
    assert any("Give either teardown_student=<student id>" in message for message in errors), errors


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
