"""Boot from volume on the local cloud's Cinder (issue 18), through the playbooks and the modules.

The flavor m1.nodisk has a 0 GB root disk, as on clouds that back servers with Ceph volumes: Nova refuses to boot
an image onto it for anyone but an admin. provision.yml refuses it in preflight, before anything is made, unless
cohort_boot_from_volume is on; with it, each student's server boots from a volume Nova makes from the image,
named <course>-<student>-boot, whose data is a real file of the cloud's volume backend. Teardown removes the boot
volumes with the servers, or keeps them when asked, and a later teardown removes what was kept. Every resource is
named `t18-...`. With cohort_student_volume_size each student also gets a data volume, <course>-<student>-data,
attached to their server, attached again to the server that replaces it, and kept by teardown unless
teardown_volumes=true. That a volume is a real disk in the machine playing a server of course-vm, and keeps what the
VM wrote when it is attached to the server that replaces it, is shown end to end by tests/e2e/test_local_cohort.py
(a notebook saved through nginx survives a rebuild from a new image).
"""

import os

import pytest

import cohort_support
from cloud_support import CLOUD, GIB, IMAGE_MIN_DISK, IMAGE_NAME

COURSE = "t18"
PREFIX = COURSE + "-"
STUDENTS = ("s1", "s2", "s3")
VOLUMES_DIR = "/var/lib/coursevm-cloud/data/cinder/volumes"
TASK = "Provision every student's keypair, port, server and floating IP"
BFV = {"cohort_flavor": "m1.nodisk", "cohort_boot_from_volume": True}
DATA = dict(BFV, cohort_student_volume_size=1)


def volumes(conn):
    """The course's volumes, {name: volume}."""
    return dict((v.name, v) for v in conn.block_storage.volumes(details=True) if (v.name or "").startswith(PREFIX))


