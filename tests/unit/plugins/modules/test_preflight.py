"""preflight's pure parts: what a cohort needs, quota sentences, size sentences, the one summary message."""

from ansible_collections.coursevm.openstack.plugins.modules import preflight

GIB = 1024 ** 3
COURSE = {"name": "m1.course", "vcpus": 2, "ram": 2048, "disk": 20}
TINY = {"name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}
HUGE = {"name": "m1.huge", "vcpus": 64, "ram": 524288, "disk": 100}
FLAVORS = [HUGE, TINY, COURSE]
IMAGE = {"name": "course-vm", "min_disk": 5, "min_ram": 1024, "size": 200000, "virtual_size": 2 * GIB}
# The local cloud's quotas after the default security group exists (tests/cloud/README.md).
QUOTAS = {
    "instances": {"limit": 40, "used": 0, "reserved": 0},
    "cores": {"limit": 200, "used": 0, "reserved": 0},
    "ram": {"limit": 1048576, "used": 0, "reserved": 0},
    "key_pairs": {"limit": 100, "used": 0, "reserved": 0},
    "networks": {"limit": 100, "used": 0, "reserved": 0},
    "subnets": {"limit": 100, "used": 0, "reserved": 0},
    "routers": {"limit": 10, "used": 0, "reserved": 0},
    "security_groups": {"limit": 10, "used": 1, "reserved": 0},
    "security_group_rules": {"limit": 100, "used": 4, "reserved": 0},
    "ports": {"limit": 500, "used": 0, "reserved": 0},
    "floating_ips": {"limit": 50, "used": 0, "reserved": 0},
}


def test_one_environment_needs_one_of_each_and_the_flavor_size():
    needs = preflight.per_environment_needs(COURSE, 4)
    assert needs == {"instances": 1, "key_pairs": 1, "networks": 1, "subnets": 1, "routers": 1,
                     "security_groups": 1, "security_group_rules": 6, "ports": 3, "floating_ips": 1,
                     "cores": 2, "ram": 2048}


def test_unknown_flavor_leaves_cores_and_ram_out():
    assert "cores" not in preflight.per_environment_needs(None, 4)


def test_cohort_needs_scale_with_count_and_add_a_missing_default_group():
    needs = preflight.cohort_needs(COURSE, 30, 3)
    assert needs["instances"] == 30 and needs["ram"] == 61440 and needs["security_group_rules"] == 150
    first = preflight.cohort_needs(COURSE, 30, 3, default_group_exists=False)
    assert first["security_groups"] == 31 and first["security_group_rules"] == 154


def test_environments_that_fit_is_bounded_by_the_tightest_quota():
    # routers (10) bind before security groups (9 free) do: 9
    assert preflight.environments_that_fit(COURSE, 4, QUOTAS) == 9
    roomy = dict(QUOTAS, routers={"limit": -1}, security_groups={"limit": -1},
                 security_group_rules={"limit": -1})
    assert preflight.environments_that_fit(COURSE, 4, roomy) == 40  # instances
    assert preflight.environments_that_fit(COURSE, 4, {}) is None


def test_quota_problems_name_the_quota_the_numbers_and_the_next_step():
    needs = preflight.cohort_needs(COURSE, 12, 4)
    problems = preflight.quota_problems(needs, QUOTAS, 12)
    assert [p.split(" quota")[0] for p in problems] == ["The project's routers", "The project's security_groups"]
    assert problems[0] == ("The project's routers quota is too small: 12 environments need 12 routers, but only "
                           "10 are free (limit 10, 0 in use). Ask the cloud admins to raise the routers quota to "
                           "at least 12, or provision fewer students.")
    assert "raise the security_groups quota to at least 13" in problems[1]


def test_a_cohort_that_fits_has_no_quota_problem():
    assert preflight.quota_problems(preflight.cohort_needs(COURSE, 9, 4), QUOTAS, 9) == []


def test_size_problem_lists_every_reason_and_the_flavors_that_fit():
    problems = preflight.size_problems(IMAGE, TINY, FLAVORS)
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith("Flavor m1.tiny is too small for image course-vm: ")
    assert "at least 5 GB (its min_disk)" in text
    assert "virtual size is 2 GB" in text
    assert "512 MB of RAM but the image requires at least 1024 MB" in text
    assert text.endswith("Use a flavor that fits: m1.course, m1.huge.")


def test_size_problem_without_any_fitting_flavor_says_to_ask_for_one():
    text = preflight.size_problems(dict(IMAGE, min_disk=500), COURSE, FLAVORS)[0]
    assert "No flavor of this cloud fits; ask the cloud admins for a larger flavor" in text


def test_a_fitting_flavor_has_no_size_problem():
    assert preflight.size_problems(IMAGE, COURSE, FLAVORS) == []


def test_summary_lists_all_problems_numbered_on_one_line():
    msg = preflight.summary(["Image x was not found.", "Flavor y was not found."])
    assert msg == ("Preflight found 2 problems; nothing was created: (1) Image x was not found. "
                   "(2) Flavor y was not found.")
    assert preflight.summary(["Only one."]) == "Preflight found a problem; nothing was created: Only one."


class FakeConn:
    """Just enough of an openstacksdk Connection for read_quotas: the compute quota API answers 403, as on
    clouds whose policy hides quotas from project members (the local cloud lets them read it, so the fault is
    injected here)."""

    current_project_id = "p1"

    class compute:
        @staticmethod
        def get_quota_set(project, usage=False):
            from openstack import exceptions
            raise exceptions.ForbiddenException(message="Policy doesn't allow os_compute_api:os-quota-sets:show")

    class network:
        @staticmethod
        def get_quota(project, details=False):
            class Quota:
                routers = {"limit": 10, "used": 2, "reserved": 0}
            return Quota()

        @staticmethod
        def security_groups(**query):
            return iter([])


def test_a_forbidden_quota_api_is_a_warning_and_the_rest_is_still_checked():
    import openstack

    module = object.__new__(preflight.PreflightModule)
    warnings = []
    module.sdk, module.conn, module.warn = openstack, FakeConn(), warnings.append
    quotas, default_group = module.read_quotas()
    assert quotas == {"routers": {"limit": 10, "used": 2, "reserved": 0}}
    assert default_group is False
    assert len(warnings) == 1
    assert warnings[0].startswith("Could not read the project's compute quotas, so they were not checked: "
                                  "The cloud forbids this for your user")


def test_long_name_lists_are_cut_with_a_count():
    assert preflight.some([]) == "none"
    assert preflight.some(["a", "b"]) == "a, b"
    assert preflight.some([str(i) for i in range(20)], limit=3) == "0, 1, 2 and 17 more"


# ---- topologies: the shared course network is counted once, and the public addresses -------------------

def test_a_shared_student_needs_a_server_keypair_port_and_floating_ip_only():
    assert preflight.per_environment_needs(COURSE, 2, "shared") == {
        "instances": 1, "key_pairs": 1, "ports": 1, "floating_ips": 1, "cores": 2, "ram": 2048}


def test_a_shared_cohort_of_fifty_needs_one_router_and_one_security_group():
    needs = preflight.cohort_needs(COURSE, 50, 2, topology="shared")
    assert needs["routers"] == 1 and needs["security_groups"] == 1 and needs["networks"] == 1
    assert needs["ports"] == 52 and needs["floating_ips"] == 50 and needs["instances"] == 50
    again = preflight.cohort_needs(COURSE, 5, 2, topology="shared", course_network_exists=True)
    assert "routers" not in again and again["ports"] == 5
    # The default quotas (10 routers, 10 security groups) hold 50 shared students, not 50 isolated ones.
    roomy = dict(QUOTAS, instances={"limit": 100, "used": 0}, cores={"limit": 400, "used": 0},
                 ram={"limit": 10 ** 6, "used": 0}, floating_ips={"limit": 100, "used": 0})
    assert preflight.quota_problems(needs, roomy, 50) == []
    isolated = preflight.quota_problems(preflight.cohort_needs(COURSE, 50, 2), roomy, 50)
    assert [p.split(" quota")[0] for p in isolated] == [
        "The project's routers", "The project's security_groups", "The project's security_group_rules"]


def test_students_that_fit_count_the_course_network_once():
    roomy = dict(QUOTAS, instances={"limit": 100, "used": 0}, cores={"limit": 400, "used": 0},
                 ram={"limit": 10 ** 6, "used": 0}, floating_ips={"limit": 60, "used": 0})
    assert preflight.environments_that_fit(COURSE, 2, roomy, "shared", course_network_exists=False) == 60
    assert preflight.environments_that_fit(COURSE, 2, dict(roomy, ports={"limit": 50, "used": 0}), "shared",
                                           course_network_exists=False) == 48


def test_public_addresses_are_one_per_student_plus_the_course_router():
    assert preflight.public_addresses(50, "shared") == 51
    assert preflight.public_addresses(50, "shared", course_network_exists=True) == 50
    assert preflight.public_addresses(50, "isolated") == 100


NODISK = {"name": "m1.nodisk", "vcpus": 2, "ram": 2048, "disk": 0}


def test_a_server_booted_from_a_volume_takes_a_volume_of_its_size():
    needs = preflight.per_environment_needs(NODISK, 4, "shared", volume_gb=20)
    assert needs["volumes"] == 1 and needs["gigabytes"] == 20
    assert "volumes" not in preflight.per_environment_needs(NODISK, 4, "shared")
    cohort = preflight.cohort_needs(NODISK, 30, 2, topology="shared", volume_gb=20)
    assert cohort["volumes"] == 30 and cohort["gigabytes"] == 600


def test_the_volume_quotas_bound_the_cohort():
    quotas = dict(QUOTAS, volumes={"limit": 10, "used": 2, "reserved": 0},
                  gigabytes={"limit": 1000, "used": 0, "reserved": 0})
    assert preflight.environments_that_fit(NODISK, 2, quotas, "shared", volume_gb=20) == 8   # volumes
    assert preflight.environments_that_fit(NODISK, 2, quotas, "shared", volume_gb=200) == 5  # gigabytes
    needs = preflight.cohort_needs(NODISK, 12, 2, topology="shared", course_network_exists=True, volume_gb=20)
    assert [p.split(" quota")[0] for p in preflight.quota_problems(needs, quotas, 12)] == ["The project's volumes"]


def test_a_zero_disk_flavor_is_answered_with_boot_from_volume():
    [problem] = preflight.size_problems(IMAGE, NODISK, FLAVORS + [NODISK])
    assert "boot_from_volume: true" in problem and "m1.course" in problem
    assert preflight.size_problems(IMAGE, NODISK, FLAVORS + [NODISK], boot_from_volume=True) == []


def test_a_boot_volume_too_small_names_the_size_that_holds_the_image():
    [problem] = preflight.volume_problems(IMAGE, 4)  # min_disk 5
    assert "volume_size" in problem and "at least 5 GB" in problem
    assert preflight.volume_problems(IMAGE, 5) == []


def test_a_quota_set_read_with_usage_gives_limit_used_and_reserved():
    quota_set = type("QuotaSet", (), {"volumes": 10, "gigabytes": -1, "usage": {"volumes": 3}, "reservation": None})
    assert preflight.quota_usage(quota_set(), ("volumes", "gigabytes")) == {
        "volumes": {"limit": 10, "used": 3, "reserved": 0}, "gigabytes": {"limit": -1, "used": 0, "reserved": 0}}


def test_data_volumes_still_to_be_made_count_against_the_volume_quotas():
    flavor = {"vcpus": 1, "ram": 1024, "disk": 10}
    without = preflight.cohort_needs(flavor, 3, 2, topology="shared", course_network_exists=True)
    assert "volumes" not in without
    needs = preflight.cohort_needs(flavor, 3, 2, topology="shared", course_network_exists=True,
                                   data_volumes=(2, 5))
    assert needs["volumes"] == 2 and needs["gigabytes"] == 10
    both = preflight.cohort_needs(flavor, 3, 2, topology="shared", course_network_exists=True, volume_gb=4,
                                  data_volumes=(3, 5))
    assert both["volumes"] == 6 and both["gigabytes"] == 3 * 4 + 3 * 5
