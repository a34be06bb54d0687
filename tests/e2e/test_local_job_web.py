"""The one-student job's VM as a student meets it, Jupyter at a sub-path: one door on port 80, Jupyter's login in
front of everything behind it, and nginx's configuration clean for gixy. HTTP goes to the VM's floating IP;
commands run on the VM as root over ssh (testinfra). The job is tests/e2e/conftest.py's `local_job`, shared with
test_local_job.py and test_local_job_password.py.
"""

import http.client
import json
import os
import re
import uuid
import urllib.error
import urllib.parse
import urllib.request

import pytest

import jupyter_login  # tests/support, on sys.path via conftest
import nginx_gixy
from conftest import COURSE_USER, ROOT

USER = COURSE_USER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test machines need root")


@pytest.fixture(scope="module")
def session(site):
    result = jupyter_login.login(site["url"], site["password"])
    assert result["login_ok"], result
    return result["_session"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def anonymous(url, method="GET"):
    """(status, location, body) without following redirects and without any cookie."""
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with opener.open(request, timeout=30) as resp:
            return resp.status, resp.headers.get("Location", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location", ""), err.read()


def upgrade_status(address, path, cookie=None):
    """Status of a websocket upgrade handshake through nginx (101 means the socket was opened)."""
    conn = http.client.HTTPConnection(address, 80, timeout=30)
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://" + address}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("GET", path, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("path", ["", "tree", "lab", "api/contents", "api/kernels", "api/terminals", "terminals/",
                                  "proxy/3334/", "proxy/8899/", "proxy/3334/command/core/get-version",
                                  "nbconvert/html/x.ipynb", "files/x.txt"])
def test_nothing_is_served_without_login(site, path):
    status, location, body = anonymous(site["url"] + path)
    # Either refused, or redirected; never content. The base URL itself goes to the default page (which then asks
    # for the login); every other page goes straight to the login page under the same base, which sends the
    # visitor back to the page asked for (tornado's @web.authenticated: next= the request's path).
    assert status in (301, 302, 303, 401, 403), (path, status, body[:200])
    if status in (301, 302, 303):
        target = urllib.parse.urlsplit(location)
        if path == "":
            assert target.path == site["landing"], location
        else:
            assert target.path == site["base"] + "login", location
            assert urllib.parse.parse_qs(target.query).get("next") == [site["base"] + path], location
        assert b"OpenRefine" not in body and b"nbdime" not in body


def test_anonymous_writes_are_refused(site):
    for path in ("api/kernels", "api/terminals", "api/contents"):
        assert anonymous(site["url"] + path, "POST")[0] == 403, path


