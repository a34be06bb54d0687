"""server_diagnose and server_snapshot against real servers of the local cloud (fake hypervisor).

Servers are made with openstacksdk (`networks="none"`: no network is needed to boot on the fake driver);
the modules under test run through Ansible.
"""

import pytest

from cloud_support import CLOUD, PREFIX

SNAPSHOT_OF = "coursevm_snapshot_of"


def boot(conn, name, flavor, wait_active=True):
    server = conn.compute.create_server(name=name, image_id=conn.image.find_image("cirros-like").id,
                                        flavor_id=conn.compute.find_flavor(flavor).id, networks="none")
    if wait_active:
        server = conn.compute.wait_for_server(server, wait=120)
    return server


@pytest.fixture
def huge_server(conn, test_image):
    """A server on m1.huge, created without waiting: the scheduler finds no host and it goes to ERROR."""
    server = boot(conn, PREFIX + "huge", "m1.huge", wait_active=False)
    yield server
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, wait=120)


@pytest.fixture(scope="module")
def source_server(conn, test_image):
    server = boot(conn, PREFIX + "snapsrc", "m1.tiny")
    yield server
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, wait=120)


def test_huge_flavor_ends_in_error_explained_and_removed(ansible, conn, huge_server):
    result = ansible("server_diagnose", {"cloud": CLOUD, "server": huge_server.name, "timeout": 120})
    assert result["failed"] is True and result["changed"] is True
    diagnosis = result["diagnosis"]
    assert diagnosis["status"] == "ERROR" and diagnosis["kind"] == "no_host"
    assert diagnosis["fault_message"].startswith("No valid host was found")
    assert diagnosis["explanation"].startswith(
        "No hypervisor has room for flavor m1.huge (64 vCPU, 524288 MB RAM, 100 GB disk)")
    assert diagnosis["next_step"] == ("Pick a smaller flavor that still fits the image (m1.tiny, m1.course), or "
                                      "ask the cloud admins for more capacity.")
    assert result["msg"] == "Server %s failed to boot. %s %s The failed server was deleted." % (
        huge_server.name, diagnosis["explanation"], diagnosis["next_step"])
    assert diagnosis["deleted"] is True and diagnosis["server_id"] == huge_server.id
    assert conn.compute.find_server(huge_server.id, ignore_missing=True) is None


def test_check_mode_and_delete_failed_false_keep_the_failed_server(ansible, conn, huge_server):
    checked = ansible("server_diagnose", {"cloud": CLOUD, "server": huge_server.id}, check=True)
    assert checked["failed"] is True and checked["diagnosis"]["kind"] == "no_host"
    assert checked["diagnosis"]["deleted"] is False and checked["msg"].endswith("The failed server would be deleted.")
    kept = ansible("server_diagnose", {"cloud": CLOUD, "server": huge_server.id, "delete_failed": False})
    assert kept["failed"] is True and kept["changed"] is False and kept["msg"].endswith("The failed server was kept.")
    assert conn.compute.get_server(huge_server.id).status == "ERROR"


def test_active_server_is_fine_and_untouched(ansible, conn, source_server):
    result = ansible("server_diagnose", {"cloud": CLOUD, "server": source_server.name})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["diagnosis"]["status"] == "ACTIVE"
    assert conn.compute.get_server(source_server.id).status == "ACTIVE"


def test_missing_server_is_a_clear_error(ansible):
    result = ansible("server_diagnose", {"cloud": CLOUD, "server": PREFIX + "no-such-server"})
    assert result["failed"] is True
    assert result["msg"] == ("There is no server t5a-no-such-server in this project. Check the server's name, and "
                             "that it was created in this project.")


def snapshots_of(conn, server):
    return sorted(i.name for i in conn.image.images(owner=conn.current_project_id)
                  if (i.properties or {}).get(SNAPSHOT_OF) == server.id)


