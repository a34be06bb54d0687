"""project_resources_info against the local cloud: the nine lists teardown.yml reads, in one module run, each in
the shape the openstack.cloud info module of its kind returns (the same keys for the same resource), in check mode
too, and an unknown cloud refused by name.

Resources are made with openstacksdk and named `t5a-lists-...`; the other streams of the cloud phase change the
project meanwhile, so only this test's own resources are compared."""

import pytest

from cloud_support import CLOUD, PREFIX

NAME = PREFIX + "lists"


@pytest.fixture(scope="module")
def made(conn):
    """A network, its subnet, a port on it, a router, a security group, a keypair and a volume, all named NAME."""
    network = conn.network.create_network(name=NAME)
    subnet = conn.network.create_subnet(name=NAME, network_id=network.id, ip_version=4, cidr="10.253.7.0/24")
    port = conn.network.create_port(name=NAME, network_id=network.id)
    router = conn.network.create_router(name=NAME)
    group = conn.network.create_security_group(name=NAME)
    keypair = conn.compute.create_keypair(name=NAME)
    volume = conn.block_storage.create_volume(name=NAME, size=1)
    conn.block_storage.wait_for_status(volume, "available", wait=120)
    yield {"networks": network.id, "subnets": subnet.id, "ports": port.id, "routers": router.id,
           "security_groups": group.id, "keypairs": keypair.name, "volumes": volume.id}
    conn.block_storage.delete_volume(volume, ignore_missing=True)
    conn.compute.delete_keypair(keypair, ignore_missing=True)
    conn.network.delete_security_group(group, ignore_missing=True)
    conn.network.delete_router(router, ignore_missing=True)
    conn.network.delete_port(port, ignore_missing=True)
    conn.network.delete_subnet(subnet, ignore_missing=True)
    conn.network.delete_network(network, ignore_missing=True)


# kind -> (openstack.cloud module, the key of its list, the key that identifies an entry)
INFO = {
    "networks": ("networks_info", "networks", "id"),
    "subnets": ("subnets_info", "subnets", "id"),
    "ports": ("port_info", "ports", "id"),
    "routers": ("routers_info", "routers", "id"),
    "security_groups": ("security_group_info", "security_groups", "id"),
    "keypairs": ("keypair_info", "keypairs", "name"),
    "volumes": ("volume_info", "volumes", "id"),
}


def openstack_cloud(env, module, args):
    import json
    import sys

    from ansible_json import run_json  # tests/support
    from cloud_support import ROOT

    cmd = ["ansible", "localhost", "-m", "openstack.cloud." + module, "-a", json.dumps(args),
           "-e", "ansible_python_interpreter=" + sys.executable]
    return run_json(cmd, env, read=lambda out: out["plays"][0]["tasks"][0]["hosts"]["localhost"], cwd=ROOT)[1]


@pytest.fixture(scope="module")
def listed(ansible, made):  # pylint: disable=unused-argument
    return ansible("project_resources_info", {"cloud": CLOUD})


def test_every_list_is_there_and_nothing_changed(listed):
    assert listed.get("failed") is not True, listed
    assert listed["changed"] is False
    assert set(("servers", "keypairs", "networks", "subnets", "routers", "security_groups", "ports",
                "floating_ips", "volumes")) <= set(listed)


@pytest.mark.parametrize("kind", sorted(INFO))
def test_each_resource_has_the_shape_its_openstack_cloud_module_gives(listed, made, env, kind):
    module, key, ident = INFO[kind]
    ours = [r for r in listed[kind] if r[ident] == made[kind]]
    theirs = openstack_cloud(env, module, {"cloud": CLOUD, "name": NAME})
    theirs = [r for r in theirs[key] if r[ident] == made[kind]]
    assert len(ours) == 1 and len(theirs) == 1, (ours, theirs)
    assert sorted(ours[0]) == sorted(theirs[0])
    assert ours[0]["name"] == theirs[0]["name"] == NAME


def test_the_public_network_and_the_project_servers_are_listed(listed, conn):
    assert "public" in [n["name"] for n in listed["networks"]]
    assert all("id" in s and "name" in s for s in listed["servers"])
    assert all("floating_ip_address" in ip and "port_id" in ip for ip in listed["floating_ips"])
    assert conn.current_project_id  # the listing is the project's own


def test_check_mode_lists_the_same(ansible, made):
    checked = ansible("project_resources_info", {"cloud": CLOUD}, check=True)
    assert checked["changed"] is False
    assert made["networks"] in [n["id"] for n in checked["networks"]]


def test_an_unknown_cloud_is_refused_by_name(ansible):
    result = ansible("project_resources_info", {"cloud": "no-such-cloud"})
    assert result["failed"] is True
    assert "no-such-cloud" in result["msg"] and "known_clouds" in result
