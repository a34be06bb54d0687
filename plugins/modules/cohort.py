#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: cohort
short_description: Every student's keypair, port, server and floating IP of a course, from one process
version_added: 0.2.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Reconciles a whole cohort in one module call, students side by side on a bounded thread pool. Each
    student gets a keypair, a port on the course network (or, with O(topology=isolated), on the student's
    own network) carrying the security group, a server booted on that port with the course's cloud-init user
    data (keys only, password login off), and a floating IP bound to the port.
  - Idempotent. What exists is found with a handful of list calls for the whole cohort (servers, keypairs,
    ports, floating IPs), never a call per student per resource; only what is missing is created. A second
    run changes nothing.
  - One student's failure does not stop the others. A server that goes to C(ERROR) (no valid host, a flavor
    too small, ...) is explained as M(coursevm.openstack.server_diagnose) explains it, and the student's
    resources made by this run are removed (the failed server, its port, floating IP and keypair, unless
    O(remove_failed=false)). The module fails at the end, naming every student who failed and why; the others
    are provisioned and returned.
  - A server found in C(ERROR) from an earlier run is removed and made again, so a re-run after the cause is
    fixed completes the cohort.
  - With O(state=absent) the students' floating IPs, servers, ports and keypairs are removed, side by side,
    and the removal is checked. Without O(students), every student of O(course) found by name is removed.
  - With O(boot_from_volume), each server boots from a Cinder volume made from the image,
    C(<course>-<student>-boot), instead of the flavor's root disk, as clouds whose flavors have a 0 GB disk
    need. Removing a student removes the boot volume too, unless O(terminate_volume=false) keeps it; the
    volumes kept are counted in C(kept_volumes).
  - With O(student_volume_size), each student also gets a data volume of their own, C(<course>-<student>-data),
    made once and attached to their server (the role C(coursevm.openstack.student_volume) formats it once and
    mounts it where the notebooks and OpenRefine's projects live). It is never deleted with the server; a VM
    rebuilt, or remade from a new image, gets the same volume back. Removing students keeps their data volumes
    (counted in C(kept_data_volumes)) unless O(delete_data_volumes=true).
  - The course network and security group are not made here (role C(cloud_network) makes them); the module
    refuses to start when they are missing. Resource names come from the collection's one naming scheme
    (filter P(coursevm.openstack.resource_names#filter)).
extends_documentation_fragment:
  - openstack.cloud.openstack
options:
  course:
    description: The course id (1-20 characters of C(a-z), C(0-9) and C(_)); every name starts with it.
    type: str
    required: true
  students:
    description:
      - The students, as the P(coursevm.openstack.roster#filter) filter returns them. Each needs C(id); the
        other keys are optional.
      - C(ssh_public_key) is the student's key (the keypair, and installed by cloud-init next to
        O(admin_public_keys)). A student without a key gets the first of O(admin_public_keys) as keypair.
      - C(flavor) overrides O(flavor) for one student (for example a student who needs more memory).
      - With O(state=absent), omit it (or give an empty list) to remove every student of the course.
    type: list
    elements: dict
  topology:
    description:
      - C(shared) - every student's port is on the course network C(<course>-net) with the course security
        group C(<course>-sg).
      - C(isolated) - each student's port is on the student's own C(<course>-<student>-net) with
        C(<course>-<student>-sg).
    type: str
    choices: [shared, isolated]
    default: shared
  image:
    description: Name or ID of the course image. Required with O(state=present).
    type: str
  flavor:
    description: Name or ID of the flavor of every student's server. Required with O(state=present).
    type: str
  external_network:
    description: The network floating IPs come from.
    type: str
    default: public
  admin_public_keys:
    description: The course team's SSH public keys, installed on every server next to the student's.
    type: list
    elements: str
    default: []
  metadata:
    description: Extra server metadata; C(coursevm_course) and C(coursevm_student) are always set.
    type: dict
    default: {}
  concurrency:
    description: How many students are worked on at once (threads in this one process).
    type: int
    default: 10
  boot_from_volume:
    description:
      - Boot every server from a volume made from O(image) (Nova makes it, of O(volume_size) and O(volume_type))
        instead of the flavor's root disk. Needed on flavors with a 0 GB disk, which Nova refuses to boot an
        image onto (for anyone but an admin); the module refuses such a flavor without it, before anything
        is made.
    type: bool
    default: false
    version_added: 0.4.0
  volume_size:
    description:
      - Size in GB of each boot volume, with O(boot_from_volume). Default the smallest that holds the image
        (its C(min_disk), virtual size and stored size); a smaller size is refused.
    type: int
    version_added: 0.4.0
  volume_type:
    description: The Cinder volume type of the boot volumes, with O(boot_from_volume); default the cloud's.
    type: str
    version_added: 0.4.0
  terminate_volume:
    description:
      - Whether a student's boot volume is deleted with their server (O(state=absent), a server replaced after
        an C(ERROR)). C(false) keeps it (C(available), named C(<course>-<student>-boot)), for example to look
        at a broken VM's disk; it then counts against the volume quota until someone deletes it.
    type: bool
    default: true
    version_added: 0.4.0
  student_volume_size:
    description:
      - Size in GB of each student's data volume (C(<course>-<student>-data)); C(0), the default, gives none.
      - An existing volume is reused as it is (never shrunk, never made again); a larger size than it has is
        reported as a warning, not applied.
    type: int
    default: 0
    version_added: 0.4.0
  student_volume_type:
    description: The Cinder volume type of new data volumes, with O(student_volume_size); default the cloud's.
    type: str
    version_added: 0.4.0
  delete_data_volumes:
    description:
      - With O(state=absent), delete the removed students' data volumes too (after their servers are gone).
        The default keeps them, and the student's work on them, counted in C(kept_data_volumes).
    type: bool
    default: false
    version_added: 0.4.0
  remove_failed:
    description: Remove the resources of a student whose server failed (the failed server, its port,
      floating IP and keypair), so nothing half-made is left.
    type: bool
    default: true
  state:
    description: C(present) to provision the students, C(absent) to remove them.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports, per student, what would be created or removed (C(students.<id>.actions)), and
      changes nothing.
  diff_mode:
    support: full
    description: Before and after, per student, of the keypair, port, server and floating IP.
notes:
  - O(timeout) (default 180 s of the common OpenStack options) bounds the wait for all servers of the run to
    become C(ACTIVE) (or to be gone, with O(state=absent)); the servers are waited for together.
  - Ports are made before their servers, so Nova does not delete them with a server; the module (and
    C(playbooks/teardown.yml)) removes them.
"""

EXAMPLES = r"""
- name: Provision the whole cohort on the course network
  coursevm.openstack.cohort:
    cloud: mycloud
    course: tm351
    students: "{{ lookup('ansible.builtin.file', 'roster.csv') | coursevm.openstack.roster }}"
    image: course-vm-2026
    flavor: m1.course
    admin_public_keys:
      - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
    timeout: 900
  register: cohort

- name: Show each student's address
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.floating_ip }}"
  loop: "{{ cohort.students | dict2items }}"

