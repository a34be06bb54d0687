"""A browser's view of Jupyter and the apps behind /proxy/ (standard library only: it runs on the bare VM).

    python3 browser.py BASE_URL PASSWORD HOST_HEADER REQUESTS_JSON
BASE_URL ends with '/'. An empty PASSWORD stays anonymous; otherwise it logs in the way a browser does (the
same flow as plugins/module_utils/jupyter_probe.py) and keeps the cookies. An empty HOST_HEADER sends the URL's
host; a name such as course.example.org stands for the public name nginx passes on. REQUESTS_JSON is a list
of {"path", "method" (GET), "body" (str), "headers" ({}), "xsrf" (false: send the _xsrf cookie as
X-XSRFToken, as Jupyter's and nbdime's scripts do)}; redirects are not followed. Prints one JSON object:
{"login_ok": bool, "responses": [{"status", "content_type", "location", "length", "body"}]} with bodies cut
to 20000 characters.
"""

import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _send(opener, url, host, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if host:
        request.add_header("Host", host)
    try:
        with opener.open(request, timeout=60) as resp:
            status, reply, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, reply, data = err.code, err.headers, err.read()
    return {
        "status": status,
        "content_type": reply.get("Content-Type", ""),
        "location": reply.get("Location", ""),
        "length": len(data),
        "body": data[:20000].decode("utf-8", "replace"),
    }


def browse(base, password, host, requests):
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    result = {"login_ok": False}
    if password:
        # The login page sets the _xsrf cookie that the form must echo back; a good password redirects.
        _send(browser, base + "login", host)
        xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
        # `next` is a path: Jupyter refuses (and logs) a full URL there and falls back to its default page.
        target = urllib.parse.quote(urllib.parse.urlsplit(base).path + "tree")
        answer = _send(browser, base + "login?next=" + target, host, "POST", form)
        result["login_ok"] = answer["status"] == 302 and _send(browser, base + "api/status", host)["status"] == 200
    result["responses"] = []
    for item in requests:
        headers = dict(item.get("headers", {}))
        if item.get("xsrf"):
            headers["X-XSRFToken"] = next((c.value for c in jar if c.name == "_xsrf"), "")
        body = item["body"].encode() if "body" in item else None
        path = item["path"].lstrip("/")
        result["responses"].append(_send(browser, base + path, host, item.get("method", "GET"), body, headers))
    return result


if __name__ == "__main__":
    print(json.dumps(browse(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
