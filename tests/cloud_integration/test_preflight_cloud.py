"""preflight against the real local cloud: it refuses what cannot work, all at once, and creates nothing."""

import pytest

from cloud_support import CLOUD, GIB, IMAGE_MIN_DISK, IMAGE_MIN_RAM, IMAGE_NAME, IMAGE_VIRTUAL_GB


def test_missing_image_flavor_and_external_network_are_reported_at_once(ansible, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": "t5a-no-such-image", "flavor": "t5a-no-such-flavor",
                                   "external_network": "t5a-no-such-net"})
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Preflight found 3 problems; nothing was created: (1) ")
    image, flavor, network = result["problems"]
    assert image.startswith("Image t5a-no-such-image was not found. Images this project can use: ")
    assert "cirros-like" in image and image.endswith("Upload the course image first, or fix the image name.")
    assert flavor.startswith("Flavor t5a-no-such-flavor was not found. Flavors this project can use: "
                             "m1.tiny (1 vCPU, 512 MB RAM, 1 GB disk); m1.nodisk (2 vCPU, 2048 MB RAM, 0 GB disk); "
                             "m1.course (2 vCPU, 2048 MB RAM, 20 GB disk)")
    assert network == ("External network t5a-no-such-net was not found. External networks of this cloud: public. "
                       "Set external_network to one of them.")
    for problem in result["problems"]:
        assert problem in result["msg"]


def test_too_small_flavor_missing_network_and_quota_are_reported_at_once(ansible, test_image, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": IMAGE_NAME, "flavor": "m1.tiny",
                                   "external_network": "t5a-no-such-net", "count": 500})
    assert result["failed"] is True
    problems = result["problems"]
    size = problems[0]
    assert size.startswith("Flavor m1.tiny is too small for image t5a-image: ")
    assert "flavor m1.tiny has a 1 GB disk but the image requires at least %d GB (its min_disk)" % IMAGE_MIN_DISK \
        in size
    assert "the image's virtual size is %d GB (%d bytes)" % (IMAGE_VIRTUAL_GB, IMAGE_VIRTUAL_GB * GIB) in size
    assert "512 MB of RAM but the image requires at least %d MB (its min_ram)" % IMAGE_MIN_RAM in size
    assert size.endswith("Use a flavor that fits: m1.course, m1.huge.")
    assert problems[1].startswith("External network t5a-no-such-net was not found.")
    quota = [p for p in problems[2:] if "quota is too small" in p]
    assert len(quota) == len(problems) - 2 and quota, problems
    assert any(p.startswith("The project's instances quota is too small: 500 environments need 500 servers")
               for p in quota)
    assert result["msg"].startswith("Preflight found %d problems" % len(problems))
    facts = result["facts"]
    assert facts["image"]["min_disk"] == IMAGE_MIN_DISK and facts["image"]["virtual_size"] == IMAGE_VIRTUAL_GB * GIB
    assert facts["flavor"] == {"id": facts["flavor"]["id"], "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1,
                               "ephemeral": 0, "swap": 0}
    assert facts["external_network"] is None


def test_course_flavor_passes_and_reports_the_sizes(ansible, conn, test_image, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": IMAGE_NAME, "flavor": "m1.course", "count": 2})
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["problems"] == []
    facts = result["facts"]
    assert facts["image"]["id"] == test_image.id and facts["image"]["status"] == "active"
    assert facts["image"]["min_ram"] == IMAGE_MIN_RAM
    assert facts["flavor"]["name"] == "m1.course" and facts["flavor"]["disk"] == 20
    assert facts["external_network"]["id"] == conn.network.find_network("public").id
    assert facts["flavors_that_fit"] == ["m1.course", "m1.huge"]
    assert facts["cohort_needs"]["instances"] == 2 and facts["cohort_needs"]["ram"] == 4096
    assert facts["quotas"]["instances"]["limit"] == 120  # tests/cloud/bootstrap.py: room for a cohort of 100
    assert facts["quotas"]["routers"]["limit"] == 10 and facts["quotas"]["security_groups"]["limit"] == 10
    assert facts["environments_that_fit"] >= 2


# The course project's quotas (tests/cloud/bootstrap.py): 120 instances, 400 cores, 1 TiB RAM, 130 key pairs,
# 400 ports, 130 floating IPs; Neutron's defaults for the rest: 100 networks, subnets and security group rules,
# 10 routers, 10 security groups.
BEYOND = 121  # one more server than the instances quota allows


def quota_problems_by_name(result):
    return dict((p.split("'s ")[1].split(" quota")[0], p) for p in result["problems"] if "quota is too small" in p)


def assert_reported_exactly_when_short(result, by_quota, resources):
    """Quotas that other tests on the shared cloud also use: reported exactly when the need exceeds what is left."""
    facts = result["facts"]
    for resource in resources:
        quota = facts["quotas"][resource]
        left = quota["limit"] - (quota["used"] or 0) - (quota["reserved"] or 0)
        assert (resource in by_quota) == (facts["cohort_needs"][resource] > left), (resource, quota, by_quota)


def test_a_cohort_beyond_the_quotas_names_each_quota_and_the_next_step(ansible, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.course", "count": BEYOND,
                                   "topology": "isolated"})
    assert result["failed"] is True
    by_quota = quota_problems_by_name(result)
    # 121 environments, each with its own network, router and security group: more servers (120), networks and
    # subnets (100), routers (10), security groups (10) and rules (100) than the project may have, whatever
    # else runs on the cloud; cores (242 of 400) and RAM (242 GiB of 1 TiB) are enough
    assert {"instances", "networks", "subnets", "routers", "security_groups", "security_group_rules"} <= set(by_quota)
    assert "cores" not in by_quota and "ram" not in by_quota
    # key pairs and floating IPs (121 of 130), ports: enough unless other tests hold the rest
    assert_reported_exactly_when_short(result, by_quota, ("key_pairs", "floating_ips", "ports"))
    quotas = result["facts"]["quotas"]
    assert quotas["floating_ips"]["limit"] == 130 and quotas["ports"]["limit"] == 400
    assert quotas["key_pairs"]["limit"] == 130
    assert "%d environments need %d servers, but only" % (BEYOND, BEYOND) in by_quota["instances"]
    assert "Ask the cloud admins to raise the instances quota to at least" in by_quota["instances"]
    assert result["facts"]["environments_that_fit"] < BEYOND


