# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log in to a Jupyter Server the way a browser does, and run code in one of its kernels.

Standard library only, so the same file also runs on a bare VM: the cohort_health module imports it, and the
tests send its text to a course VM (``python3 -c "$(cat jupyter_probe.py)" BASE_URL PASSWORD [CODE]``) or
run it through tests/support/jupyter_login.py. As a program it prints one JSON object::

    {"anonymous_api_status": int, "login_status": int, "api_status": int, "login_ok": bool[, "result": str]}

BASE_URL ends with '/', e.g. http://127.0.0.1:8888/ or http://10.231.0.2/jupyter/. With CODE, a kernel is
started through the REST API, CODE runs over the kernel's websocket, ``result`` is its text/plain result, and
the kernel is deleted. Only that part needs ``websocket-client`` (which jupyter-server itself requires); it is
imported when first needed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import http.cookiejar
import json
import sys
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TIMEOUT = 30


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the answer (its status) instead of following it: a good login is a 302."""

    def redirect_request(self, *args, **kwargs):
        return None


def _status(opener, url, data=None, timeout=DEFAULT_TIMEOUT):
    """The HTTP status ``opener`` gets for ``url`` (a string or a Request); error statuses are answers too."""
    try:
        with opener.open(url, data, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def page_status(url, timeout=DEFAULT_TIMEOUT):
    """The HTTP status of a GET of ``url`` by a browser with no cookie, redirects not followed."""
    return _status(urllib.request.build_opener(_NoRedirect), url, timeout=timeout)


def _websocket():
    """The websocket-client package, imported only by the paths that talk to a kernel or a terminal."""
    try:
        import websocket  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ImportError("talking to a Jupyter kernel needs the Python package websocket-client "
                          "(pip install websocket-client; jupyter-server depends on it)")
    return websocket


def login(base, password, timeout=DEFAULT_TIMEOUT):
    """Log in at ``base`` with ``password``; a dict of the statuses seen, ``login_ok``, and ``_session`` (the
    cookie session that run_code and run_in_terminal take)."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    anonymous = urllib.request.build_opener(_NoRedirect)
    result = {"anonymous_api_status": _status(anonymous, base + "api/status", timeout=timeout)}
    # The login page sets the _xsrf cookie that the form must echo back.
    _status(browser, base + "login", timeout=timeout)
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
    # A good password answers with a redirect to `next`; a bad one shows the login page again (200).
    # `next` must be a path on this server: Jupyter refuses to redirect to an absolute URL after login.
    next_path = urllib.parse.urlsplit(base).path + "tree"
    result["login_status"] = _status(browser, base + "login?next=" + urllib.parse.quote(next_path), form,
                                     timeout=timeout)
    result["api_status"] = _status(browser, base + "api/status", timeout=timeout)
    result["login_ok"] = result["login_status"] == 302 and result["api_status"] == 200
    result["_session"] = (browser, jar, xsrf)
    return result


@contextlib.contextmanager
def _opened(base, session, collection, ws_path, timeout):
    """Create a kernel or terminal over REST (with the xsrf token), open its websocket with the login cookie,
    yield the websocket, and delete the kernel or terminal after."""
    websocket = _websocket()
    browser, jar, xsrf = session
    request = urllib.request.Request(base + "api/" + collection, data=b"{}", method="POST",
                                     headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"})
    with browser.open(request, timeout=timeout) as resp:
        created = json.load(resp)
    ident = created.get("id") or created["name"]
    try:
        cookies = "; ".join("%s=%s" % (c.name, c.value) for c in jar)
        ws = websocket.create_connection(base.replace("http", "ws", 1) + ws_path.format(ident),
                                         header=["Cookie: " + cookies], timeout=timeout,
                                         sslopt={"cert_reqs": 0})
        try:
            yield ws
        finally:
            ws.close()
    finally:
        delete = urllib.request.Request(base + "api/%s/%s" % (collection, ident), method="DELETE",
                                        headers={"X-XSRFToken": xsrf})
        _status(browser, delete, timeout=timeout)


def run_code(base, session, code, timeout=60):
    """Start a kernel and run ``code`` over its websocket; return the text result ("error: <name>" when the
    code raised, None when no result came within ``timeout`` seconds)."""
    session_id = uuid.uuid4().hex
    with _opened(base, session, "kernels", "api/kernels/{}/channels?session_id=" + session_id, timeout) as ws:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": session_id, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv())
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["msg_type"] == "execute_result":
                return reply["content"]["data"]["text/plain"]
            if reply["msg_type"] == "error":
                return "error: " + reply["content"]["ename"]
        return None


def run_in_terminal(base, session, command, expect, timeout=60):
    """Open a terminal, type ``command`` over its websocket, return True once ``expect`` is echoed back."""
    with _opened(base, session, "terminals", "terminals/websocket/{}", timeout) as ws:
        seen = ""
        ws.send(json.dumps(["stdin", command + "\r"]))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kind, *payload = json.loads(ws.recv())
            if kind == "stdout":
                seen += payload[0]
                if expect in seen:
                    return True
        return False


def cli(argv):
    """What the program prints for ``BASE_URL PASSWORD [CODE]``: login() without its session, plus the
    result of CODE when the login worked."""
    outcome = login(argv[0], argv[1])
    if len(argv) > 2 and outcome["login_ok"]:
        outcome["result"] = run_code(argv[0], outcome["_session"], argv[2])
    outcome.pop("_session")
    return outcome


if __name__ == "__main__":
    sys.stdout.write(json.dumps(cli(sys.argv[1:])) + "\n")
