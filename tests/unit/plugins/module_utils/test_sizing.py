"""Size and quota arithmetic shared by preflight and server_diagnose."""

import pytest

from ansible_collections.coursevm.openstack.plugins.module_utils import sizing

GIB = 1024 ** 3
# The local cloud's flavors (tests/cloud/README.md) plus one with a zero disk.
FLAVORS = [
    {"name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100},
    {"name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
    {"name": "m1.course", "vcpus": 2, "ram": 2048, "disk": 20},
    {"name": "m1.nodisk", "vcpus": 1, "ram": 1024, "disk": 0},
]
COURSE_IMAGE = {"name": "course-vm", "min_disk": 10, "min_ram": 1024, "size": 3 * GIB + 5, "virtual_size": 8 * GIB}


@pytest.mark.parametrize("num_bytes,gb", [(None, None), (0, 0), (1, 1), (GIB, 1), (GIB + 1, 2), (196624, 1)])
def test_gib_ceil_rounds_up_to_whole_gib(num_bytes, gb):
    assert sizing.gib_ceil(num_bytes) == gb


def test_disk_need_is_the_largest_of_min_disk_virtual_and_stored_size():
    assert sizing.image_disk_need_gb(COURSE_IMAGE) == 10
    assert sizing.image_disk_need_gb({"min_disk": 0, "virtual_size": 8 * GIB + 1, "size": GIB}) == 9
    assert sizing.image_disk_need_gb({"min_disk": None, "virtual_size": None, "size": 2 * GIB}) == 2
    assert sizing.image_disk_need_gb({}) == 0


def test_a_big_enough_flavor_fits():
    assert sizing.flavor_fits(FLAVORS[2], COURSE_IMAGE) == []


def test_tiny_flavor_fails_on_min_disk_virtual_size_stored_size_and_ram():
    reasons = sizing.flavor_fits(FLAVORS[1], COURSE_IMAGE)
    assert len(reasons) == 3
    assert "1 GB disk but the image requires at least 10 GB (its min_disk)" in reasons[0]
    assert "virtual size is 8 GB (8589934592 bytes)" in reasons[1]
    assert "512 MB of RAM but the image requires at least 1024 MB (its min_ram)" in reasons[2]


def test_stored_size_is_reported_only_when_larger_than_the_virtual_size():
    raw = {"name": "raw", "min_disk": 0, "size": 3 * GIB, "virtual_size": None}
    assert sizing.flavor_fits({"name": "f", "disk": 2, "ram": 1}, raw) == [
        "flavor f has a 2 GB disk but the image file alone is 3 GB"]


def test_virtual_size_exactly_the_disk_fits():
    assert sizing.flavor_fits({"name": "f", "disk": 1, "ram": 512},
                              {"min_disk": 0, "virtual_size": GIB, "size": 196624}) == []


def test_zero_disk_flavor_never_fits_an_image_boot():
    reasons = sizing.flavor_fits(FLAVORS[3], {"min_disk": 0})
    assert reasons == ["flavor m1.nodisk has a 0 GB root disk, which Nova allows only for servers booted "
                       "from a volume"]


def test_flavors_that_fit_are_sorted_smallest_first_and_bounded():
    small = {"min_disk": 0, "min_ram": 0, "virtual_size": GIB}
    assert sizing.flavors_that_fit(FLAVORS, small) == ["m1.tiny", "m1.course", "m1.huge"]
    assert sizing.flavors_that_fit(FLAVORS, COURSE_IMAGE) == ["m1.course", "m1.huge"]
    assert sizing.flavors_that_fit(FLAVORS, small, max_vcpus=2) == ["m1.tiny", "m1.course"]
    assert sizing.flavors_that_fit(FLAVORS, small, max_ram=600, max_disk=100) == ["m1.tiny"]
    assert sizing.flavors_that_fit(FLAVORS, {"min_disk": 500}) == []


def test_describe_flavor():
    assert sizing.describe_flavor(FLAVORS[2]) == "m1.course (2 vCPU, 2048 MB RAM, 20 GB disk)"


def test_quota_shortfalls_count_used_and_reserved_and_skip_unlimited():
    quotas = {
        "instances": {"limit": 40, "used": 5, "reserved": 1},
        "routers": {"limit": 10, "used": 0, "reserved": 0},
        "cores": {"limit": -1, "used": 100, "reserved": 0},
        "ram": {"limit": None, "used": 0},
    }
    needs = {"instances": 35, "routers": 11, "cores": 10000, "ram": 1, "floating_ips": 99}
    assert sizing.quota_shortfalls(needs, quotas) == [("instances", 35, 34, 40, 6), ("routers", 11, 10, 10, 0)]


def test_quota_fully_used_leaves_zero_free_not_negative():
    assert sizing.quota_shortfalls({"routers": 1}, {"routers": {"limit": 2, "used": 3}}) == [
        ("routers", 1, 0, 2, 3)]


def test_booting_from_a_volume_any_disk_fits_and_only_ram_counts():
    assert sizing.flavor_fits(FLAVORS[3], COURSE_IMAGE, boot_from_volume=True) == []
    assert sizing.flavor_fits(FLAVORS[1], COURSE_IMAGE, boot_from_volume=True) == [
        "flavor m1.tiny has 512 MB of RAM but the image requires at least 1024 MB (its min_ram)"]
    assert sizing.flavors_that_fit(FLAVORS, COURSE_IMAGE, boot_from_volume=True) == [
        "m1.nodisk", "m1.course", "m1.huge"]
    assert "m1.nodisk" not in sizing.flavors_that_fit(FLAVORS, COURSE_IMAGE)


@pytest.mark.parametrize("volume_gb, problems", [(10, 0), (11, 0), (9, 1), (7, 2)])
def test_a_boot_volume_must_hold_min_disk_and_the_virtual_size(volume_gb, problems):
    # COURSE_IMAGE: min_disk 10, virtual size 8 GiB.
    assert len(sizing.volume_fits(volume_gb, COURSE_IMAGE)) == problems
    assert sizing.volume_fits(8, {"min_disk": 0, "virtual_size": 8 * GIB}) == []
    assert len(sizing.volume_fits(8, {"min_disk": 0, "virtual_size": 8 * GIB + 1})) == 1
