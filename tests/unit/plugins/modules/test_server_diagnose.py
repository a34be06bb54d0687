"""server_diagnose's fault translation, with the fault texts Nova really writes."""

import pytest

from ansible_collections.coursevm.openstack.plugins.module_utils import faults as sd

GIB = 1024 ** 3
TINY = {"id": "t", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}
SMALL = {"id": "s", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 10}
COURSE = {"id": "c", "name": "m1.course", "vcpus": 2, "ram": 2048, "disk": 20}
HUGE = {"id": "h", "name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100}
FLAVORS = [HUGE, COURSE, SMALL, TINY]
IMAGE = {"name": "course-vm", "status": "active", "min_disk": 10, "min_ram": 1024, "size": 300000,
         "virtual_size": 8 * GIB}


@pytest.mark.parametrize("message,kind", [
    ("No valid host was found. ", "no_host"),
    ("No valid host was found. There are not enough hosts available.", "no_host"),
    ("Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for "
     "instance 5c6e.", "no_host"),
    ("Exceeded maximum number of retries. Exceeded max scheduling attempts 3 for instance 5c6e.", "no_host"),
    ("Build of instance 5c6e aborted: Flavor's disk is too small for requested image. Flavor disk is "
     "1073741824 bytes, image is 8589934592 bytes.", "disk_too_small"),
    ("Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is 1073741824 "
     "bytes, minimum size is 10737418240 bytes.", "disk_too_small"),
    ("Flavor's memory is too small for requested image.", "ram_too_small"),
    ("Image 1f2e could not be found.", "image"),
    ("Image 1f2e is not active.", "image"),
    ("Quota exceeded for cores: Requested 4, but already used 200 of 200 cores", "quota"),
    ("Build of instance 5c6e aborted: Failed to allocate the network(s), not rescheduling.", "network"),
    ("Binding failed for port 9a, please check neutron logs for more information.", "network"),
    ("Unexpected error while running command.", "unknown"),
    ("", "unknown"),
    (None, "unknown"),
])
def test_classify_fault(message, kind):
    assert sd.classify_fault(message) == kind


def test_no_valid_host_names_the_flavor_size_and_smaller_fitting_flavors():
    kind, explanation, step, fitting = sd.explain_fault("No valid host was found. ", HUGE, IMAGE, FLAVORS)
    assert kind == "no_host"
    assert explanation == ("No hypervisor has room for flavor m1.huge (64 vCPU, 524288 MB RAM, 100 GB disk): the "
                           "scheduler found no host with that many free vCPUs, that much free RAM and disk (Nova "
                           "said: No valid host was found).")
    # smaller than m1.huge and big enough for the image; m1.tiny is too small for it
    assert fitting == ["m1.small", "m1.course"]
    assert step == ("Pick a smaller flavor that still fits the image (m1.small, m1.course), or ask the cloud "
                    "admins for more capacity.")


def test_no_valid_host_on_the_smallest_fitting_flavor_asks_for_capacity():
    kind, dummy, step, fitting = sd.explain_fault("No valid host was found.", SMALL, IMAGE, FLAVORS)
    assert kind == "no_host"
    assert fitting == []
    assert step == "Pick a smaller flavor, or ask the cloud admins for more capacity for this flavor."


def test_disk_too_small_names_both_sizes_and_the_flavors_that_fit():
    msg = "Flavor's disk is too small for requested image. Flavor disk is 1073741824 bytes, image is 8589934592."
    kind, explanation, step, fitting = sd.explain_fault(msg, TINY, IMAGE, FLAVORS)
    assert kind == "disk_too_small"
    assert explanation.startswith("Flavor m1.tiny is too small for image course-vm: its disk is 1 GB but the "
                                  "image needs 10 GB (min_disk 10 GB, virtual size 8589934592 bytes)")
    assert fitting == ["m1.small", "m1.course", "m1.huge"]
    assert step == "Use a flavor that fits: m1.small, m1.course, m1.huge."


def test_ram_too_small_names_min_ram():
    kind, explanation = sd.explain_fault("Flavor's memory is too small for requested image.", TINY, IMAGE,
                                         FLAVORS)[:2]
    assert kind == "ram_too_small"
    assert "its RAM is 512 MB but the image needs 1024 MB (min_ram)" in explanation


def test_deleted_image_says_it_no_longer_exists():
    kind, explanation, step, dummy = sd.explain_fault("Image 1f2e could not be found.", COURSE, None, FLAVORS)
    assert kind == "image"
    assert "which no longer exists" in explanation
    assert step.startswith("Upload the image again")


def test_quota_points_at_preflight():
    step = sd.explain_fault("Quota exceeded for instances", COURSE, IMAGE, FLAVORS)[2]
    assert "coursevm.openstack.preflight" in step


def test_unknown_fault_is_shown_raw():
    kind, explanation, step, dummy = sd.explain_fault("Something\n odd happened", COURSE, IMAGE, FLAVORS)
    assert kind == "unknown"
    assert explanation == "The server failed to boot; Nova recorded: Something odd happened."
    assert "quoting the server's ID" in step


def test_embedded_flavor_of_new_microversions_is_used_when_the_id_is_absent():
    embedded = {"original_name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100, "ephemeral": 0}
    assert sd.flavor_of_server(embedded, FLAVORS) == {"name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100}


def test_flavor_id_of_old_microversions_is_looked_up():
    assert sd.flavor_of_server({"id": "c", "links": []}, FLAVORS) is COURSE
    assert sd.flavor_of_server(None, FLAVORS) is None
