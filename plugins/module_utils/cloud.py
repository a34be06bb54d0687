# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base of every coursevm.openstack module that talks to OpenStack.

It builds on openstack.cloud's ``OpenStackModule`` (auth options, ``cloud:``, the SDK connection, the
``openstack`` action group) and adds what all our modules share:

- an unknown cloud name fails before anything is contacted, naming the clouds that *are* defined and the
  clouds.yaml they were read from;
- every SDK or keystoneauth exception that escapes ``run()`` becomes one plain line
  (``what_went_wrong(exc)``), instead of a traceback or a wall of JSON;
- ``wait_until()``: poll a resource until it reaches a status, fails, disappears, or the timeout runs out.

A module subclasses ``CourseVMCloudModule``, declares ``argument_spec``/``module_kwargs`` as with
``OpenStackModule``, and implements ``run()``. openstacksdk is imported by the base class lazily
(``self.sdk``), so importing a module never needs it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import os
import time

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule


def unknown_cloud_message(name, known, config_file, searched=None):
    """The message for a cloud name that clouds.yaml does not define (pure, unit-tested)."""
    if config_file:
        where = "in %s" % config_file
    elif searched:
        where = "because no clouds.yaml was found (searched %s)" % ", ".join(dict.fromkeys(searched))
    else:
        where = "because no clouds.yaml was found"
    if known:
        defined = "the clouds defined there are: %s" % ", ".join(sorted(known))
    else:
        defined = "it defines no clouds"
    return ("Cloud %r is not defined %s; %s. Fix the cloud name, or point OS_CLIENT_CONFIG_FILE at the "
            "clouds.yaml that defines it." % (name, where, defined))


def what_went_wrong(exc):
    """One line that says what an SDK/keystoneauth exception means, for fail_json (pure, unit-tested).

    HTTP errors keep the service's own explanation (``details``) and status code; connection and auth
    failures say which is which, because "Unauthorized" and "connection refused" need different fixes.
    """
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(exc, "http_status", None)
    details = getattr(exc, "details", None)
    text = " ".join(str(exc).split())
    if details and str(details) not in text:
        text = "%s: %s" % (text, " ".join(str(details).split()))
    if name in ("ConnectFailure", "ConnectionError", "ConnectTimeout", "EndpointNotFound", "DiscoveryFailure",
                "UnknownConnectionError") or "Connection refused" in text:
        return ("Cannot reach the cloud's API (%s). Check auth_url in clouds.yaml (or the auth option) and that "
                "the cloud is up." % text)
    if status == 401 or name == "Unauthorized":
        return ("The cloud refused the credentials (HTTP 401: %s). Check username, password and project in "
                "clouds.yaml (or the auth option)." % text)
    if status == 403 or name == "ForbiddenException":
        return ("The cloud forbids this for your user (HTTP 403: %s). Ask the cloud admins for the role or "
                "quota it needs." % text)
    if status == 409 or name == "ConflictException":
        return "The cloud refused because of a conflict (HTTP 409: %s)." % text
    if status:
        return "The cloud answered HTTP %s: %s" % (status, text)
    return "%s: %s" % (name, text) if text else name


class WaitTimeout(Exception):
    """wait_until() ran out of time; ``last`` is the last resource seen (or None)."""

    def __init__(self, msg, last=None):
        super(WaitTimeout, self).__init__(msg)
        self.last = last


def wait_until(fetch, done, timeout, interval=2, sleep=time.sleep, clock=time.monotonic):
    """Call ``fetch()`` until ``done(resource)`` is true; return that resource.

    ``fetch`` returns the current resource or None when it is gone (``done(None)`` decides whether "gone"
    is the goal). Raises WaitTimeout after ``timeout`` seconds. ``sleep``/``clock`` are injectable for tests.
    """
    deadline = clock() + timeout
    while True:
        resource = fetch()
        if done(resource):
            return resource
        if clock() >= deadline:
            raise WaitTimeout("still not there after %s s" % timeout, resource)
        sleep(min(interval, max(0.1, deadline - clock())))


