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


# ---- what CourseVMCloudModule relies on in the installed openstack.cloud and openstacksdk (see its docstring)
def test_openstack_module_still_connects_through_the_method_we_override():
    """OpenStackModule.__init__ makes (sdk, conn) by calling openstack_cloud_from_module(), and sets the
    attributes our modules and our __call__ use."""
    import inspect
    from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule
    init = inspect.getsource(OpenStackModule.__init__)
    assert "self.sdk, self.conn = self.openstack_cloud_from_module()" in init
    for attribute in ("self.ansible", "self.params", "self.check_mode", "self.results", "self.exit_json",
                      "self.fail_json"):
        assert attribute in init, attribute
    for method in ("openstack_cloud_from_module", "run", "__call__"):
        assert method in vars(OpenStackModule), method
    assert cloud.CourseVMCloudModule.openstack_cloud_from_module is not OpenStackModule.openstack_cloud_from_module


def test_openstack_modules_call_contract_is_the_one_ours_keeps():
    """Our __call__ replaces the base's: run() returns a dict to exit with, or the module exits with
    self.results. If the base ever does more (or less), ours has to follow."""
    import inspect
    from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule
    base = inspect.getsource(OpenStackModule.__call__)
    assert "results = self.run()" in base
    assert "isinstance(results, dict)" in base
    assert "exit_json(**self.results)" in base
    # The base catches only the SDK's own exception, so keystoneauth's would escape: the reason ours exists.
    assert "OpenStackCloudException" in base


def test_the_auth_options_we_read_are_still_in_the_full_argument_spec():
    from ansible_collections.openstack.cloud.plugins.module_utils.openstack import openstack_full_argument_spec
    spec = openstack_full_argument_spec()
    assert "cloud" in spec and "auth" in spec


def test_openstacksdk_config_still_has_what_the_unknown_cloud_check_reads(tmp_path, monkeypatch):
    """get_cloud_names(), config_filename and the private _config_files (the paths searched)."""
    from openstack import config as sdk_config
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  here:\n    auth: {auth_url: 'http://127.0.0.1:5000/v3'}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    config = sdk_config.OpenStackConfig()
    assert "here" in config.get_cloud_names()
    assert config.config_filename == str(clouds)
    searched = config._config_files  # pylint: disable=protected-access
    assert isinstance(searched, list) and str(clouds) in searched


def test_sdk_and_keystoneauth_exceptions_live_where_is_cloud_error_looks():
    assert cloud.CourseVMCloudModule._is_cloud_error(sdk_exceptions.ResourceNotFound("x"))
    assert cloud.CourseVMCloudModule._is_cloud_error(ks_exceptions.ConnectFailure("x"))
    assert not cloud.CourseVMCloudModule._is_cloud_error(ValueError("x"))
    assert issubclass(sdk_exceptions.ResourceNotFound, sdk_exceptions.OpenStackCloudException)
