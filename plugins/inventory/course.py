# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: course
short_description: The course VMs of one course on OpenStack, one host per student
version_added: 0.4.0
description:
  - Lists one course's servers on an OpenStack cloud through openstacksdk (servers whose metadata
    C(coursevm_course) is O(course), as the cohort module and C(deploy.yml) make them) and makes each a host named
    like its server, C(<course>-<student>), reached at its floating IP. Every later job of a course (reset_password,
    configure, egress_tunnel, health, rebuild, teardown) then runs against a deployed cohort without a hand-written
    inventory.
  - Host variables - C(ansible_host) (the floating IP), C(ansible_user), C(ansible_ssh_private_key_file),
    C(ansible_python_interpreter), C(credentials_student) and C(credentials_course) (what the credentials role and
    the playbooks read), and C(coursevm_server_id), C(coursevm_server_status), C(coursevm_floating_ip),
    C(coursevm_fixed_ip), C(coursevm_image_id), C(coursevm_problem) (why a VM is not ready, or null), and
    C(coursevm_data_volume) (the student's data volume attached to the VM, with id, name, size and device, or null;
    what configure.yml mounts).
  - Groups - C(course_vms) holds the VMs that are ACTIVE and have a floating IP (the group every playbook targets);
    C(course_<course>) holds every student of the course found in the cloud; C(coursevm_not_ready) holds the
    students whose server is not ACTIVE, has no floating IP, or is gone while its port or floating IP is left.
    Those are named in a warning, never dropped silently.
  - The configuration file's name must end in C(coursevm.yml) or C(coursevm.yaml), e.g. C(course.coursevm.yml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
requirements:
  - openstacksdk >= 4.1
options:
  plugin:
    description: This plugin's name, so Ansible's C(auto) inventory plugin hands the file to it.
    type: str
    required: true
    choices: [coursevm.openstack.course]
  cloud:
    description:
      - The cloud's name in clouds.yaml (found as openstacksdk finds it; C(OS_CLIENT_CONFIG_FILE) names another).
    type: str
    required: true
    env:
      - name: OS_CLOUD
  course:
    description: The course id (1-20 characters of a-z, 0-9 and C(_)), as given to C(deploy.yml) (C(cohort_course)).
    type: str
    required: true
  vm_user:
    description: The VM's account that holds the course team's key (C(cohort_vm_user) of C(deploy.yml)).
    type: str
    default: vagrant
  private_key_file:
    description:
      - The private key Ansible logs in with (C(cohort_admin_private_key_file) of C(deploy.yml)); by default ssh's
        own choice.
    type: path
  python:
    description: The VM's Python.
    type: str
    default: /usr/bin/python3
  known_hosts_file:
    description:
      - The course's known_hosts on the controller (C(cohort_known_hosts_file); by default C(known_hosts) in the
        course's secrets folder), where C(deploy.yml) recorded each VM's host key on first contact. Given, every
        host checks its VM's key against it (a VM first met here is recorded, accept-new); a changed key stops
        the connection.
      - Not given, Ansible's own settings apply (this collection's C(ansible.cfg) does not check host keys).
    type: path
"""

EXAMPLES = r"""
# inventory/mycourse/course.coursevm.yml; group_vars/ beside it keep the course's other settings
# (credentials_secrets_dir, jupyter_install_from, ...), so every day-two playbook runs with `-i inventory/mycourse`.
plugin: coursevm.openstack.course
cloud: mycloud
course: tm351
vm_user: debian
private_key_file: ~/.ssh/course_team_ed25519