def test_anonymous_kernel_websocket_is_refused(site, session):
    browser, jar, xsrf = session
    request = urllib.request.Request(site["url"] + "api/kernels", data=b"{}", method="POST",
                                     headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"})
    with browser.open(request, timeout=60) as resp:
        kernel = json.load(resp)["id"]
    path = "%sapi/kernels/%s/channels?session_id=%s" % (site["base"], kernel, uuid.uuid4().hex)
    assert upgrade_status(site["address"], path) in (401, 403)
    cookie = "; ".join("%s=%s" % (c.name, c.value) for c in jar)
    assert upgrade_status(site["address"], path, cookie) == 101


def test_the_bare_address_leads_to_the_login_page(site):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://%s/" % site["address"], timeout=30) as resp:
        assert urllib.parse.urlsplit(resp.url).path == site["base"] + "login"
        assert b'type="password"' in resp.read()


def test_wrong_password_is_refused(site):
    assert not jupyter_login.login(site["url"], "not-the-password")["login_ok"]


def test_kernel_runs_code_through_nginx(site, session):
    assert jupyter_login.run_code(site["url"], session, "1+1") == "2"


def test_terminal_echoes_through_nginx(site, session):
    assert jupyter_login.run_in_terminal(site["url"], session, "echo hello-$((6*7))", "hello-42")


def test_terminal_reaches_the_course_database_with_no_settings(site, session):
    """configure.yml's default databases: a Jupyter terminal's psql logs in as the course account (peer, through
    PGHOST/PGDATABASE) to the course database, which the course role owns."""
    command = "psql -Atc \"SELECT current_user || '@' || current_database() || ':' || pg_get_userbyid(datdba) " \
              "FROM pg_database WHERE datname = current_database()\""
    assert jupyter_login.run_in_terminal(site["url"], session, command, USER + "@course:course")


def _page_and_asset(browser, url, kind):
    """Fetch a page, then the first stylesheet (kind "css") or script ("js") it links, resolved as a browser
    would: relative links that resolve one level too high are the trailing-slash trap."""
    with browser.open(url, timeout=60) as resp:
        page = resp.read().decode("utf-8", "replace")
        final = resp.url
    if kind == "css":
        hrefs = re.findall(r'<link[^>]+rel="?stylesheet"?[^>]*href="([^"]+)"', page) + \
            re.findall(r'<link[^>]+href="([^"]+\.css[^"]*)"', page)
    else:
        hrefs = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert hrefs, "no %s linked from %s" % (kind, final)
    asset_url = urllib.parse.urljoin(final, hrefs[0])
    with browser.open(asset_url, timeout=60) as resp:
        return page, asset_url, resp.status, resp.headers.get("Content-Type", "")


def test_openrefine_loads_with_its_styles_behind_login(site, session):
    page, css, status, ctype = _page_and_asset(session[0], site["url"] + "proxy/3334/", "css")
    assert "OpenRefine" in page
    assert status == 200 and "css" in ctype, (css, status, ctype)


def test_openrefine_without_trailing_slash_is_redirected(site, session):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(session[1]), _NoRedirect,
                                         urllib.request.ProxyHandler({}))
    try:
        opener.open(site["url"] + "proxy/3334", timeout=30)
        status, location = 200, ""
    except urllib.error.HTTPError as err:
        status, location = err.code, err.headers.get("Location", "")
    assert status in (301, 302, 307, 308), status
    assert location.endswith("proxy/3334/"), location


def test_nbdime_loads_with_its_styles_behind_login(site, session):
    # nbdime's styles are bundled into its script (webpack), which must load from under the public path.
    page, script, status, ctype = _page_and_asset(session[0], site["url"] + "proxy/8899/", "js")
    assert "<title>nbdime" in page
    assert urllib.parse.urlsplit(script).path.startswith(site["base"] + "proxy/8899/static/"), script
    assert status == 200 and "javascript" in ctype, (script, status, ctype)


def test_only_nginx_and_sshd_are_public(host):
    public = set()
    for line in host.check_output("ss -Hltnp").splitlines():
        local, process = line.split()[3], line.split()[-1]
        if not local.startswith(("127.", "[::1]", "[::ffff:127.")):
            public.add(process.split('"')[1])
    assert public <= {"nginx", "sshd"}, public


@pytest.mark.parametrize("unit", ["jupyter", "openrefine", "nbdime"])
def test_services_run_as_the_course_user(host, unit):
    pid = host.check_output("systemctl show -p MainPID --value %s", unit)
    assert pid != "0", unit
    assert host.check_output("ps -o user= -p %s", pid).strip() == USER


def test_chromium_logs_in_and_runs_a_cell(site):
    assert os.path.exists("/usr/bin/chromium"), "Debian's chromium is missing: ./coursevm test installs it"
    import browser  # tests/support, on sys.path via conftest

    shots = ROOT / "tests" / "output" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / ("local-job-web-%s.png" % (site["base"].strip("/").replace("/", "-") or "root"))
    assert browser.run_first_cell(site["url"], site["password"], shot) == "2"


def test_gixy_finds_nothing_in_the_running_nginx_configuration(host, tmp_path):
    nginx_gixy.assert_no_findings(host, tmp_path, expect_files=[
        "/etc/nginx/nginx.conf", "/etc/nginx/conf.d/coursevm_websocket.conf",
        "/etc/nginx/sites-enabled/coursevm.conf"])
