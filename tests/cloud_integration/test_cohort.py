"""playbooks/provision.yml and playbooks/teardown.yml against the local cloud, checked through openstacksdk.

A cohort of 3 is provisioned (in parallel), re-run (0 changed), one student is torn down (the others stay),
then the course (nothing is left). Bad input fails with a clear message before anything is created.
Every resource is named `t5b-...` (course id t5b) and removed before and after the module.
"""

import base64
import json
import subprocess
import sys
from datetime import datetime

import openstack
import pytest
import yaml

from ansible_json import run_json  # tests/support, on sys.path via conftest
from conftest import CLOUD, ROOT

COURSE = "t5b"
PREFIX = COURSE + "-"
STUDENTS = ("s1", "s2", "s3")
INGRESS = {22, 80}


def course_resources(conn):
    """Everything of course t5b, by kind: names (ports and floating IPs: ids) through openstacksdk."""
    servers = [s for s in conn.compute.servers() if s.name.startswith(PREFIX)]
    networks = [n for n in conn.network.networks() if n.name.startswith(PREFIX)]
    routers = [r for r in conn.network.routers() if r.name.startswith(PREFIX)]
    owners = set(s.id for s in servers) | set(r.id for r in routers)
    ports = [p for p in conn.network.ports() if p.device_id in owners or p.network_id in set(n.id for n in networks)]
    port_ids = set(p.id for p in ports)
    return {
        "servers": sorted(s.name for s in servers),
        "keypairs": sorted(k.name for k in conn.compute.keypairs() if k.name.startswith(PREFIX)),
        "networks": sorted(n.name for n in networks),
        "subnets": sorted(s.name for s in conn.network.subnets() if s.name.startswith(PREFIX)),
        "routers": sorted(r.name for r in routers),
        "security_groups": sorted(g.name for g in conn.network.security_groups() if g.name.startswith(PREFIX)),
        "ports": sorted(port_ids),
        "floating_ips": sorted(f.id for f in conn.network.ips() if f.port_id in port_ids),
    }


def remove_course(conn):
    """Safety net, not the code under test: remove whatever a failed run left."""
    for server in [s for s in conn.compute.servers() if s.name.startswith(PREFIX)]:
        for port in conn.network.ports(device_id=server.id):
            for fip in conn.network.ips(port_id=port.id):
                conn.network.delete_ip(fip)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=180)
    for router in [r for r in conn.network.routers() if r.name.startswith(PREFIX)]:
        for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
            conn.network.remove_interface_from_router(router, port_id=port.id)
        conn.network.delete_router(router)
    for network in [n for n in conn.network.networks() if n.name.startswith(PREFIX)]:
        conn.network.delete_network(network)
    for group in [g for g in conn.network.security_groups() if g.name.startswith(PREFIX)]:
        conn.network.delete_security_group(group)
    for key in [k for k in conn.compute.keypairs() if k.name.startswith(PREFIX)]:
        conn.compute.delete_keypair(key)


def nothing_left(conn):
    left = dict((kind, names) for kind, names in course_resources(conn).items() if names)
    assert not left, "resources of course %s exist: %s" % (COURSE, left)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in STUDENTS + ("admin",):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
        made[name] = (folder / (name + ".pub")).read_text().strip()
    return made


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("cohort")


def write_roster(folder, name, rows):
    path = folder / name
    path.write_text("student_id,name,email,ssh_public_key\n" + "".join("%s\n" % row for row in rows))
    return str(path)


@pytest.fixture(scope="module")
def roster(files, keys):
    # s3 has no key: its keypair is the course team's key.
    rows = ["s1,Ada One,ada@example.edu,%s" % keys["s1"],
            "s2,\"Hopper, Grace\",grace@example.edu,%s" % keys["s2"],
            "s3,Edsger Three,ed@example.org,"]
    return write_roster(files, "roster.csv", rows)


@pytest.fixture(scope="module")
def run(env, files, keys):
    """run(playbook, **extra_vars) -> (exit status, json callback output, the error messages)."""
    admin_keys = files / "admin_keys.json"
    admin_keys.write_text(json.dumps({"cohort_admin_public_keys": [keys["admin"]]}))

    def play(name, **extra):
        cmd = ["ansible-playbook", "-i", str(ROOT / "inventory" / "local"), str(ROOT / "playbooks" / name),
               "-e", "cohort_course=" + COURSE, "-e", "@" + str(admin_keys), "-e", json.dumps(extra)]
        proc, out = run_json(cmd, env, timeout=1800, cwd=ROOT)
        errors = [result.get("msg", "") for play_ in out["plays"] for task in play_["tasks"]
                  for result in task["hosts"].values() if result.get("failed")]
        return proc.returncode, out, errors + [proc.stderr]

    return play


def changed_total(out):
    return sum(stats["changed"] for stats in out["stats"].values())


def task_durations(out, name):
    """{host: (start, end)} of a task in the json callback's output."""
    spans = {}
    for play_ in out["plays"]:
        for task in play_["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == name:
                for host in task["hosts"]:
                    span = task["task"]["duration"]
                    spans[host] = (datetime.fromisoformat(span["start"].rstrip("Z")),
                                   datetime.fromisoformat(span["end"].rstrip("Z")))
    return spans


@pytest.fixture(scope="module")
def admin_conn(clouds_yaml):
    return openstack.connect(cloud=CLOUD + "-admin")


@pytest.fixture(scope="module", autouse=True)
def clean(conn):
    remove_course(conn)
    yield
    remove_course(conn)


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


def test_cohort_of_three_is_provisioned_in_parallel(provisioned, conn, admin_conn, keys):
    out = provisioned
    hosts = sorted(h for h in out["stats"] if h != "localhost")
    assert hosts == [PREFIX + s for s in STUDENTS]
    assert all(out["stats"][h]["failures"] == 0 and out["stats"][h]["changed"] > 0 for h in hosts)
    # Students run side by side: the three server creations overlap in time.
    spans = task_durations(out, "Create the course server and wait for ACTIVE")
    assert sorted(spans) == hosts
    assert max(span[0] for span in spans.values()) < min(span[1] for span in spans.values()), spans

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
    """m1.huge fits no hypervisor: the server goes to ERROR, server_diagnose explains and deletes it."""
    roster = write_roster(files, "s9.csv", ["s9,Nine,nine@example.edu,"])
    status, out, errors = run("provision.yml", cohort_roster=roster, cohort_flavor="m1.huge")
    assert status != 0
    assert out["stats"][PREFIX + "s9"]["rescued"] == 1
    assert any("failed to boot. No hypervisor has room for flavor m1.huge" in message for message in errors), errors
    assert conn.compute.find_server(PREFIX + "s9") is None
    # The others are untouched, and the last play says who was not provisioned.
    assert conn.compute.find_server(PREFIX + "s1") is not None


def test_teardown_of_the_course_leaves_nothing(provisioned, run, conn):
    fips = set(f.id for f in conn.network.ips() if f.port_id in set(
        p.id for s in STUDENTS[::2] for p in conn.network.ports(device_id=conn.compute.find_server(PREFIX + s).id)))
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
