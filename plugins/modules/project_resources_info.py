#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: project_resources_info
short_description: List a project's servers, keypairs, networks, subnets, routers, security groups, ports, floating IPs and volumes at once
version_added: 0.4.0
author:
  - coursevm.openstack contributors (@coursevm)
description:
  - Lists, with one connection and one authentication, what nine openstack.cloud info modules list one module
    run each (M(openstack.cloud.server_info), M(openstack.cloud.keypair_info), M(openstack.cloud.networks_info),
    M(openstack.cloud.subnets_info), M(openstack.cloud.routers_info), M(openstack.cloud.security_group_info),
    M(openstack.cloud.port_info), M(openstack.cloud.floating_ip_info), M(openstack.cloud.volume_info)), each with
    no filter (volumes only when the cloud has a block-storage service), and returns each list
    in the shape that module returns.
  - Every module run starts Python, imports openstacksdk and authenticates anew; a teardown lists all of these
    twice (what to remove, then that nothing is left), so one run instead of nine is what makes it quick.
  - Read only; check mode lists as well.
extends_documentation_fragment:
  - openstack.cloud.openstack
attributes:
  check_mode:
    support: full
    description: Lists the same in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - What the project's credentials can see, as the openstack.cloud info modules list it (for networks, shared
    and external networks too). Pick out a course's resources with the P(coursevm.openstack.course_resources#filter)
    filter.
"""

EXAMPLES = r"""
- name: List what the project has
  coursevm.openstack.project_resources_info:
    cloud: mycloud
  register: listed

- name: The servers of course ds101
  ansible.builtin.debug:
    msg: "{{ listed.servers | coursevm.openstack.course_resources('ds101', 'server') | map(attribute='name') }}"
"""

RETURN = r"""
servers:
  description: The project's servers, as M(openstack.cloud.server_info) returns them.
  returned: success
  type: list
  elements: dict
keypairs:
  description: The user's keypairs, as M(openstack.cloud.keypair_info) returns them.
  returned: success
  type: list
  elements: dict
networks:
  description: The networks the project sees, as M(openstack.cloud.networks_info) returns them.
  returned: success
  type: list
  elements: dict
subnets:
  description: The subnets the project sees, as M(openstack.cloud.subnets_info) returns them.
  returned: success
  type: list
  elements: dict
routers:
  description: The project's routers, as M(openstack.cloud.routers_info) returns them.
  returned: success
  type: list
  elements: dict
security_groups:
  description: The security groups the project sees, as M(openstack.cloud.security_group_info) returns them.
  returned: success
  type: list
  elements: dict
ports:
  description: The ports the project sees, as M(openstack.cloud.port_info) returns them.
  returned: success
  type: list
  elements: dict
floating_ips:
  description: The project's floating IPs, as M(openstack.cloud.floating_ip_info) returns them.
  returned: success
  type: list
  elements: dict
volumes:
  description: The project's volumes, as M(openstack.cloud.volume_info) returns them; empty on a cloud without a
    block-storage (Cinder) service.
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.coursevm.openstack.plugins.module_utils.cloud import CourseVMCloudModule


def as_dicts(resources):
    """Each resource as the openstack.cloud info modules return it."""
    return [r.to_dict(computed=False) if hasattr(r, "to_dict") else r for r in resources]


class ProjectResourcesInfoModule(CourseVMCloudModule):
    argument_spec = dict()
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        conn = self.conn
        # The same calls, with the same (absent) filters, as the openstack.cloud modules named in the docs.
        return dict(
            changed=False,
            servers=as_dicts(conn.search_servers(name_or_id=None)),
            keypairs=as_dicts(conn.search_keypairs(name_or_id=None, filters={})),
            networks=as_dicts(conn.search_networks(name_or_id=None, filters=None)),
            subnets=as_dicts(conn.network.subnets()),
            routers=as_dicts(conn.search_routers(name_or_id=None, filters=None)),
            security_groups=as_dicts(conn.network.security_groups()),
            ports=as_dicts(conn.search_ports(name_or_id=None, filters=None)),
            floating_ips=as_dicts(conn.network.ips()),
            volumes=as_dicts(conn.block_storage.volumes(details=True)) if conn.has_service("block-storage") else [],
        )


def main():
    module = ProjectResourcesInfoModule()
    module()


if __name__ == "__main__":
    main()
