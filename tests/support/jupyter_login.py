"""Log in to a Jupyter Server the way a browser does (standard library only, so it runs on a bare VM).

    python3 jupyter_login.py BASE_URL PASSWORD [CODE]
prints one JSON object: {"login_ok": bool, "api_status": int, "anonymous_api_status": int}
BASE_URL ends with '/', e.g. http://127.0.0.1:8888/ or http://10.231.0.2/jupyter/.
With CODE, it also starts a kernel through the REST API, runs CODE over the kernel's websocket and adds
{"result": the text/plain result}; that part needs `websocket-client` (which jupyter-server itself requires).
"""

import contextlib
import http.cookiejar
import json
import sys
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _status(opener, url, data=None):
    try:
        with opener.open(url, data, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def login(base, password):
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    anonymous = urllib.request.build_opener(_NoRedirect)
    result = {"anonymous_api_status": _status(anonymous, base + "api/status")}
    # The login page sets the _xsrf cookie that the form must echo back.
    _status(browser, base + "login")
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
    # A good password answers with a redirect to `next`; a bad one shows the login page again (200).
    # `next` must be a path on this server: Jupyter refuses to redirect to an absolute URL after login.
    next_path = urllib.parse.urlsplit(base).path + "tree"
    result["login_status"] = _status(browser, base + "login?next=" + urllib.parse.quote(next_path), form)
    result["api_status"] = _status(browser, base + "api/status")
    result["login_ok"] = result["login_status"] == 302 and result["api_status"] == 200
    result["_session"] = (browser, jar, xsrf)
    return result


@contextlib.contextmanager
def _opened(base, session, collection, ws_path, timeout):
    """Create a kernel or terminal over REST (with the xsrf token), open its websocket with the login cookie,
    yield (the websocket, what REST returned), and delete it after."""
    import websocket  # pylint: disable=import-outside-toplevel  # only the websocket paths need it

    browser, jar, xsrf = session
    request = urllib.request.Request(base + "api/" + collection, data=b"{}", method="POST",
                                     headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"})
    with browser.open(request, timeout=timeout) as resp:
        created = json.load(resp)
    ident = created.get("id") or created["name"]
    cookies = "; ".join("%s=%s" % (c.name, c.value) for c in jar)
    ws = websocket.create_connection(base.replace("http", "ws", 1) + ws_path.format(ident),
                                     header=["Cookie: " + cookies], timeout=timeout, sslopt={"cert_reqs": 0})
    try:
        yield ws
    finally:
        ws.close()
        delete = urllib.request.Request(base + "api/%s/%s" % (collection, ident), method="DELETE",
                                        headers={"X-XSRFToken": xsrf})
        _status(browser, delete)


def run_code(base, session, code, timeout=60):
    """Start a kernel and run `code` over its websocket; return the text result (or "error: <name>")."""
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
    """Open a terminal, type `command` over its websocket, return True once `expect` is echoed back."""
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


if __name__ == "__main__":
    outcome = login(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3 and outcome["login_ok"]:
        outcome["result"] = run_code(sys.argv[1], outcome["_session"], sys.argv[3])
    outcome.pop("_session")
    print(json.dumps(outcome))