# Keep the listing for 10 minutes (Ansible's inventory cache) and group the VMs by image.
# plugin: coursevm.openstack.course
# cloud: mycloud
# course: tm351
# cache: true
# cache_plugin: ansible.builtin.jsonfile
# cache_connection: ~/.cache/coursevm-inventory
# cache_timeout: 600
# keyed_groups:
#   - key: coursevm_image_id
#     prefix: image
"""

import os  # noqa: E402  # pylint: disable=wrong-import-position
import shlex  # noqa: E402  # pylint: disable=wrong-import-position

from ansible.errors import AnsibleParserError  # noqa: E402  # pylint: disable=wrong-import-position
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402  # pylint: disable=wrong-import-position

from ansible_collections.coursevm.openstack.plugins.module_utils.names import (  # noqa: E402  # pylint: disable=wrong-import-position
    BadName, COURSE_ID_RULE, STUDENT_ID_RE, check_course, resource_names, server_name)

READY_GROUP = "course_vms"
NOT_READY_GROUP = "coursevm_not_ready"


def course_hosts(course, servers, ports, floating_ips, volumes=()):
    """The course's students as host records, from plain listings (pure, unit-tested).

    ``servers``: dicts with id, name, status, metadata, image_id; ``ports``: dicts with id, name, device_id,
    device_owner, fixed_ips (list of ip addresses); ``floating_ips``: dicts with floating_ip_address, port_id;
    ``volumes``: dicts with id, name, size, attachments (dicts with server_id, device).
    Returns {host name: record}, a record holding student, server_id, status, floating_ip, fixed_ip, image_id,
    data_volume (the student's <course>-<student>-data volume attached to the server, as the cohort module returns
    it, or None) and problem (None when the VM is ACTIVE with a floating IP).
    """
    prefix = "%s-" % course
    fip_of_port = dict((ip["port_id"], ip["floating_ip_address"]) for ip in floating_ips if ip.get("port_id"))
    hosts = {}
    for server in servers:
        meta = server.get("metadata") or {}
        student = meta.get("coursevm_student", "")
        if meta.get("coursevm_course") != course or not STUDENT_ID_RE.match(student or ""):
            continue
        name = server_name(course, student)
        mine = [p for p in ports if p.get("device_id") == server["id"]]
        fips = [fip_of_port[p["id"]] for p in mine if p["id"] in fip_of_port]
        fixed = [ip for p in mine for ip in p.get("fixed_ips") or []]
        record = dict(student=student, server_id=server["id"], status=server.get("status") or "UNKNOWN",
                      floating_ip=fips[0] if fips else None, fixed_ip=fixed[0] if fixed else None,
                      image_id=server.get("image_id"), data_volume=None, problem=None)
        for volume in volumes:
            attached = [a for a in volume.get("attachments") or [] if a.get("server_id") == server["id"]]
            if volume.get("name") == resource_names(course, student)["data_volume"] and attached:
                record["data_volume"] = dict(id=volume["id"], name=volume["name"], size=volume.get("size"),
                                             device=attached[0].get("device"))
        if record["status"] != "ACTIVE":
            record["problem"] = "server is %s, not ACTIVE" % record["status"]
        elif not fips:
            record["problem"] = "server has no floating IP"
        hosts[name] = record
    # A student's port (and floating IP) left without its server: a failed run or a server deleted by hand.
    for port in ports:
        name = port.get("name") or ""
        student = name[len(prefix):]
        if not name.startswith(prefix) or not STUDENT_ID_RE.match(student) or name in hosts:
            continue
        if port.get("device_owner") and not port["device_owner"].startswith("compute:"):
            continue  # a router's or DHCP's port, not a student's
        if port.get("device_id") and any(s["id"] == port["device_id"] for s in servers):
            continue  # another course's or a hand-made server: not ours to name
        hosts[name] = dict(student=student, server_id=None, status="MISSING",
                           floating_ip=fip_of_port.get(port["id"]),
                           fixed_ip=(port.get("fixed_ips") or [None])[0], image_id=None, data_volume=None,
                           problem="no server (its port%s is left)" % (
                               " and floating IP" if port["id"] in fip_of_port else ""))
    return hosts


def host_key_vars(known_hosts_file):
    """The connection variables that check a VM's host key against the course's known_hosts (as deploy.yml's
    playbooks/tasks/vm_hosts.yml sets them): recorded on first contact, refused when changed."""
    return dict(ansible_host_key_checking=True, coursevm_known_hosts_file=known_hosts_file,
                ansible_ssh_args="-o ControlMaster=auto -o ControlPersist=60s -o LogLevel=ERROR "
                                 "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s"
                                 % shlex.quote(known_hosts_file))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "coursevm.openstack.course"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(("coursevm.yml", "coursevm.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        course = self.get_option("course")
        try:
            check_course(course)
        except BadName:
            raise AnsibleParserError("%s: course must be %s." % (path, COURSE_ID_RULE))

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        listing = None
        if use_cache and cache:
            try:
                listing = self._cache[cache_key]
            except KeyError:
                listing = None
        if listing is None:
            listing = self._list(path)
            if use_cache:
                self._cache[cache_key] = listing
        self._populate(course, listing)

    def _list(self, path):
        """The course's servers, ports and floating IPs, as plain dicts (what the cache keeps)."""
        try:
            import openstack  # pylint: disable=import-outside-toplevel  # only a listing needs the SDK
            from openstack import config as sdk_config  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise AnsibleParserError("The coursevm.openstack.course inventory needs openstacksdk (pip install openstacksdk).")
        cloud = self.get_option("cloud")
        try:
            known = sdk_config.OpenStackConfig().get_cloud_names()
        except Exception as exc:  # a clouds.yaml that does not parse
            raise AnsibleParserError("%s: cannot read clouds.yaml: %s" % (path, " ".join(str(exc).split())))
        if cloud not in known:
            raise AnsibleParserError(
                "%s: cloud %r is not defined in clouds.yaml (%s); the clouds defined are: %s. Fix the cloud name, or "
                "point OS_CLIENT_CONFIG_FILE at the clouds.yaml that defines it."
                % (path, cloud, os.environ.get("OS_CLIENT_CONFIG_FILE", "openstacksdk's search path"),
                   ", ".join(sorted(known)) or "none"))
        try:
            conn = openstack.connect(cloud=cloud)
            project = conn.current_project_id
            servers = [dict(id=s.id, name=s.name, status=s.status, metadata=dict(s.metadata or {}),
                            image_id=(s.image or {}).get("id"))
                       for s in conn.compute.servers(details=True)]
            ports = [dict(id=p.id, name=p.name, device_id=p.device_id, device_owner=p.device_owner,
                          fixed_ips=[ip.get("ip_address") for ip in p.fixed_ips or []])
                     for p in conn.network.ports(project_id=project)]
            fips = [dict(floating_ip_address=ip.floating_ip_address, port_id=ip.port_id)
                    for ip in conn.network.ips(project_id=project)]
            # The students' data volumes (cohort_student_volume_size), so a day-two configure.yml mounts them.
            volumes = [dict(id=v.id, name=v.name, size=v.size,
                            attachments=[dict(server_id=a.get("server_id"), device=a.get("device"))
                                         for a in v.attachments or []])
                       for v in (conn.block_storage.volumes(details=True) if conn.has_service("block-storage")
                                 else []) if (v.name or "").endswith("-data")]
        except Exception as exc:  # keystoneauth/SDK errors: one line, the cloud named
            raise AnsibleParserError("%s: listing the servers of cloud %r failed: %s: %s"
                                     % (path, cloud, type(exc).__name__, " ".join(str(exc).split())))
        return dict(servers=servers, ports=ports, floating_ips=fips, volumes=volumes)

    def _populate(self, course, listing):
        hosts = course_hosts(course, listing["servers"], listing["ports"], listing["floating_ips"],
                             listing.get("volumes", []))
        course_group = self.inventory.add_group("course_%s" % course)
        ready_group = self.inventory.add_group(READY_GROUP)
        not_ready_group = self.inventory.add_group(NOT_READY_GROUP)
        strict = self.get_option("strict")
        for name in sorted(hosts):
            record = hosts[name]
            self.inventory.add_host(name, group=course_group)
            self.inventory.add_child(ready_group if record["problem"] is None else not_ready_group, name)
            hostvars = dict(
                ansible_connection="ssh", ansible_user=self.get_option("vm_user"),
                ansible_python_interpreter=self.get_option("python"),
                credentials_student=record["student"], credentials_course=course,
                coursevm_server_id=record["server_id"], coursevm_server_status=record["status"],
                coursevm_floating_ip=record["floating_ip"], coursevm_fixed_ip=record["fixed_ip"],
                coursevm_image_id=record["image_id"], coursevm_problem=record["problem"],
                coursevm_data_volume=record["data_volume"])
            if record["floating_ip"]:
                hostvars["ansible_host"] = record["floating_ip"]
            if self.get_option("private_key_file"):
                hostvars["ansible_ssh_private_key_file"] = self.get_option("private_key_file")
            if self.get_option("known_hosts_file"):
                hostvars.update(host_key_vars(self.get_option("known_hosts_file")))
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
        not_ready = ["%s (%s)" % (name, hosts[name]["problem"]) for name in sorted(hosts) if hosts[name]["problem"]]
        if not_ready:
            self.display.warning("Course %s: %d VM(s) not ready, in group %s: %s"
                                 % (course, len(not_ready), NOT_READY_GROUP, "; ".join(not_ready)))
