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
    ("Network 0b7d4e2a-6f7c-4c1e-9d3a-5b2f8e1c0a9d could not be found.", "network"),
    ("Port 9a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b could not be found.", "network"),
    ("No valid network found for the requested networks.", "network"),
    ("Build of instance 5c6e aborted: Network 0b7d could not be found.", "network"),
    ("Security group default not found.", "network"),
    ("Unexpected error while running command.", "unknown"),
    ("", "unknown"),
    (None, "unknown"),
])
def test_classify_fault(message, kind):
    assert sd.classify_fault(message) == kind


def test_no_valid_host_names_the_flavor_size_and_smaller_fitting_flavors():
    kind, explanation, step, fitting = sd.explain_fault("No valid host was found. ", HUGE, IMAGE, FLAVORS)
    assert kind == "no_host"
    # smaller than m1.huge and big enough for the image; m1.tiny is too small for it
    assert fitting == ["m1.small", "m1.course"]
    # The reader gets the facts: which flavor and how big, what Nova said, and the flavors to try instead.
    for fact in ("m1.huge", "64 vCPU", "524288 MB", "100 GB", "No valid host was found"):
        assert fact in explanation
    assert all(name in step for name in fitting) and "m1.tiny" not in step


def test_no_valid_host_on_the_smallest_fitting_flavor_asks_for_capacity():
    kind, dummy, step, fitting = sd.explain_fault("No valid host was found.", SMALL, IMAGE, FLAVORS)
    assert kind == "no_host"
    assert fitting == []
    assert not any(flavor["name"] in step for flavor in FLAVORS)  # no flavor to switch to is offered


def test_disk_too_small_names_both_sizes_and_the_flavors_that_fit():
    msg = "Flavor's disk is too small for requested image. Flavor disk is 1073741824 bytes, image is 8589934592."
    kind, explanation, step, fitting = sd.explain_fault(msg, TINY, IMAGE, FLAVORS)
    assert kind == "disk_too_small"
    for fact in ("m1.tiny", "course-vm", "1 GB", "10 GB", "8589934592"):
        assert fact in explanation
    assert fitting == ["m1.small", "m1.course", "m1.huge"]
    assert all(name in step for name in fitting)


def test_ram_too_small_names_min_ram():
    kind, explanation, step, fitting = sd.explain_fault("Flavor's memory is too small for requested image.", TINY,
                                                        IMAGE, FLAVORS)
    assert kind == "ram_too_small"
    assert "512 MB" in explanation and "1024 MB" in explanation
    assert fitting == ["m1.small", "m1.course", "m1.huge"]


def test_deleted_image_is_an_image_fault_with_no_flavor_to_offer():
    kind, explanation, step, fitting = sd.explain_fault("Image 1f2e could not be found.", COURSE, None, FLAVORS)
    assert kind == "image"
    assert "Image 1f2e could not be found" in explanation and fitting == []


@pytest.mark.parametrize("message", [
    "Network 0b7d4e2a-6f7c-4c1e-9d3a-5b2f8e1c0a9d could not be found.",
    "Port 9a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b could not be found.",
    "No valid network found for the requested networks.",
])
def test_a_missing_network_or_port_is_a_network_fault_not_an_image_one(message):
    """Issue 14: 'could not be found' about a network or a port said 'upload the image again'."""
    kind, explanation, step, fitting = sd.explain_fault(message, COURSE, IMAGE, FLAVORS)
    assert kind == "network" and fitting == []
    assert " ".join(message.split()).rstrip(".") in explanation
    assert (kind, explanation, step) != sd.explain_fault("Image 1f2e could not be found.", COURSE, IMAGE,
                                                         FLAVORS)[:3]


def test_quota_points_at_preflight():
    kind, explanation, step, fitting = sd.explain_fault("Quota exceeded for instances", COURSE, IMAGE, FLAVORS)
    assert kind == "quota" and fitting == []
    assert "coursevm.openstack.preflight" in step  # the module to run, a name rather than prose


def test_unknown_fault_is_shown_raw():
    kind, explanation, step, fitting = sd.explain_fault("Something\n odd happened", COURSE, IMAGE, FLAVORS)
    assert kind == "unknown" and fitting == []
    assert "Something odd happened" in explanation  # Nova's words, whitespace folded
    assert step


def test_a_server_without_a_fault_record_is_unknown():
    kind, explanation, step, fitting = sd.explain_server_fault("course-ada", "5c6e", {}, None, FLAVORS, IMAGE)
    assert kind == "unknown" and fitting == []
    assert "course-ada" in explanation and "5c6e" in step


def test_embedded_flavor_of_new_microversions_is_used_when_the_id_is_absent():
    embedded = {"original_name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100, "ephemeral": 0}
    assert sd.flavor_of_server(embedded, FLAVORS) == {"name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100}


def test_flavor_id_of_old_microversions_is_looked_up():
    assert sd.flavor_of_server({"id": "c", "links": []}, FLAVORS) is COURSE
    assert sd.flavor_of_server(None, FLAVORS) is None