def test_a_shared_cohort_takes_one_router_and_security_group_for_the_course(ansible, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.course", "count": BEYOND,
                                   "topology": "shared"})
    assert result["failed"] is True
    by_quota = quota_problems_by_name(result)
    # Only the servers are too many; the course's one network, router and security group fit Neutron's
    # default quotas however large the cohort (unless other tests hold all of them)
    assert "instances" in by_quota and "cores" not in by_quota and "ram" not in by_quota
    needs = result["facts"]["cohort_needs"]
    assert needs["instances"] == BEYOND and needs["routers"] <= 1 and needs["security_groups"] <= 2
    assert_reported_exactly_when_short(result, by_quota, ("networks", "subnets", "routers", "security_groups",
                                                          "key_pairs", "floating_ips", "ports"))


def test_check_mode_gives_the_same_verdict(ansible, nothing_created):
    result = ansible("preflight", {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.course"}, check=True)
    assert not result.get("failed") and result["changed"] is False and result["problems"] == []


def test_count_below_one_is_refused(ansible):
    result = ansible("preflight", {"cloud": CLOUD, "image": "cirros-like", "flavor": "m1.course", "count": 0})
    assert result["failed"] is True
    assert result["msg"] == "count must be at least 1 (the number of student environments); got 0"


@pytest.mark.parametrize("module,args", [
    ("preflight", {"image": "cirros-like", "flavor": "m1.course"}),
    ("server_diagnose", {"server": "t5a-anything"}),
    ("server_snapshot", {"server": "t5a-anything"}),
])
def test_unknown_cloud_name_is_a_clear_error_before_anything_happens(
        ansible, clouds_yaml, module, args, nothing_created):
    result = ansible(module, dict(args, cloud="t5a-no-such-cloud"))
    assert result["failed"] is True
    assert result["msg"] == (
        "Cloud 't5a-no-such-cloud' is not defined in %s; the clouds defined there are: coursevm-local, "
        "coursevm-local-admin. Fix the cloud name, or point OS_CLIENT_CONFIG_FILE at the clouds.yaml that "
        "defines it." % clouds_yaml)
    assert result["known_clouds"] == ["coursevm-local", "coursevm-local-admin"]


def test_action_group_sets_the_cloud_for_every_module(playbook, nothing_created):
    tasks = playbook("""
- name: Preflight through module_defaults
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/coursevm.openstack.openstack:
      cloud: coursevm-local
  tasks:
    - name: Check the cohort
      coursevm.openstack.preflight:
        image: cirros-like
        flavor: m1.course
        count: 3
""")
    result = tasks["Check the cohort"]
    assert not result.get("failed"), result.get("msg")
    assert result["facts"]["cohort_needs"]["instances"] == 3


AUTH = {"auth_url": "http://127.0.0.1:5000/v3", "username": "course-admin", "password": "not-the-password",
        "project_name": "course", "user_domain_name": "Default", "project_domain_name": "Default"}


def test_wrong_password_is_one_line_about_the_credentials(ansible):
    result = ansible("preflight", {"auth": AUTH, "image": "cirros-like", "flavor": "m1.course"})
    assert result["failed"] is True
    assert result["msg"].startswith("The cloud refused the credentials (HTTP 401: ")
    assert result["msg"].endswith("Check username, password and project in clouds.yaml (or the auth option).")
    assert "\n" not in result["msg"] and "not-the-password" not in result["msg"]


def test_unreachable_auth_url_is_one_line_about_the_address(ansible):
    # port 1 on loopback: nothing listens there
    result = ansible("preflight", {"auth": dict(AUTH, auth_url="http://127.0.0.1:1/v3"), "image": "cirros-like",
                                   "flavor": "m1.course"})
    assert result["failed"] is True
    assert result["msg"].startswith("Cannot reach the cloud's API (")
    assert "Connection refused" in result["msg"]
    assert result["msg"].endswith("Check auth_url in clouds.yaml (or the auth option) and that the cloud is up.")