def test_snapshot_becomes_an_active_image_once_and_rotation_keeps_the_newest(ansible, conn, source_server):
    first = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "name": PREFIX + "snap-1",
                                        "metadata": {"course": "t5a"}})
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True and first["deleted"] == []
    image = conn.image.get_image(first["image"]["id"])
    assert image.status == "active" and image.name == PREFIX + "snap-1"
    assert image.properties[SNAPSHOT_OF] == source_server.id and image.properties["course"] == "t5a"

    again = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "name": PREFIX + "snap-1"})
    assert again["changed"] is False and again["image"]["id"] == image.id
    assert snapshots_of(conn, source_server) == [PREFIX + "snap-1"]

    second = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "name": PREFIX + "snap-2"})
    assert second["changed"] is True
    assert snapshots_of(conn, source_server) == [PREFIX + "snap-1", PREFIX + "snap-2"]

    # check mode: a third (default-named) snapshot with keep=1 would leave only itself
    checked = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "keep": 1}, check=True)
    assert checked["changed"] is True and checked["image"] is None
    assert [d["name"] for d in checked["deleted"]] == [PREFIX + "snap-1", PREFIX + "snap-2"]
    assert snapshots_of(conn, source_server) == [PREFIX + "snap-1", PREFIX + "snap-2"]

    third = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "name": PREFIX + "snap-3",
                                        "keep": 1})
    assert third["changed"] is True and third["image"]["status"] == "active"
    assert [d["name"] for d in third["deleted"]] == [PREFIX + "snap-1", PREFIX + "snap-2"]
    assert snapshots_of(conn, source_server) == [PREFIX + "snap-3"]


def test_a_series_rotates_snapshots_of_different_servers(ansible, conn, source_server):
    """A course's golden images: each made from a new builder server, rotated together by their series."""
    other = boot(conn, PREFIX + "snapsrc2", "m1.tiny")
    series = PREFIX + "golden"
    try:
        made = []
        for server, name in ((source_server, "g-1"), (other, "g-2"), (source_server, "g-3")):
            result = ansible("server_snapshot", {"cloud": CLOUD, "server": server.name, "name": PREFIX + name,
                                                 "series": series, "keep": 2})
            assert not result.get("failed"), result.get("msg")
            made.append(result)
        assert made[2]["image"]["properties"]["coursevm_snapshot_series"] == series
        assert [d["name"] for d in made[2]["deleted"]] == [PREFIX + "g-1"]
        left = sorted(i.name for i in conn.image.images(owner=conn.current_project_id)
                      if (i.properties or {}).get("coursevm_snapshot_series") == series)
        assert left == [PREFIX + "g-2", PREFIX + "g-3"]
    finally:
        for image in list(conn.image.images(owner=conn.current_project_id)):
            if (image.properties or {}).get("coursevm_snapshot_series") == series:
                conn.image.delete_image(image, ignore_missing=True)
        conn.compute.delete_server(other, ignore_missing=True)
        conn.compute.wait_for_delete(other, wait=120)


def test_snapshot_name_taken_by_another_image_is_refused(ansible, source_server, test_image):
    result = ansible("server_snapshot", {"cloud": CLOUD, "server": source_server.name, "name": test_image.name})
    assert result["failed"] is True
    assert result["msg"] == ("An image named t5a-image already exists and is not a snapshot of server t5a-snapsrc. "
                             "Choose another name, or delete that image.")


def test_snapshot_of_an_unknown_server_is_a_clear_error(ansible):
    result = ansible("server_snapshot", {"cloud": CLOUD, "server": PREFIX + "no-such-server"})
    assert result["failed"] is True
    assert result["msg"] == "There is no server t5a-no-such-server in this project to snapshot. Check its name."


def test_missing_server_can_be_ignored_for_rescue_blocks(ansible):
    result = ansible("server_diagnose", {"cloud": CLOUD, "server": PREFIX + "no-such-server", "ignore_missing": True})
    assert not result.get("failed") and result["changed"] is False
    assert result["diagnosis"]["status"] == "MISSING"
