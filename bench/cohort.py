"""bench/cohort: how a cohort's provisioning scales, measured side by side in one run on the local cloud.

    ./coursevm setup && .venv/bin/python bench/cohort.py [--students 50] [--markdown]

Needs the local cloud running (`python3 tests/cloud/cloud.py start`, as root). Prints one table, every figure
measured in this run:
  - provision.yml / a no-change re-run / teardown.yml wall time for 1 student and for N (shared topology);
  - the same N made by the loop a user would otherwise write: openstack.cloud modules, one student after
    another (keypair, server with auto_ip) on the same course network;
  - an openstacksdk floor: one process, a thread per student, the same resources (keypair, port, floating
    IP, server, wait for ACTIVE), with nothing else around it;
  - public addresses each cohort used, and resources left after every teardown.
Courses are named bench1, benchn, benchloop and benchsdk; whatever a run leaves is removed first.
Not part of CI (about 40 minutes); bench/README.md keeps the last table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"
CLOUD = "coursevm-local"
CLOUDS_YAML = "/var/lib/coursevm-cloud/clouds.yaml"
sys.path.insert(0, str(ROOT / "tests" / "cloud_integration"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

import openstack  # noqa: E402  (the venv's)
import cohort_support  # noqa: E402


def env():
    site = subprocess.run([str(VENV / "python"), "-c", "import ansible_collections, os; "
                           "print(os.path.dirname(list(ansible_collections.__path__)[-1]))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    e = dict(os.environ, PATH="%s:%s" % (VENV, os.environ.get("PATH", "")), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
             ANSIBLE_COLLECTIONS_PATH="%s:%s" % (ROOT / ".build" / "collections", site),
             OS_CLIENT_CONFIG_FILE=os.environ.get("OS_CLIENT_CONFIG_FILE", CLOUDS_YAML), ANSIBLE_NOCOLOR="1")
    return e


def timed(fn):
    start = time.monotonic()
    value = fn()
    return time.monotonic() - start, value


class Bench:
    def __init__(self, students, folder):
        self.n = students
        self.folder = folder
        self.env = env()
        os.environ["OS_CLIENT_CONFIG_FILE"] = self.env["OS_CLIENT_CONFIG_FILE"]
        self.conn = openstack.connect(cloud=CLOUD)
        key = folder / "admin"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.admin_key = key.with_suffix(".pub").read_text().strip()
        (folder / "keys.json").write_text(json.dumps({"cohort_admin_public_keys": [self.admin_key]}))

    def roster(self, course, count):
        path = self.folder / ("%s.csv" % course)
        path.write_text("student_id,name,email\n" + "".join(
            "s%03d,Student %d,s%03d@example.edu\n" % (i, i, i) for i in range(1, count + 1)))
        return path

    def playbook(self, name, course, *extra):
        cmd = [str(VENV / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local"), str(ROOT / "playbooks" / name),
               "-e", "cohort_course=" + course, "-e", "cohort_image=cirros-like",
               "-e", "@" + str(self.folder / "keys.json")]
        for item in extra:
            cmd += ["-e", item]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            sys.exit("%s for %s failed:\n%s\n%s" % (name, course, proc.stdout[-4000:], proc.stderr[-2000:]))
        return proc.stdout

    def public_addresses(self, course):
        prefix = course + "-"
        ports = set(p.id for p in self.conn.network.ports() if (p.name or "").startswith(prefix))
        fips = [f for f in self.conn.network.ips() if f.port_id in ports]
        routers = [r for r in self.conn.network.routers() if r.name.startswith(prefix) and r.external_gateway_info]
        return len(fips) + sum(len(r.external_gateway_info.get("external_fixed_ips") or []) for r in routers)

    def left(self, course):
        return sum(len(v) for v in cohort_support.course_resources(self.conn, course + "-").values())

    def product(self, course, count):
        """provision, re-run, teardown through the playbooks: (times, public addresses, left)."""
        cohort_support.remove_course(self.conn, course + "-")
        roster = "cohort_roster=%s" % self.roster(course, count)
        provision, unused = timed(lambda: self.playbook("provision.yml", course, roster))
        addresses = self.public_addresses(course)
        rerun, out = timed(lambda: self.playbook("provision.yml", course, roster))
        assert "changed=0" in out.split("PLAY RECAP")[-1], "the re-run changed something"
        teardown, unused = timed(lambda: self.playbook("teardown.yml", course, "teardown_whole_course=true"))
        return {"provision": provision, "rerun": rerun, "teardown": teardown, "addresses": addresses,
                "left": self.left(course)}

    def loop(self, course, count):
        """The loop a user would write with openstack.cloud: a course network, then one student after another."""
        cohort_support.remove_course(self.conn, course + "-")
        self.playbook("provision.yml", course, "cohort_roster=%s" % self.roster(course, 1))
        self.playbook("teardown.yml", course, "teardown_student=s001")  # keep the course network only
        play = self.folder / "loop.yml"
        play.write_text("""---
