"""The shared base: unknown-cloud message, one-line SDK errors, waiting."""

import pytest
import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions

from ansible_collections.coursevm.openstack.plugins.module_utils import cloud


def test_unknown_cloud_lists_the_clouds_and_the_file():
    msg = cloud.unknown_cloud_message("coursevm-locl", ["coursevm-local-admin", "coursevm-local"],
                                      "/etc/openstack/clouds.yaml")
    assert msg == ("Cloud 'coursevm-locl' is not defined in /etc/openstack/clouds.yaml; the clouds defined "
                   "there are: coursevm-local, coursevm-local-admin. Fix the cloud name, or point "
                   "OS_CLIENT_CONFIG_FILE at the clouds.yaml that defines it.")


def test_unknown_cloud_without_any_clouds_yaml_says_where_it_looked():
    msg = cloud.unknown_cloud_message("x", [], None, ["/a/clouds.yaml", "/a/clouds.yaml", "/b/clouds.yaml"])
    assert "because no clouds.yaml was found (searched /a/clouds.yaml, /b/clouds.yaml)" in msg
    assert "it defines no clouds" in msg


def response(status):
    """A real requests.Response, as openstacksdk gets from the cloud."""
    resp = requests.Response()
    resp.status_code = status
    resp.url = "http://127.0.0.1:8774/v2.1/servers"
    resp.request = requests.Request("POST", resp.url).prepare()
    return resp


def test_http_errors_keep_status_and_details_on_one_line():
    exc = sdk_exceptions.HttpException(message="Bad request", details="Flavor's disk is\n too small.",
                                       response=response(400))
    msg = cloud.what_went_wrong(exc)
    assert "\n" not in msg
    assert msg.startswith("The cloud answered HTTP 400: ")
    assert "Flavor's disk is too small." in msg


def test_forbidden_and_unauthorized_say_what_to_fix():
    assert "forbids this for your user (HTTP 403" in cloud.what_went_wrong(
        sdk_exceptions.ForbiddenException(message="Policy doesn't allow it", response=response(403)))
    assert "refused the credentials (HTTP 401" in cloud.what_went_wrong(
        ks_exceptions.Unauthorized("The request you have made requires authentication."))


def test_connection_failure_points_at_auth_url():
    msg = cloud.what_went_wrong(ks_exceptions.ConnectFailure("Unable to establish connection to "
                                                             "http://127.0.0.1:1/v3: Connection refused"))
    assert msg.startswith("Cannot reach the cloud's API (")
    assert "Check auth_url in clouds.yaml (or the auth option)" in msg


def test_other_exceptions_keep_their_class_name():
    assert cloud.what_went_wrong(sdk_exceptions.DuplicateResource("two images")) == "DuplicateResource: two images"


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_until_returns_the_first_resource_that_is_done():
    clock = Clock()
    states = iter(["BUILD", "BUILD", "ACTIVE"])
    assert cloud.wait_until(lambda: next(states), lambda s: s == "ACTIVE", 10, 2, clock.sleep, clock) == "ACTIVE"
    assert clock.sleeps == [2, 2]


def test_wait_until_treats_none_as_gone():
    clock = Clock()
    states = iter(["DELETING", None])
    assert cloud.wait_until(lambda: next(states), lambda s: s is None, 10, 1, clock.sleep, clock) is None


def test_wait_until_times_out_with_the_last_state():
    clock = Clock()
    with pytest.raises(cloud.WaitTimeout) as info:
        cloud.wait_until(lambda: "BUILD", lambda s: False, 5, 2, clock.sleep, clock)
    assert info.value.last == "BUILD"
    assert clock.now == pytest.approx(5)
    assert "5 s" in str(info.value)


def test_only_sdk_and_keystoneauth_exceptions_are_translated():
    assert cloud.CourseVMCloudModule._is_cloud_error(sdk_exceptions.SDKException("x"))
    assert cloud.CourseVMCloudModule._is_cloud_error(ks_exceptions.ConnectFailure("x"))
    assert not cloud.CourseVMCloudModule._is_cloud_error(KeyError("x"))