- name: Remove every student of the course (the course network stays)
  coursevm.openstack.cohort:
    cloud: mycloud
    course: tm351
    state: absent
"""

RETURN = r"""
students:
  description: Every student of the run, by id.
  returned: always
  type: dict
  contains:
    server:
      description: The server's (and keypair's and port's) name.
      type: str
    server_id:
      description: The server's ID (null when there is none).
      type: str
    status:
      description: The server's status (C(ACTIVE), C(ABSENT) after removal or a failure, C(PLANNED) in check mode).
      type: str
    fixed_ip:
      description: The port's address on the course (or student's) network.
      type: str
    floating_ip:
      description: The public address students reach the VM at.
      type: str
    actions:
      description: What was (or, in check mode, would be) done, e.g. C(create keypair), C(create server).
      type: list
      elements: str
    changed:
      description: Whether anything of this student changed.
      type: bool
    error:
      description: Why this student failed (kind, explanation, next_step), or null.
      type: dict
    boot_volume:
      description: The ID of the server's boot volume with O(boot_from_volume), else null.
      type: str
    data_volume:
      description:
        - The student's data volume (with O(student_volume_size), once attached), else null.
        - C(device) is the device name the cloud reported for the attachment; the guest may name it
          differently, so C(id) is what finds it (C(/dev/disk/by-id/virtio-<id>)).
      type: dict
      contains:
        id:
          description: The volume's ID.
          type: str
        name:
          description: The volume's name, C(<course>-<student>-data).
          type: str
        size:
          description: Its size in GB.
          type: int
        device:
          description: The device name the cloud reported, for example C(/dev/vdb).
          type: str
  sample:
    ab12:
      server: tm351-ab12
      server_id: 5f0c...
      status: ACTIVE
      fixed_ip: 192.168.50.23
      floating_ip: 172.24.4.77
      actions: [create keypair, create port, create floating ip, create server]
      changed: true
      error: null
failed_students:
  description: The ids of the students who failed, in the order given.
  returned: always
  type: list
  elements: str
public_addresses:
  description: How many floating IPs the students of the run hold.
  returned: always
  type: int
kept_volumes:
  description: With O(state=absent), how many boot volumes of the removed students are left (by
    O(terminate_volume=false), now or when their server was made).
  returned: always
  type: int
kept_data_volumes:
  description: With O(state=absent), how many data volumes of the removed students are left (all of them unless
    O(delete_data_volumes=true)).
  returned: always
  type: int
  version_added: 0.4.0
"""

import base64
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import (
    CourseVMCloudModule, WaitTimeout, wait_until, what_went_wrong)
from ansible_collections.coursevm.openstack.plugins.module_utils.cloud_init import authorized_keys, user_data
from ansible_collections.coursevm.openstack.plugins.module_utils.faults import explain_server_fault
from ansible_collections.coursevm.openstack.plugins.module_utils.sizing import image_disk_need_gb, volume_fits
from ansible_collections.coursevm.openstack.plugins.module_utils.names import (
    BadName, check_student, classify, cohort_problems, resource_names, student_problems)
from ansible_collections.coursevm.openstack.plugins.module_utils.ssh_keys import ssh_public_key_problem

POLL_INTERVAL = 2


class StudentFailed(Exception):
    """One student's work stopped; ``error`` is {kind, explanation, next_step}."""

    def __init__(self, error):
        super(StudentFailed, self).__init__(error["explanation"])
        self.error = error


def check_students(students, admin_keys, state):
    """Every problem with the students list at once (pure): a list of sentences, empty when all is well."""
    return student_problems(students) + key_problems(students, admin_keys, state)


def key_problems(students, admin_keys, state):
    """Every problem with the students' and the team's SSH public keys (pure); students with a bad id are left
    to student_problems."""
    problems = []
    for student in students if state == "present" else []:
        if not isinstance(student, dict) or not isinstance(student.get("id"), str):
            continue
        sid = student["id"]
        try:
            check_student(sid)
        except BadName:
            continue
        key = (student.get("ssh_public_key") or "").strip()
        if key:
            problem = ssh_public_key_problem(key)
            if problem:
                # Never the key itself: a pasted private key must not reach a log.
                problems.append("the SSH public key of student %r %s" % (sid, problem))
        elif not admin_keys:
            problems.append("student %r has no SSH public key and admin_public_keys is empty, so nobody could "
                            "log in to the VM" % sid)
    for index, key in enumerate(admin_keys, 1):
        problem = ssh_public_key_problem(key.strip())
        if problem:
            problems.append("admin_public_keys[%d] %s" % (index, problem))
    return problems


