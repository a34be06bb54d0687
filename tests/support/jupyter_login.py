"""Log in to a Jupyter Server the way a browser does (standard library only, so it runs on a bare VM).

    python3 jupyter_login.py BASE_URL PASSWORD
prints one JSON object: {"login_ok": bool, "api_status": int, "anonymous_api_status": int}
BASE_URL ends with '/', e.g. http://127.0.0.1:8888/ or http://10.231.0.2/jupyter/.
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
    result["login_status"] = _status(browser, base + "login?next=" + urllib.parse.quote(base + "tree"), form)
    result["api_status"] = _status(browser, base + "api/status")
    result["login_ok"] = result["login_status"] == 302 and result["api_status"] == 200
    return result


if __name__ == "__main__":
    print(json.dumps(login(sys.argv[1], sys.argv[2])))