class CourseVMCloudModule(OpenStackModule):
    """OpenStackModule plus a clear unknown-cloud error, one-line SDK errors and wait helpers.

    It leans on openstack.cloud's and openstacksdk's insides in three places, each checked against the installed
    versions by tests/unit/plugins/module_utils/test_cloud_base.py (an upgrade that moves them fails there, not
    in a course team's run):

    - ``openstack_cloud_from_module()`` is overridden: ``OpenStackModule.__init__`` calls it to make
      ``(self.sdk, self.conn)``, the one point before anything is contacted where a cloud name can be checked;
    - ``__call__()`` is replaced, not extended: the base catches only the SDK's ``OpenStackCloudException`` and
      reports its raw text plus a JSON blob, while a keystoneauth error (connection refused, 401) escapes it as
      a traceback; ours keeps its contract (run(), a dict returned or ``self.results``, exit_json);
    - openstacksdk's private ``OpenStackConfig._config_files`` is read only to say where clouds.yaml was
      looked for when none was found; no public attribute holds that list, and without it (``getattr`` with a
      default) the message only loses the paths.
    """

    def openstack_cloud_from_module(self):
        """Refuse an unknown cloud name before connecting, then connect as openstack.cloud does."""
        name = self.params.get("cloud")
        if name is None and not self.params.get("auth"):
            name = os.environ.get("OS_CLOUD") or None
        if isinstance(name, str):
            try:
                config = importlib.import_module("openstack.config").OpenStackConfig()
            except ImportError:
                self.fail_json(msg="openstacksdk is required for this module (pip install openstacksdk)")
            except Exception as exc:  # a clouds.yaml that does not parse: say so, in one line
                self.fail_json(msg="Cannot read clouds.yaml: %s" % " ".join(str(exc).split()))
            known = config.get_cloud_names()
            if name not in known:
                # _config_files is private to openstacksdk (see the class docstring): the paths it searched.
                self.fail_json(msg=unknown_cloud_message(name, known, config.config_filename,
                                                         getattr(config, "_config_files", None)),
                               known_clouds=sorted(known), clouds_yaml=config.config_filename)
        return super(CourseVMCloudModule, self).openstack_cloud_from_module()

    def wait_for_status(self, fetch, want, timeout, failed=("ERROR",), what="resource", interval=2):
        """Wait until ``fetch()`` has a status in ``want`` (a tuple); fail_json on ``failed`` or timeout.

        Statuses compare case-insensitively. ``want`` or ``failed`` may hold None, meaning "gone" (``fetch``
        returns None). Returns the resource (None when gone was wanted).
        """
        want = tuple(s.upper() if isinstance(s, str) else s for s in want)
        failed = tuple(s.upper() if isinstance(s, str) else s for s in failed)
        wanted = "/".join("gone" if s is None else s for s in want)

        def status_of(resource):
            return None if resource is None else str(getattr(resource, "status", "")).upper()

        try:
            resource = wait_until(fetch, lambda r: status_of(r) in want + failed, timeout, interval)
        except WaitTimeout as exc:
            self.fail_json(msg="The %s did not reach %s within %s s (last status: %s). Raise timeout, or ask "
                               "the cloud admins why it is slow."
                               % (what, wanted, timeout, status_of(exc.last)))
        if status_of(resource) in failed:
            self.fail_json(msg="The %s went to %s instead of %s." % (
                what, status_of(resource) or "nothing (it disappeared)", wanted))
        return resource

    def __call__(self):
        """Run, turning any SDK/keystoneauth exception into one line (with the raw details kept aside)."""
        # Not OpenStackModule.__call__: it would report an SDK exception as its raw text plus a JSON blob, and let
        # keystoneauth's exceptions (not OpenStackCloudException) escape as a traceback. Same contract otherwise.
        try:
            results = self.run()
        except Exception as exc:
            if not self._is_cloud_error(exc):
                raise
            self.fail_json(msg=what_went_wrong(exc), **self.results_on_error(exc))
        if results and isinstance(results, dict):
            self.exit_json(**results)
        self.exit_json(**self.results)

    def results_on_error(self, exc):
        """Extra return values when run() dies of a cloud error; modules may override."""
        response = getattr(exc, "response", None)
        return {"error": {"type": type(exc).__name__,
                          "details": str(getattr(exc, "details", "") or ""),
                          "response": getattr(response, "text", None)}}

    @staticmethod
    def _is_cloud_error(exc):
        module = type(exc).__module__ or ""
        return module.startswith("openstack.") or module.startswith("keystoneauth1.")