def volume_option_problems(params):
    """Problems with the boot-volume options alone (pure)."""
    problems = []
    if not params["boot_from_volume"] and (params["volume_size"] is not None or params["volume_type"]):
        problems.append("volume_size and volume_type are for boot volumes: set boot_from_volume: true too")
    if params["volume_size"] is not None and params["volume_size"] < 1:
        problems.append("volume_size must be at least 1 (GB); got %d" % params["volume_size"])
    if params["student_volume_size"] < 0:
        problems.append("student_volume_size must be 0 (no data volumes) or a size in GB; got %d"
                        % params["student_volume_size"])
    if params["student_volume_type"] and not params["student_volume_size"]:
        problems.append("student_volume_type is for data volumes: set student_volume_size too")
    return problems


def plan_student(sid, names, found):
    """What to do for one student (pure): the list of actions, given what exists (``found``: a dict with
    keypair, port, server (status), floating_ip (or None each))."""
    actions = []
    if found.get("keypair") is None:
        actions.append("create keypair")
    if found.get("port") is None:
        actions.append("create port")
    if found.get("floating_ip") is None:
        actions.append("create floating ip")
    server = found.get("server")
    if server is not None and str(server.get("status")).upper() == "ERROR":
        actions.append("replace server in ERROR")
    elif server is None:
        actions.append("create server")
    return actions


def state_of(found):
    """The diff view of one student: which of the four resources exist."""
    return dict((kind, "present" if found.get(kind) is not None else "absent")
                for kind in ("keypair", "port", "server", "floating_ip"))


