"""project_resources_info returns each resource as the openstack.cloud info modules do: to_dict(computed=False)
of openstacksdk's resource, plain dicts as they are."""

from openstack.network.v2.port import Port

from ansible_collections.coursevm.openstack.plugins.modules import project_resources_info as pri


def test_a_resource_becomes_its_dict_without_computed_attributes():
    port = Port(id="p1", name="ds101-alice", network_id="n1", device_id="s1")
    (listed,) = pri.as_dicts([port])
    assert listed == port.to_dict(computed=False)
    assert (listed["id"], listed["name"], listed["network_id"]) == ("p1", "ds101-alice", "n1")
    assert "location" not in listed  # a computed attribute


def test_plain_dicts_pass_through_and_order_is_kept():
    assert pri.as_dicts([{"id": "b"}, {"id": "a"}]) == [{"id": "b"}, {"id": "a"}]
    assert pri.as_dicts([]) == []


def test_the_module_takes_no_option_of_its_own_and_supports_check_mode():
    assert not pri.ProjectResourcesInfoModule.argument_spec
    assert pri.ProjectResourcesInfoModule.module_kwargs["supports_check_mode"] is True