- name: One student after another, with openstack.cloud
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/openstack.cloud.openstack:
      cloud: %(cloud)s
  tasks:
    - name: Create each student's keypair
      openstack.cloud.keypair:
        name: "%(course)s-{{ item }}"
        public_key: "%(key)s"
      loop: "{{ students }}"
    - name: Create each student's server with a floating IP
      openstack.cloud.server:
        name: "%(course)s-{{ item }}"
        image: cirros-like
        flavor: m1.course
        key_name: "%(course)s-{{ item }}"
        network: %(course)s-net
        security_groups: [%(course)s-sg]
        auto_ip: true
        wait: true
        timeout: 600
      loop: "{{ students }}"
""" % {"cloud": CLOUD, "course": course, "key": self.admin_key})
        students = json.dumps({"students": ["s%03d" % i for i in range(1, count + 1)]})
        cmd = [str(VENV / "ansible-playbook"), str(play), "-e", students,
               "-e", "ansible_python_interpreter=" + str(VENV / "python")]
        seconds, proc = timed(lambda: subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False))
        if proc.returncode != 0:
            sys.exit("the openstack.cloud loop failed:\n%s" % proc.stdout[-4000:])
        addresses = len([f for f in self.conn.network.ips() if f.port_id in set(
            p.id for s in self.conn.compute.servers() if s.name.startswith(course + "-")
            for p in self.conn.network.ports(device_id=s.id))]) + 1
        cohort_support.remove_course(self.conn, course + "-")
        return {"provision": seconds, "addresses": addresses}

    def sdk_floor(self, course, count):
        """openstacksdk alone: one process, a thread per student, the same four resources and the wait."""
        cohort_support.remove_course(self.conn, course + "-")
        self.playbook("provision.yml", course, "cohort_roster=%s" % self.roster(course, 1))
        self.playbook("teardown.yml", course, "teardown_student=s001")
        conn = self.conn
        net = conn.network.find_network(course + "-net")
        group = conn.network.find_security_group(course + "-sg")
        public = conn.network.find_network("public")
        image = conn.image.find_image("cirros-like")
        flavor = conn.compute.find_flavor("m1.course")

        def one(i):
            name = "%s-s%03d" % (course, i)
            conn.compute.create_keypair(name=name, public_key=self.admin_key)
            port = conn.network.create_port(name=name, network_id=net.id, security_group_ids=[group.id])
            conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
            server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, key_name=name,
                                                networks=[{"port": port.id}])
            conn.compute.wait_for_server(server, wait=600, interval=2)

        def make():
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(one, range(1, count + 1)))
        seconds, unused = timed(make)
        addresses = self.public_addresses(course)
        cohort_support.remove_course(self.conn, course + "-")
        return {"provision": seconds, "addresses": addresses}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--skip-loop", action="store_true", help="leave out the (slow) openstack.cloud loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(args.students, Path(tmp))
        n = args.students
        print("bench/cohort: %d students on the local cloud, %s, %d cores" % (n, platform.node(), os.cpu_count()),
              flush=True)
        one = b.product("bench1", 1)
        print("  1 student: %s" % one, flush=True)
        many = b.product("benchn", n)
        print("  %d students: %s" % (n, many), flush=True)
        sdk = b.sdk_floor("benchsdk", n)
        print("  openstacksdk floor: %s" % sdk, flush=True)
        loop = None if args.skip_loop else b.loop("benchloop", n)
        print("  openstack.cloud loop: %s" % loop, flush=True)

    def row(what, value, target, ok):
        print("| %s | %s | %s | %s |" % (what, value, target, "met" if ok else "MISSED"))

    print("\n| measure | value | target | |\n|---|---|---|---|")
    print("| provision, 1 student | %.0f s | | |" % one["provision"])
    print("| provision, %d students | %.0f s | | |" % (n, many["provision"]))
    row("provision %d / provision 1" % n, "%.2fx" % (many["provision"] / one["provision"]), "<= 3x",
        many["provision"] <= 3 * one["provision"])
    row("no-change re-run, %d students" % n, "%.0f s (1 student: %.0f s)" % (many["rerun"], one["rerun"]), "<= 30 s",
        many["rerun"] <= 30)
    row("teardown %d / teardown 1" % n, "%.2fx (%.0f s / %.0f s)" % (many["teardown"] / one["teardown"],
                                                                     many["teardown"], one["teardown"]),
        "<= 3x", many["teardown"] <= 3 * one["teardown"])
    if loop:
        row("openstack.cloud loop, one after another / provision %d" % n,
            "%.1fx (%.0f s)" % (loop["provision"] / many["provision"], loop["provision"]), ">= 5x",
            loop["provision"] >= 5 * many["provision"])
    floor = "%.2fx (floor %.0f s)" % (many["provision"] / sdk["provision"], sdk["provision"])
    row("provision %d / openstacksdk floor" % n, floor,
        "<= 1.5x", many["provision"] <= 1.5 * sdk["provision"])
    row("public addresses, %d students" % n, "%d (isolated would take %d)" % (many["addresses"], 2 * n), "N + 1",
        many["addresses"] == n + 1)
    row("resources left after teardown", "%d (1 student) / %d (%d students)" % (one["left"], many["left"], n), "0",
        one["left"] == 0 and many["left"] == 0)


if __name__ == "__main__":
    main()