def remove_volumes(conn):
    """Safety net: the course's volumes (and unnamed ones of its servers are deleted with them by Nova)."""
    for volume in volumes(conn).values():
        if volume.status in ("available", "error"):
            conn.block_storage.delete_volume(volume, ignore_missing=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return cohort_support.make_keys(tmp_path_factory.mktemp("keys"), ("admin",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("boot-from-volume")


@pytest.fixture(scope="module")
def roster(files):
    return cohort_support.write_roster(files, "roster.csv",
                                       ["%s,Student %s,%s@example.edu," % (s, s, s) for s in STUDENTS])


@pytest.fixture(scope="module")
def run(env, files, keys):
    return cohort_support.playbook_runner(env, files, COURSE, keys["admin"])


@pytest.fixture(scope="module", autouse=True)
def clean(conn):
    cohort_support.remove_course(conn, PREFIX)
    remove_volumes(conn)
    yield
    cohort_support.remove_course(conn, PREFIX)
    remove_volumes(conn)


def test_a_zero_disk_flavor_is_refused_before_anything_is_made(run, roster, conn, nothing_created):
    status, unused, errors = run("provision.yml", cohort_roster=roster, cohort_flavor="m1.nodisk")
    assert status != 0
    # The refusal names the option that fixes it.
    assert any("m1.nodisk" in e and "boot_from_volume" in e for e in errors), errors
    assert volumes(conn) == {}


@pytest.fixture(scope="module")
def provisioned(run, roster):
    status, out, errors = run("provision.yml", cohort_roster=roster, **BFV)
    assert status == 0, errors
    return out


def test_each_server_boots_from_its_own_named_volume_kept_as_a_real_file(provisioned, conn):
    result = cohort_support.task_result(provisioned, TASK)
    assert result["failed_students"] == []
    found = volumes(conn)
    assert sorted(found) == [PREFIX + s + "-boot" for s in STUDENTS]
    for student in STUDENTS:
        server = conn.compute.find_server(PREFIX + student)
        assert server.status == "ACTIVE" and server.flavor["disk"] == 0
        assert not server.image.get("id")  # booted from the volume, not the image
        volume = found[PREFIX + student + "-boot"]
        assert [a["server_id"] for a in volume.attachments] == [server.id]
        assert volume.status == "in-use" and volume.is_bootable
        assert volume.volume_image_metadata["image_name"] == "cirros-like"
        assert volume.size == 1  # the smallest that holds cirros-like (1 GiB virtual)
        assert result["students"][student]["boot_volume"] == volume.id
        assert volume.metadata["coursevm_student"] == student
        # The backend keeps the volume as a sparse file of the volume's size.
        path = os.path.join(VOLUMES_DIR, "volume-%s" % volume.id)
        assert os.stat(path).st_size == GIB


def test_preflight_counts_a_volume_per_student_against_the_volume_quotas(provisioned, ansible):
    args = {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.nodisk", "count": 300, "boot_from_volume": True,
            "volume_size": 4, "check_quotas": True}
    result = ansible("preflight", args)
    assert result.get("failed") is True
    facts = result["facts"]
    assert facts["boot_volume"] == {"size": 4, "type": None}
    assert facts["cohort_needs"]["volumes"] == 300 and facts["cohort_needs"]["gigabytes"] == 1200
    assert facts["quotas"]["volumes"]["used"] >= len(STUDENTS)
    limit = facts["quotas"]["volumes"]["limit"]
    assert facts["environments_that_fit"] <= limit - facts["quotas"]["volumes"]["used"]
    assert any("volumes quota" in p for p in result["problems"]), result["problems"]


def test_a_boot_volume_smaller_than_the_image_is_refused(provisioned, ansible, test_image, nothing_created):
    args = {"cloud": CLOUD, "image": IMAGE_NAME, "flavor": "m1.nodisk", "boot_from_volume": True,
            "volume_size": IMAGE_MIN_DISK - 1, "check_quotas": False}
    result = ansible("preflight", args)
    assert result.get("failed") is True and len(result["problems"]) == 1
    assert "volume_size" in result["problems"][0]
    args["volume_size"] = IMAGE_MIN_DISK
    assert ansible("preflight", args).get("failed") is not True
    # The cohort module refuses it too, before making anything.
    cohort = ansible("cohort", {"cloud": CLOUD, "course": COURSE, "students": [{"id": "s9"}], "image": IMAGE_NAME,
                                "flavor": "m1.nodisk", "boot_from_volume": True, "volume_size": 1,
                                "admin_public_keys": [], "state": "present"})
    assert cohort.get("failed") is True and cohort.get("changed") is not True


@pytest.fixture(scope="module")
def with_data_volumes(provisioned, run, roster):
    status, out, errors = run("provision.yml", cohort_roster=roster, **DATA)
    assert status == 0, errors
    return out


def test_each_student_gets_a_data_volume_of_their_own_attached_to_their_server(with_data_volumes, conn):
    result = cohort_support.task_result(with_data_volumes, TASK)
    found = volumes(conn)
    for student in STUDENTS:
        server = conn.compute.find_server(PREFIX + student)
        data = found[PREFIX + student + "-data"]
        assert data.status == "in-use" and [a["server_id"] for a in data.attachments] == [server.id]
        assert data.size == 1 and not data.is_bootable
        assert data.metadata == {"coursevm_course": COURSE, "coursevm_student": student, "coursevm_volume": "data"}
        answer = result["students"][student]
        assert answer["data_volume"]["id"] == data.id and answer["data_volume"]["device"].startswith("/dev/")
        # Attached second, it is not taken for the boot volume.
        assert answer["boot_volume"] == found[PREFIX + student + "-boot"].id
        assert answer["actions"] == ["create data volume", "attach data volume"]


def test_a_rerun_changes_nothing_boot_or_data_volumes_included(with_data_volumes, run, roster, conn):
    before = dict((name, v.id) for name, v in volumes(conn).items())
    status, out, errors = run("provision.yml", cohort_roster=roster, **DATA)
    assert status == 0, errors
    assert cohort_support.changed_total(out) == 0
    assert dict((name, v.id) for name, v in volumes(conn).items()) == before


def test_a_replaced_server_gets_the_same_data_volume_back(with_data_volumes, run, roster, conn):
    data = volumes(conn)[PREFIX + "s2-data"]
    old = conn.compute.find_server(PREFIX + "s2")
    conn.compute.delete_server(old)
    conn.compute.wait_for_delete(old, wait=180)
    assert conn.block_storage.get_volume(data.id).status == "available"  # Nova let go of it, and kept it
    status, out, errors = run("provision.yml", cohort_roster=roster, **DATA)
    assert status == 0, errors
    new = conn.compute.find_server(PREFIX + "s2")
    assert new.id != old.id
    again = volumes(conn)[PREFIX + "s2-data"]
    assert again.id == data.id and [a["server_id"] for a in again.attachments] == [new.id]
    result = cohort_support.task_result(out, TASK)["students"]["s2"]
    assert "create data volume" not in result["actions"] and "attach data volume" in result["actions"]


def test_preflight_counts_only_the_data_volumes_still_to_be_made(with_data_volumes, ansible):
    args = {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.nodisk", "boot_from_volume": True,
            "course": COURSE, "students": list(STUDENTS) + ["s4"], "count": 4, "student_volume_size": 3,
            "check_quotas": True}
    facts = ansible("preflight", args)["facts"]
    assert facts["data_volumes"] == {"size": 3, "type": None, "missing": 1}
    # s4's boot volume (1 GB) and data volume (3 GB).
    assert facts["cohort_needs"]["volumes"] == 2 and facts["cohort_needs"]["gigabytes"] == 4


def test_teardown_of_one_student_can_keep_the_boot_volume(with_data_volumes, run, conn):
    kept = volumes(conn)[PREFIX + "s1-boot"]
    data = volumes(conn)[PREFIX + "s1-data"]
    status, out, errors = run("teardown.yml", teardown_student="s1", teardown_keep_boot_volumes=True)
    assert status == 0, errors
    assert conn.compute.find_server(PREFIX + "s1") is None
    volume = conn.block_storage.get_volume(kept.id)
    assert volume.status == "available" and volume.attachments == []
    removed = cohort_support.task_result(out, "Remove every student's floating IP, server, port and keypair")
    assert removed["kept_volumes"] == 1 and removed["kept_data_volumes"] == 1
    assert conn.block_storage.get_volume(data.id).status == "available"  # the student's work stays
    # The others are untouched.
    assert all(volumes(conn)[PREFIX + s + "-boot"].status == "in-use" for s in ("s2", "s3"))


def test_teardown_of_the_course_keeps_the_data_volumes_until_asked(with_data_volumes, run, conn):
    boot = [v.id for name, v in volumes(conn).items() if name.endswith("-boot")]
    data = dict((name, v.id) for name, v in volumes(conn).items() if name.endswith("-data"))
    assert len(boot) == 3 and all(os.path.exists(os.path.join(VOLUMES_DIR, "volume-" + i)) for i in boot)
    status, out, errors = run("teardown.yml", teardown_whole_course=True)
    assert status == 0, errors
    removed = cohort_support.task_result(out, "Remove every student's floating IP, server, port and keypair")
    assert removed["kept_volumes"] == 0 and removed["kept_data_volumes"] == 3
    assert dict((name, v.id) for name, v in volumes(conn).items()) == data
    assert all(v.status == "available" for v in volumes(conn).values())
    assert not any(os.path.exists(os.path.join(VOLUMES_DIR, "volume-" + i)) for i in boot)
    # Asked: the data volumes go, and nothing of the course is left.
    status, out, errors = run("teardown.yml", teardown_whole_course=True, teardown_volumes=True)
    assert status == 0, errors
    assert cohort_support.left_over(conn, PREFIX) == {}
    assert volumes(conn) == {}
    assert not any(os.path.exists(os.path.join(VOLUMES_DIR, "volume-" + i)) for i in data.values())