class CohortModule(CourseVMCloudModule):
    argument_spec = dict(
        course=dict(type="str", required=True),
        students=dict(type="list", elements="dict"),
        topology=dict(type="str", choices=["shared", "isolated"], default="shared"),
        image=dict(type="str"),
        flavor=dict(type="str"),
        external_network=dict(type="str", default="public"),
        admin_public_keys=dict(type="list", elements="str", default=[], no_log=False),
        metadata=dict(type="dict", default={}),
        concurrency=dict(type="int", default=10),
        remove_failed=dict(type="bool", default=True),
        boot_from_volume=dict(type="bool", default=False),
        volume_size=dict(type="int"),
        volume_type=dict(type="str"),
        terminate_volume=dict(type="bool", default=True),
        student_volume_size=dict(type="int", default=0),
        student_volume_type=dict(type="str"),
        delete_data_volumes=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_if=[("state", "present", ("image", "flavor", "students"))],
    )

    volume_gb = None  # the boot volumes' size, once the image is known (lookups)

    # ---- entry

    def run(self):
        p = self.params
        students = p["students"] or []
        problems = (cohort_problems(p["course"], students, p["concurrency"])
                    + key_problems(students, p["admin_public_keys"], p["state"])
                    + volume_option_problems(p))
        if problems:
            self.fail_json(msg="Nothing was changed: %s." % "; ".join(problems), problems=problems)
        self.widen_connection_pool(p["concurrency"])
        if p["state"] == "present":
            return self.present(students)
        return self.absent([s["id"] for s in students])

    def widen_connection_pool(self, concurrency):
        """One HTTP connection per thread and service: requests' default pool of 10 would make threads wait
        and log 'Connection pool is full' warnings."""
        try:
            import requests.adapters
            session = self.conn.session.session
            for scheme in ("http://", "https://"):
                session.mount(scheme, requests.adapters.HTTPAdapter(pool_connections=8,
                                                                    pool_maxsize=concurrency + 4))
        except (ImportError, AttributeError):
            pass

    def pool(self, fn, items):
        """fn(item) for every item, ``concurrency`` at a time; returns the results in order."""
        with ThreadPoolExecutor(max_workers=self.params["concurrency"]) as executor:
            return list(executor.map(fn, items))

    # ---- what exists: a handful of list calls for the whole cohort

    def survey(self):
        """The course's servers, keypairs, ports and floating IPs, each listed once, by student id."""
        course = self.params["course"]
        compute, network = self.conn.compute, self.conn.network
        found = {}

        def put(kind, resource):
            owner = classify(course, resource.name, kind)
            if owner and owner[0] == "student":
                found.setdefault(owner[1], {}).setdefault(kind + "s", []).append(resource)

        # Nova filters server names by regular expression.
        for server in compute.servers(details=True, name="^%s-" % course):
            put("server", server)
        for keypair in compute.keypairs():
            put("keypair", keypair)
        servers = dict((s.id, sid) for sid, f in found.items() for s in f.get("servers", []))
        ports_by_id = {}
        for port in network.ports():
            owner = classify(course, port.name, "port")
            if owner and owner[0] == "student":
                put("port", port)
            elif port.device_id in servers:  # a port Nova made for a server of an older run
                found[servers[port.device_id]].setdefault("ports", []).append(port)
            else:
                continue
            ports_by_id[port.id] = port
        students_of_port = dict((port.id, sid) for sid, f in found.items() for port in f.get("ports", []))
        for ip in network.ips():
            if ip.port_id in students_of_port:
                found[students_of_port[ip.port_id]].setdefault("floating_ips", []).append(ip)
        return found

    @staticmethod
    def pick(found):
        """One of each resource of a student (the others are extras a crashed run may have left)."""
        servers = found.get("servers", [])
        ports = found.get("ports", [])
        server = servers[0] if servers else None
        # The port the server uses, else an unattached one of the student's name.
        port = None
        if server is not None:
            port = next((p for p in ports if p.device_id == server.id), None)
        if port is None:
            port = next((p for p in ports if not p.device_id), None)
        fip = next((ip for ip in found.get("floating_ips", []) if port is not None and ip.port_id == port.id),
                   None)
        keypairs = found.get("keypairs", [])
        return {"server": server, "port": port, "floating_ip": fip,
                "keypair": keypairs[0] if keypairs else None}

    # ---- present

    def lookups(self, students):
        """Image, flavors, external network and the networks/security groups the ports go on; every problem
        at once, before anything is created."""
        p = self.params
        problems = []
        image = self.conn.image.find_image(p["image"], ignore_missing=True)
        if image is None:
            problems.append("image %s was not found" % p["image"])
        flavors = {}
        for name in sorted(set([p["flavor"]] + [s["flavor"] for s in students if s.get("flavor")])):
            flavor = self.conn.compute.find_flavor(name, ignore_missing=True)
            if flavor is None:
                problems.append("flavor %s was not found" % name)
            flavors[name] = flavor
        if image is not None and p["boot_from_volume"]:
            self.volume_gb = p["volume_size"] or max(1, image_disk_need_gb(image.to_dict(computed=False)))
            reasons = volume_fits(self.volume_gb, image.to_dict(computed=False))
            if reasons:
                problems.append("the boot volume is too small for image %s: %s; set volume_size to at least %d "
                                "or leave it unset" % (p["image"], "; ".join(reasons),
                                                       image_disk_need_gb(image.to_dict(computed=False))))
        for option, wanted in (("volume_type", p["boot_from_volume"]), ("student_volume_type", True)):
            if wanted and p[option] and self.conn.block_storage.find_type(p[option], ignore_missing=True) is None:
                problems.append("%s %s was not found" % (option.replace("_", " ") if option == "volume_type"
                                                         else option, p[option]))
        if p["student_volume_size"] and not self.conn.has_service("block-storage"):
            problems.append("student_volume_size needs the block-storage (Cinder) service, which this cloud's "
                            "catalog does not have")
        if not p["boot_from_volume"]:
            problems.extend("flavor %s has a 0 GB root disk, which Nova allows only for servers booted from a "
                            "volume: set boot_from_volume: true" % name
                            for name, flavor in sorted(flavors.items()) if flavor is not None and not flavor.disk)
        external = self.conn.network.find_network(p["external_network"], ignore_missing=True)
        if external is None or not external.is_router_external:
            problems.append("external network %s was not found or is not external" % p["external_network"])
        nets = dict((n.name, n) for n in self.conn.network.networks() if n.name and n.name.startswith(
            p["course"] + "-"))
        groups = dict((g.name, g) for g in self.conn.network.security_groups() if g.name and g.name.startswith(
            p["course"] + "-"))
        placement = {}
        missing = []
        for s in students:
            names = resource_names(p["course"], s["id"], p["topology"])
            net, group = nets.get(names["network"]), groups.get(names["security_group"])
            if net is None or group is None:
                missing.append(names["network"] if net is None else names["security_group"])
            placement[s["id"]] = (net, group)
        if missing:
            missing = sorted(set(missing))
            problems.append("the %s topology needs %s, which do not exist: make them first (role "
                            "coursevm.openstack.cloud_network, as playbooks/provision.yml does)"
                            % (p["topology"], ", ".join(missing[:5])
                               + (" and %d more" % (len(missing) - 5) if len(missing) > 5 else "")))
        if problems:
            self.fail_json(msg="Nothing was changed: %s." % "; ".join(problems), problems=problems)
        return image, flavors, external, placement

    def present(self, students):
        p = self.params
        image, flavors, external, placement = self.lookups(students)
        found = self.survey()
        results, diff_before, diff_after = {}, {}, {}
        work = []
        for s in students:
            sid = s["id"]
            names = resource_names(p["course"], sid, p["topology"])
            have = self.pick(found.get(sid, {}))
            actions = plan_student(sid, names, have)
            results[sid] = {"server": names["server"], "server_id": have["server"].id if have["server"] else None,
                            "status": have["server"].status if have["server"] else "ABSENT",
                            "fixed_ip": self.fixed_ip(have["port"]),
                            "floating_ip": have["floating_ip"].floating_ip_address if have["floating_ip"] else None,
                            "actions": actions, "changed": bool(actions), "error": None,
                            "boot_volume": self.boot_volume_of(have["server"]), "data_volume": None}
            diff_before[sid] = state_of(have)
            diff_after[sid] = dict((k, "present") for k in ("keypair", "port", "server", "floating_ip"))
            status = str(have["server"].status).upper() if have["server"] else None
            if actions or status == "BUILD":  # a server still building from an earlier run is waited for
                work.append((s, names, have))
            elif status != "ACTIVE":
                # SHUTOFF, PAUSED, ...: someone stopped it on purpose; say so, change nothing.
                self.warn("Server %s is %s, not ACTIVE: it was left as it is. Start it (openstack server start "
                          "%s) before configuring it." % (names["server"], status, names["server"]))

        data_volumes = self.course_volumes("data_volume") if p["student_volume_size"] else {}
        if self.check_mode:
            for s, names, have in work:
                if results[s["id"]]["actions"]:
                    results[s["id"]]["status"] = "PLANNED"
            for s in students if p["student_volume_size"] else []:
                self.plan_data_volume(data_volumes.get(s["id"], []), results[s["id"]])
            return self.finish(results, students, diff_before, diff_after)

        started = self.pool(lambda w: self.start_student(w[0], w[1], w[2], image, flavors, external,
                                                         placement, results[w[0]["id"]]), work)
        waiting = [w for w, ok in zip(work, started) if ok]
        self.wait_active(waiting, results)
        if p["boot_from_volume"]:
            self.pool(lambda w: self.name_boot_volume(w[0]["id"], w[1], results[w[0]["id"]]),
                      [w for w in waiting if results[w[0]["id"]]["status"] == "ACTIVE"])
        failed = [w for w in waiting if results[w[0]["id"]]["status"] == "ERROR"]
        if failed:
            self.pool(lambda w: self.explain_and_remove(w[0], w[1], results[w[0]["id"]], image), failed)
        if p["student_volume_size"]:
            self.pool(lambda s: self.data_volume(s["id"], data_volumes.get(s["id"], []), results[s["id"]]),
                      [s for s in students if results[s["id"]]["error"] is None
                       and str(results[s["id"]]["status"]).upper() == "ACTIVE"])
        return self.finish(results, students, diff_before, diff_after)

    @staticmethod
    def fixed_ip(port):
        if port is None or not port.fixed_ips:
            return None
        return port.fixed_ips[0].get("ip_address")

    def start_student(self, student, names, have, image, flavors, external, placement, result):
        """Make what is missing of one student, up to the server's creation (not its boot). True on success."""
        sid = student["id"]
        compute, network = self.conn.compute, self.conn.network
        net, group = placement[sid]
        made = []
        try:
            keys = authorized_keys(student.get("ssh_public_key"), self.params["admin_public_keys"])
            if have["keypair"] is None:
                compute.create_keypair(name=names["keypair"], public_key=keys[0])
                made.append("keypair")
            port = have["port"]
            if port is None:
                port = network.create_port(name=names["port"], network_id=net.id, security_group_ids=[group.id],
                                           description="coursevm %s/%s" % (self.params["course"], sid))
                made.append("port")
            result["fixed_ip"] = self.fixed_ip(port)
            if have["floating_ip"] is None:
                fip = network.create_ip(floating_network_id=external.id, port_id=port.id,
                                        description="coursevm %s/%s" % (self.params["course"], sid))
                made.append("floating_ip")
                result["floating_ip"] = fip.floating_ip_address
            server = have["server"]
            if server is not None and str(server.status).upper() == "ERROR":
                # Left by an earlier run: its cause may be fixed now, so it is made again.
                compute.delete_server(server.id, ignore_missing=True)
                self.wait_gone(lambda: compute.find_server(server.id, ignore_missing=True), names["server"])
                server = None
            if server is None:
                flavor = flavors[student.get("flavor") or self.params["flavor"]]
                metadata = dict(self.params["metadata"], coursevm_course=self.params["course"],
                                coursevm_student=sid)
                server = compute.create_server(
                    name=names["server"], flavor_id=flavor.id, key_name=names["keypair"],
                    networks=[{"port": port.id}], metadata=metadata,
                    user_data=self.encode(user_data(self.params["course"], sid, keys)), **self.boot_source(image))
                made.append("server")
            result["server_id"] = server.id
            result["status"] = server.status or "BUILD"
            return True
        except StudentFailed as exc:
            result["status"] = "ERROR"
            result["error"] = exc.error
            return False
        except Exception as exc:  # one student's failure must not stop the others
            if not self._is_cloud_error(exc):
                raise
            result["status"] = "ERROR"
            result["error"] = {"kind": "cloud", "explanation": "%s (%s)" % (
                what_went_wrong(exc), ("after making the " + ", ".join(made)) if made else "before making anything"),
                "next_step": "Run again once the cloud answers; what was made is reused."}
            return False

    def boot_source(self, image):
        """create_server's arguments that say what the server boots from: the image onto the flavor's disk, or a
        volume Nova makes from the image (block device mapping v2)."""
        p = self.params
        if not p["boot_from_volume"]:
            return {"image_id": image.id}
        mapping = {"boot_index": 0, "uuid": image.id, "source_type": "image", "destination_type": "volume",
                   "volume_size": self.volume_gb, "delete_on_termination": p["terminate_volume"]}
        if p["volume_type"]:
            mapping["volume_type"] = p["volume_type"]
        return {"block_device_mapping": [mapping]}

    @staticmethod
    def boot_volume_of(server):
        """The ID of a server's boot volume (the first attached: Nova attaches it first), or None for a server
        booted from an image (whose attached volumes are data volumes)."""
        if server is None:
            return None
        image = getattr(server, "image", None)
        image_id = image.get("id") if isinstance(image, dict) else getattr(image, "id", None)
        if image_id:
            return None
        volumes = getattr(server, "attached_volumes", None) or []
        return volumes[0].get("id") if volumes and isinstance(volumes[0], dict) else None

    def name_boot_volume(self, sid, names, result):
        """Nova leaves the volume it made unnamed: give it the student's name so that it can be found (and kept or
        removed) later."""
        try:
            server = self.conn.compute.get_server(result["server_id"])
            volume_id = self.boot_volume_of(server)
            if volume_id is None:
                return
            result["boot_volume"] = volume_id
            volume = self.conn.block_storage.get_volume(volume_id)
            if volume.name != names["boot_volume"]:
                self.conn.block_storage.update_volume(volume_id, name=names["boot_volume"])
                self.conn.block_storage.set_volume_metadata(
                    volume_id, coursevm_course=self.params["course"], coursevm_student=sid)
        except Exception as exc:
            if not self._is_cloud_error(exc):
                raise
            self.warn("The boot volume of %s could not be named %s (%s); the VM works, but teardown with "
                      "terminate_volume=false will not find it by name." % (names["server"], names["boot_volume"],
                                                                            what_went_wrong(exc)))

    # ---- the students' data volumes

    @staticmethod
    def data_volume_facts(volume, device=None):
        return {"id": volume.id, "name": volume.name, "size": volume.size, "device": device}

    @staticmethod
    def attachment_to(volume, server_id):
        """The volume's attachment to ``server_id`` (a dict with server_id and device), or None."""
        return next((a for a in volume.attachments or [] if a.get("server_id") == server_id), None)

    def plan_data_volume(self, volumes, result):
        """Check mode: what the data volume step would do."""
        volume = volumes[0] if volumes else None
        if volume is None:
            result["actions"].extend(["create data volume", "attach data volume"])
        elif result["server_id"] is None or self.attachment_to(volume, result["server_id"]) is None:
            result["actions"].append("attach data volume")
        else:
            return
        result["changed"] = True

    def data_volume(self, sid, volumes, result):
        """The student's data volume made (once) and attached to their ACTIVE server. A volume is never made twice
        nor taken from another server: a volume in use elsewhere is the student's error, with nothing changed."""
        p = self.params
        name = resource_names(p["course"], sid, p["topology"])["data_volume"]
        server_id = result["server_id"]
        if len(volumes) > 1:
            # Two of the same name (made by hand?): take the one on this server, else the oldest; never guess twice.
            volumes = sorted(volumes, key=lambda v: (self.attachment_to(v, server_id) is None, v.created_at or ""))
            self.warn("Student %s has %d volumes named %s; %s is used, the others are left alone."
                      % (sid, len(volumes), name, volumes[0].id))
        volume = volumes[0] if volumes else None
        try:
            if volume is None:
                volume = self.conn.block_storage.create_volume(
                    name=name, size=p["student_volume_size"], volume_type=p["student_volume_type"] or None,
                    description="coursevm %s/%s: the student's work, kept when the VM is rebuilt" % (p["course"], sid),
                    metadata={"coursevm_course": p["course"], "coursevm_student": sid, "coursevm_volume": "data"})
                result["actions"].append("create data volume")
                result["changed"] = True
            elif volume.size < p["student_volume_size"]:
                self.warn("The data volume %s is %d GB, smaller than student_volume_size (%d GB); it is used as it "
                          "is. Extend it by hand if the student needs more (openstack volume set --size)."
                          % (name, volume.size, p["student_volume_size"]))
            attachment = self.attachment_to(volume, server_id)
            if attachment is None:
                others = [a.get("server_id") for a in volume.attachments or []]
                if others:
                    raise StudentFailed({
                        "kind": "data_volume",
                        "explanation": "the data volume %s is attached to another server (%s), not to %s"
                                       % (name, ", ".join(others), result["server"]),
                        "next_step": "Find out why (openstack server show %s); once it is detached, run again."
                                     % others[0]})
                volume = self.wait_volume(volume.id, name, ("available",))
                made = self.conn.compute.create_volume_attachment(server_id, volume_id=volume.id)
                volume = self.wait_volume(volume.id, name, ("in-use",))
                attachment = self.attachment_to(volume, server_id) or {"device": made.device}
                result["actions"].append("attach data volume")
                result["changed"] = True
            result["data_volume"] = self.data_volume_facts(volume, attachment.get("device"))
        except StudentFailed as exc:
            result["error"] = exc.error
        except Exception as exc:
            if not self._is_cloud_error(exc):
                raise
            result["error"] = {"kind": "cloud", "explanation": "the data volume %s: %s" % (name, what_went_wrong(exc)),
                               "next_step": "Run again; the volume is found by its name and reused."}

    def wait_volume(self, volume_id, name, statuses):
        """The volume once its status is one of ``statuses``; a volume in error (or gone) is the student's error."""
        def settled(volume):
            return volume is None or str(volume.status).lower() in statuses + ("error", "error_extending")

        try:
            volume = wait_until(lambda: self.conn.block_storage.find_volume(volume_id, ignore_missing=True), settled,
                                self.params["timeout"], POLL_INTERVAL)
        except WaitTimeout as exc:
            raise StudentFailed({"kind": "timeout", "explanation": "the data volume %s was still %s after %s s" % (
                name, getattr(exc.last, "status", "not ready"), self.params["timeout"]),
                "next_step": "Run again; if it stays, `openstack volume show %s` tells why." % volume_id})
        if volume is None or str(volume.status).lower() not in statuses:
            raise StudentFailed({"kind": "data_volume",
                                 "explanation": "the data volume %s is %s" % (name, volume.status if volume else "gone"),
                                 "next_step": "Ask the cloud admins why (openstack volume show %s); the student's "
                                              "data is on it, so it is not replaced." % volume_id})
        return volume

    @staticmethod
    def encode(text):
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def poll_servers(self, pending, settled, timed_out):
        """One listing of the course's servers per round until ``settled(student, server or None)`` is true
        for every pending server ({server id: student id}), or the timeout runs out (then ``timed_out(student)``
        for each left)."""
        deadline = time.monotonic() + self.params["timeout"]
        while pending:
            listing = self.conn.compute.servers(details=True, name="^%s-" % self.params["course"])
            seen = dict((s.id, s) for s in listing)
            for server_id, sid in list(pending.items()):
                if settled(sid, seen.get(server_id)):
                    del pending[server_id]
            if not pending:
                return
            if time.monotonic() >= deadline:
                for sid in set(pending.values()):
                    timed_out(sid)
                return
            time.sleep(POLL_INTERVAL)

    def wait_active(self, waiting, results):
        """Every waited-for server ACTIVE or ERROR (a server deleted meanwhile is an error), or a timeout."""
        def settled(sid, server):
            status = "DELETED" if server is None else str(server.status).upper()
            results[sid]["status"] = "ERROR" if status == "DELETED" else status
            if status == "DELETED":
                results[sid]["error"] = {"kind": "deleted",
                                         "explanation": "the server %s was deleted while it was being built"
                                                        % results[sid]["server"],
                                         "next_step": "Run again to make it."}
            return status in ("ACTIVE", "ERROR", "DELETED")

        def timed_out(sid):
            results[sid]["error"] = {
                "kind": "timeout",
                "explanation": "server %s was still %s after %s s" % (
                    results[sid]["server"], results[sid]["status"], self.params["timeout"]),
                "next_step": "Raise timeout, or ask the cloud admins why servers build slowly; a re-run waits for "
                             "it again."}

        self.poll_servers(dict((results[w[0]["id"]]["server_id"], w[0]["id"]) for w in waiting), settled,
                          timed_out)

    def explain_and_remove(self, student, names, result, image):
        """A server in ERROR: the diagnosis, then the student's resources removed (remove_failed)."""
        sid = student["id"]
        if result["error"] is None:
            server = self.conn.compute.get_server(result["server_id"])
            flavors = [dict((k, f[k]) for k in ("id", "name", "vcpus", "ram", "disk"))
                       for f in self.conn.compute.flavors()]
            image_facts = dict((k, getattr(image, k, None)) for k in ("id", "name", "status", "min_disk",
                                                                      "min_ram", "size", "virtual_size"))
            kind, explanation, next_step, unused = explain_server_fault(
                names["server"], server.id, server.fault or {}, server.flavor, flavors, image_facts)
            result["error"] = {"kind": kind, "explanation": explanation, "next_step": next_step}
        if self.params["remove_failed"]:
            try:
                self.remove_student(sid, self.pick(self.survey_one(names)))
                result.update(server_id=None, floating_ip=None, fixed_ip=None, status="ABSENT")
                result["actions"].append("removed after the failure")
            except StudentFailed as exc:
                result["error"]["explanation"] += " Removing what was made failed too: %s" % exc
            except Exception as exc:
                if not self._is_cloud_error(exc):
                    raise
                result["error"]["explanation"] += (" Removing what was made failed too: %s; run again or "
                                                   "run teardown." % what_went_wrong(exc))

    def survey_one(self, names):
        """One student's resources (after a failure, when the cohort-wide listing is stale)."""
        compute, network = self.conn.compute, self.conn.network
        servers = [s for s in compute.servers(details=True, name="^%s$" % names["server"])
                   if s.name == names["server"]]
        ports = list(network.ports(name=names["port"]))
        ports += [port for s in servers for port in network.ports(device_id=s.id) if port.id not in
                  set(p.id for p in ports)]
        ips = [ip for port in ports for ip in network.ips(port_id=port.id)]
        keypair = compute.find_keypair(names["keypair"], ignore_missing=True)
        return {"servers": servers, "ports": ports, "floating_ips": ips, "keypairs": [keypair] if keypair else []}

    # ---- absent

    def absent(self, student_ids):
        found = self.survey()
        if not student_ids:
            # The whole course: also the students of whom only a kept boot or data volume is left.
            student_ids = sorted(set(found) | set(self.course_volumes("boot_volume"))
                                 | set(self.course_volumes("data_volume")))
        results, diff_before, diff_after = {}, {}, {}
        work = []
        for sid in student_ids:
            names = resource_names(self.params["course"], sid, self.params["topology"])
            have = found.get(sid, {})
            actions = ["remove %d %s" % (len(have.get(kind + "s", [])), kind.replace("_", " "))
                       for kind in ("floating_ip", "server", "port", "keypair") if have.get(kind + "s")]
            results[sid] = {"server": names["server"], "server_id": None, "status": "ABSENT", "fixed_ip": None,
                            "floating_ip": None, "actions": actions, "changed": bool(actions), "error": None,
                            "boot_volume": None, "data_volume": None}
            diff_before[sid] = state_of(self.pick(have))
            diff_after[sid] = dict((k, "absent") for k in ("keypair", "port", "server", "floating_ip"))
            if actions:
                work.append((sid, have))
        if not self.check_mode and work:
            def remove(item):
                sid, have = item
                try:
                    self.remove_student(sid, have, wait=False)
                except Exception as exc:
                    if not self._is_cloud_error(exc):
                        raise
                    results[sid]["error"] = {"kind": "cloud", "explanation": what_went_wrong(exc),
                                             "next_step": "Run again; what is left is found by its name."}
            self.pool(remove, work)
            self.wait_servers_gone(dict((s.id, sid) for sid, have in work for s in have.get("servers", [])
                                        if results[sid]["error"] is None), results)
            # Ports and keypairs go once their servers are gone (a port in use by a server cannot go first).
            self.pool(lambda item: self.remove_rest(item[0], item[1], results[item[0]]),
                      [w for w in work if results[w[0]]["error"] is None])
        kept = self.volumes_left("boot_volume", student_ids, results, self.params["terminate_volume"])
        kept_data = self.volumes_left("data_volume", student_ids, results, self.params["delete_data_volumes"])
        return self.finish(results, [{"id": sid} for sid in student_ids], diff_before, diff_after, kept, kept_data)

    def course_volumes(self, kind):
        """{student id: [volumes of ``kind`` named for them]} of the course; {} on a cloud without Cinder."""
        if not self.conn.has_service("block-storage"):
            return {}
        found = {}
        for volume in self.conn.block_storage.volumes(details=True):
            owner = classify(self.params["course"], volume.name, kind)
            if owner:
                found.setdefault(owner[1], []).append(volume)
        return found

    def volumes_left(self, kind, student_ids, results, delete):
        """After the servers are gone: the students' volumes of ``kind`` still there are deleted (``delete``; Nova
        deletes boot volumes it made so itself) and waited for, or counted as kept. A cloud without Cinder has
        none. Returns how many were kept."""
        left = self.students_volumes(kind, student_ids, results)
        if not delete:
            return len(left)
        what = kind.replace("_", " ")
        if self.check_mode:
            for sid, volume in left:
                results[sid]["actions"].append("remove " + what)
                results[sid]["changed"] = True
            return 0

        def remove(item):
            sid, volume = item
            try:
                self.conn.block_storage.delete_volume(volume.id, ignore_missing=True)
                results[sid]["actions"].append("remove " + what)
                results[sid]["changed"] = True
            except Exception as exc:
                if not self._is_cloud_error(exc):
                    raise
                results[sid]["error"] = {"kind": "cloud", "explanation": "the %s %s could not be deleted: %s"
                                                                         % (what, volume.name, what_went_wrong(exc)),
                                         "next_step": "Run again; if it stays, delete it (openstack volume delete "
                                                      "%s)." % volume.id}

        deadline = time.monotonic() + self.params["timeout"]
        asked = set()
        while left:
            # A volume becomes deletable once detached; those deleting already (Nova's) are only waited for.
            ready = [item for item in left if str(item[1].status).lower() in ("available", "error")
                     and item[1].id not in asked]
            asked.update(volume.id for unused, volume in ready)
            self.pool(remove, ready)
            if time.monotonic() >= deadline:
                for sid, volume in left:
                    results[sid]["error"] = results[sid]["error"] or {
                        "kind": "timeout",
                        "explanation": "the %s %s was still %s after %s s" % (
                            what, volume.name, volume.status, self.params["timeout"]),
                        "next_step": "Run again; if it stays, `openstack volume show %s` tells what holds it."
                                     % volume.id}
                break
            time.sleep(POLL_INTERVAL)
            left = self.students_volumes(kind, student_ids, results)
        return 0

    def students_volumes(self, kind, student_ids, results):
        """[(student id, volume of ``kind``)] of the students without an error so far."""
        volumes = self.course_volumes(kind)
        return [(sid, volume) for sid in student_ids for volume in volumes.get(sid, [])
                if results[sid]["error"] is None]

    def remove_student(self, sid, have, wait=True):
        """Floating IPs, then servers (waited for when ``wait``), then ports and keypair, of one student.

        ``have`` is a survey entry (lists) or a pick (single resources)."""
        compute, network = self.conn.compute, self.conn.network

        def many(kind):
            value = have.get(kind + "s", have.get(kind))
            return value if isinstance(value, list) else ([] if value is None else [value])

        for ip in many("floating_ip"):
            network.delete_ip(ip.id, ignore_missing=True)
        for server in many("server"):
            if not self.params["terminate_volume"]:
                self.keep_volumes_of(server)
            compute.delete_server(server.id, ignore_missing=True)
        if not wait:
            return
        for server in many("server"):
            self.wait_gone(lambda: compute.find_server(server.id, ignore_missing=True), server.name)
        for port in many("port"):
            network.delete_port(port.id, ignore_missing=True)
        for keypair in many("keypair"):
            compute.delete_keypair(keypair.name, ignore_missing=True)

    def keep_volumes_of(self, server):
        """Nova deletes a volume it made for a server with the server (delete_on_termination, set when it was made):
        turn that off first (compute API 2.85) so that the volume stays."""
        for attachment in getattr(server, "attached_volumes", None) or []:
            if isinstance(attachment, dict) and attachment.get("delete_on_termination"):
                self.conn.compute.update_volume_attachment(server.id, attachment["id"], delete_on_termination=False)

    def remove_rest(self, sid, have, result):
        try:
            for port in have.get("ports", []):
                self.conn.network.delete_port(port.id, ignore_missing=True)
            for keypair in have.get("keypairs", []):
                self.conn.compute.delete_keypair(keypair.name, ignore_missing=True)
        except Exception as exc:
            if not self._is_cloud_error(exc):
                raise
            result["error"] = {"kind": "cloud", "explanation": what_went_wrong(exc),
                               "next_step": "Run again; what is left is found by its name."}

    def wait_gone(self, fetch, name):
        try:
            wait_until(fetch, lambda server: server is None, self.params["timeout"], POLL_INTERVAL)
        except WaitTimeout:
            raise StudentFailed({"kind": "timeout", "explanation": "server %s was not deleted within %s s"
                                 % (name, self.params["timeout"]), "next_step": "Run again."})

    def wait_servers_gone(self, pending, results):
        """Every deleted server gone, or a timeout."""
        def timed_out(sid):
            results[sid]["error"] = {"kind": "timeout", "explanation": "server %s was not deleted within %s s"
                                     % (results[sid]["server"], self.params["timeout"]),
                                     "next_step": "Run again; ask the cloud admins if it stays."}

        self.poll_servers(pending, lambda sid, server: server is None, timed_out)

    # ---- the answer

    def finish(self, results, students, before, after, kept_volumes=0, kept_data_volumes=0):
        failed = [s["id"] for s in students if results[s["id"]]["error"] is not None]
        changed = any(r["changed"] for r in results.values())
        answer = dict(changed=changed, students=results, failed_students=failed,
                      public_addresses=sum(1 for r in results.values() if r["floating_ip"]),
                      kept_volumes=kept_volumes, kept_data_volumes=kept_data_volumes)
        if self.ansible._diff:
            answer["diff"] = {"before": before, "after": after}
        if failed:
            lines = ["%s: %s %s" % (sid, results[sid]["error"]["explanation"], results[sid]["error"]["next_step"])
                     for sid in failed]
            self.fail_json(msg="%d of %d students failed; the others are %s. %s" % (
                len(failed), len(students), "done" if not self.check_mode else "planned", " | ".join(lines)),
                **answer)
        return answer


def main():
    module = CohortModule()
    module()


if __name__ == "__main__":
    main()
