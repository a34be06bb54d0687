"""Jupyter behind nginx, tested from the host the way a student's browser meets it: over the machine's address.

Two machines (molecule.yml): cvm-nginx-proxy serves Jupyter at /jupyter/ over HTTPS with a self-signed
certificate made on the controller (prepare.yml), which these tests trust as their only CA, so TLS is checked
for real; cvm-nginx-plain serves it at / over plain HTTP. Standard library only: http.client and urllib for
HTTP, a raw socket for the websocket handshake and frames.
"""

import base64
import hashlib
import http.client
import http.cookiejar
import importlib.util
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

PASSWORD = "molecule-jupyter-pw"
TLS_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "tls"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REDIRECTS = (301, 302, 303, 307, 308)

_spec = importlib.util.spec_from_file_location(
    "jupyter_login", Path(__file__).resolve().parents[3] / "tests" / "support" / "jupyter_login.py")
jupyter_login = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jupyter_login)


class Site:
    """How a browser reaches one converged machine: its address, scheme and Jupyter's prefix."""

    def __init__(self, host):
        variables = host.ansible.get_variables()
        self.addr = variables["ansible_host"]
        self.prefix = variables["nginx_proxy_base_url"]
        self.tls = bool(variables["molecule_tls"])
        self.scheme = "https" if self.tls else "http"
        self.port = 443 if self.tls else 80
        self.origin = "%s://%s" % (self.scheme, self.addr)
        self.base = self.origin + self.prefix
        # Trusts only the machine's self-signed certificate, and checks the address it names.
        self.context = ssl.create_default_context(cafile=str(TLS_DIR / ("%s.crt" % variables["inventory_hostname"])))

    def fetch(self, method, path, body=None, headers=None, scheme=None):
        """One request, redirects not followed: (status, headers, body)."""
        if (scheme or self.scheme) == "https":
            conn = http.client.HTTPSConnection(self.addr, 443, timeout=30, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.addr, 80, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def connect(self):
        """A raw connection to nginx, TLS-wrapped when the site is HTTPS."""
        sock = socket.create_connection((self.addr, self.port), timeout=60)
        return self.context.wrap_socket(sock, server_hostname=self.addr) if self.tls else sock

    def opener(self, *handlers):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                           urllib.request.HTTPSHandler(context=self.context), *handlers)


@pytest.fixture(scope="module")
def site(host):
    return Site(host)


@pytest.fixture(scope="module")
def https_site(site):
    if not site.tls:
        pytest.skip("HTTP only on this machine")
    return site


@pytest.fixture(scope="module")
def http_site(site):
    if site.tls:
        pytest.skip("HTTPS on this machine")
    return site


class Browser:
    """A logged-in cookie session through nginx.

    tests/support/jupyter_login.py's login() builds its openers with the default SSL context and no way to send
    another Host, so this repeats its two requests with an opener that trusts the test certificate.
    """

    def __init__(self, site, password, host_header=None):
        self.base = site.base
        self.host_header = host_header
        self.jar = http.cookiejar.CookieJar()
        self.opener = site.opener(urllib.request.HTTPCookieProcessor(self.jar), jupyter_login._NoRedirect)
        self.request("GET", "login")
        form = urllib.parse.urlencode({"password": password, "_xsrf": self.xsrf}).encode()
        self.login_status, self.login_headers, _body = self.request(
            "POST", "login?next=" + urllib.parse.quote(site.prefix + "tree"), form,
            {"Content-Type": "application/x-www-form-urlencoded"})

    @property
    def xsrf(self):
        return next((c.value for c in self.jar if c.name == "_xsrf"), "")

    def cookie_header(self):
        return "; ".join("%s=%s" % (c.name, c.value) for c in self.jar)

    def request(self, method, path, data=None, headers=None):
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=dict(headers or {}))
        if self.host_header:
            req.add_header("Host", self.host_header)
        if method not in ("GET", "HEAD"):
            req.add_header("X-XSRFToken", self.xsrf)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def api(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        status, headers, body = self.request(method, path, data, {"Content-Type": "application/json"})
        if headers.get_content_type() == "application/json" and body:
            return status, json.loads(body)
        return status, body[:300]


@pytest.fixture(scope="module")
def browser(site):
    session = Browser(site, PASSWORD)
    assert session.login_status == 302, "login through nginx failed"
    return session


@pytest.fixture
def trusting_login(monkeypatch, site):
    """jupyter_login.login(), with the openers it builds trusting the test certificate (and no env proxy)."""

    class TrustingHTTPSHandler(urllib.request.HTTPSHandler):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("context", site.context)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(urllib.request, "HTTPSHandler", TrustingHTTPSHandler)
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})
    return jupyter_login.login


class WebSocket:
    """Just enough of RFC 6455 for a test client: handshake, masked text frames out, unmasked frames in."""

    def __init__(self, site, path, headers):
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock = site.connect()
        lines = ["GET %s HTTP/1.1" % path, "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + self.key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % item for item in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.reader = self.sock.makefile("rb")
        self.status = int(self.reader.readline().split()[1])
        self.headers = {}
        while True:
            line = self.reader.readline().decode().strip()
            if not line:
                break
            name, _sep, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def accepted(self):
        expected = base64.b64encode(hashlib.sha1((self.key + WEBSOCKET_GUID).encode()).digest()).decode()
        return self.status == 101 and self.headers.get("sec-websocket-accept") == expected

    def send_text(self, text):
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = bytes([0x81, 0x80 | size])
        elif size < 65536:
            header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive_text(self):
        while True:
            first, second = self.reader.read(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(self.reader.read(2), "big")
            elif size == 127:
                size = int.from_bytes(self.reader.read(8), "big")
            payload = self.reader.read(size)
            if first & 0x0F == 0x1:
                return payload.decode()
            if first & 0x0F == 0x8:
                raise ConnectionError("websocket closed by the server")

    def close(self):
        self.sock.close()


def kernel_message(msg_type, content, session):
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "molecule", "session": session,
                       "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"},
            "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}


# --- redirects -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/jupyter/", "/jupyter/lab?reset", "/anything/else"])
def test_http_redirects_to_https(https_site, path):
    status, headers, _body = https_site.fetch("GET", path, scheme="http")
    assert status == 301
    assert headers["Location"] == "https://%s%s" % (https_site.addr, path)


def test_root_leads_to_the_jupyter_login_page(site):
    # From http://ADDR/, through the HTTPS redirect and the base URL, to Jupyter's login asking for /tree next.
    with site.opener().open("http://%s/" % site.addr, timeout=30) as resp:
        final = urllib.parse.urlsplit(resp.url)
        body = resp.read().decode()
    assert (final.scheme, final.netloc, final.path) == (site.scheme, site.addr, site.prefix + "login")
    assert urllib.parse.parse_qs(final.query).get("next") == [site.prefix + "tree"]
    assert 'name="password"' in body


def test_root_redirects_to_the_sub_path(site):
    if site.prefix == "/":
        pytest.skip("Jupyter is at / on this machine")
    status, headers, _body = site.fetch("GET", "/")
    assert status == 302
    assert headers["Location"] == site.prefix


@pytest.mark.parametrize("query", ["", "?a=1"])
def test_sub_path_without_its_slash_redirects(site, query):
    if site.prefix == "/":
        pytest.skip("Jupyter is at / on this machine")
    status, headers, _body = site.fetch("GET", site.prefix.rstrip("/") + query)
    assert status == 301
    assert headers["Location"] == site.prefix + query


@pytest.mark.parametrize("path", ["/index.html", "/api/contents", "/login", "/jupyterx/"])
def test_nothing_is_served_outside_the_sub_path(site, path):
    if site.prefix == "/":
        pytest.skip("Jupyter is at / on this machine")
    assert site.fetch("GET", path)[0] == 404


# --- nothing without the password -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["api/contents", "api/contents/notebooks", "api/kernels", "api/sessions",
                                  "api/terminals", "api/status", "terminals/1", "tree", "lab", "files/secret.txt",
                                  "edit/secret.txt"])
def test_anonymous_requests_are_refused_or_sent_to_login(site, path):
    status, headers, body = site.fetch("GET", site.prefix + path)
    if status in REDIRECTS:
        assert urllib.parse.urlsplit(headers["Location"]).path == site.prefix + "login", headers["Location"]
    else:
        assert status == 403, (status, body[:200])
    assert b'"content"' not in body and b'"kernels"' not in body


@pytest.mark.parametrize("method, path", [("POST", "api/kernels"), ("PUT", "api/contents/x.txt"),
                                          ("POST", "api/terminals"), ("DELETE", "api/contents/notebooks")])
def test_anonymous_writes_are_refused(site, method, path):
    status, _headers, _body = site.fetch(method, site.prefix + path, body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 403


@pytest.mark.parametrize("path", ["api/kernels/%s/channels" % uuid.uuid4(), "terminals/websocket/1"])
def test_anonymous_websockets_are_refused(site, path):
    ws = WebSocket(site, site.prefix + path, {"Host": site.addr, "Origin": site.origin})
    try:
        assert ws.status in (403, 404), ws.status
    finally:
        ws.close()


# --- login through nginx --------------------------------------------------------------------------------------

def test_right_password_logs_in(site, trusting_login):
    result = trusting_login(site.base, PASSWORD)
    assert result["login_ok"], result
    assert result["anonymous_api_status"] == 403


def test_wrong_password_is_refused(site, trusting_login):
    result = trusting_login(site.base, "not-the-password")
    assert not result["login_ok"]
    assert result["api_status"] == 403


def test_jupyter_knows_the_scheme_the_browser_used(site, browser):
    # X-Forwarded-Proto reached Jupyter (trust_xheaders): it marks its login cookie Secure over HTTPS only.
    login_cookies = [v for v in browser.login_headers.get_all("Set-Cookie") or [] if v.startswith("username-")]
    assert login_cookies
    assert all(("Secure" in v) == site.tls for v in login_cookies), login_cookies


def test_jupyter_sees_the_client_address(host, site, browser):
    # X-Real-IP reached Jupyter: it logs refused requests with the client's address, not nginx's 127.0.0.1.
    probe = socket.create_connection((site.addr, site.port), timeout=10)
    client = probe.getsockname()[0]
    probe.close()
    marker = "no-such-file-%s.txt" % uuid.uuid4().hex
    assert browser.request("GET", "api/contents/" + marker)[0] == 404
    log = host.check_output("journalctl -u jupyter --no-pager -n 200")
    lines = [line for line in log.splitlines() if marker in line]
    assert lines and all(client in line and "127.0.0.1" not in line for line in lines), lines


# --- kernels over websockets, uploads -------------------------------------------------------------------------

@pytest.fixture
def kernel(browser):
    status, model = browser.api("POST", "api/kernels", {"name": "python3"})
    assert status == 201, (status, model)
    yield model["id"]
    assert browser.api("DELETE", "api/kernels/" + model["id"])[0] == 204


def test_kernel_websocket_upgrades_and_runs_code(site, browser, kernel):
    session = uuid.uuid4().hex
    ws = WebSocket(site, "%sapi/kernels/%s/channels?session_id=%s" % (site.prefix, kernel, session),
                   {"Host": site.addr, "Origin": site.origin, "Cookie": browser.cookie_header()})
    try:
        assert ws.status == 101, ws.headers
        assert ws.accepted(), ws.headers
        request = kernel_message("execute_request", {"code": "print(6 * 7)", "silent": False, "store_history": False,
                                                     "user_expressions": {}, "allow_stdin": False,
                                                     "stop_on_error": True}, session)
        ws.send_text(json.dumps(request))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = json.loads(ws.receive_text())
            if (message.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]
                    and message["msg_type"] == "stream"):
                assert message["content"]["text"] == "42\n"
                break
        else:
            pytest.fail("the kernel's output never came back through the websocket")
    finally:
        ws.close()


def test_websocket_keeps_the_host_port_the_browser_used(site, kernel):
    # Behind a port forward the browser sends Host and Origin with a port, and Jupyter compares the two: nginx must
    # pass Host on as sent ($http_host), not without its port ($host). (Jupyter names its login cookie after Host,
    # so this browser logs in under that Host too.)
    forwarded = "%s:8443" % site.addr
    other = Browser(site, PASSWORD, host_header=forwarded)
    assert other.login_status == 302
    ws = WebSocket(site, "%sapi/kernels/%s/channels" % (site.prefix, kernel),
                   {"Host": forwarded, "Origin": "%s://%s" % (site.scheme, forwarded), "Cookie": other.cookie_header()})
    try:
        assert ws.status == 101, ws.headers
    finally:
        ws.close()


def test_websocket_from_another_site_is_refused(site, browser, kernel):
    ws = WebSocket(site, "%sapi/kernels/%s/channels" % (site.prefix, kernel),
                   {"Host": site.addr, "Origin": "https://evil.example", "Cookie": browser.cookie_header()})
    try:
        assert ws.status == 403
    finally:
        ws.close()


def test_big_upload_goes_through(browser):
    content = ("0123456789abcdef" * 64 + "\n") * 5 * 1024  # a little over 5 MB
    status, model = browser.api("PUT", "api/contents/big.txt", {"type": "file", "format": "text", "content": content})
    assert status in (200, 201), (status, model)
    status, model = browser.api("GET", "api/contents/big.txt?content=0")
    assert status == 200 and model["size"] == len(content)
    assert browser.api("DELETE", "api/contents/big.txt")[0] == 204


def test_upload_above_the_limit_is_refused_by_nginx(site):
    # Only the headers: nginx answers 413 from Content-Length alone, without reading the body.
    with site.connect() as sock:
        sock.sendall(("PUT %sapi/contents/huge.txt HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n" % (site.prefix, site.addr, 101 * 1024 * 1024)).encode())
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.split()[1] == "413", status_line


# --- the machine ----------------------------------------------------------------------------------------------

def test_nginx_is_enabled_and_running(host):
    service = host.service("nginx")
    assert service.is_running and service.is_enabled


def test_nginx_configuration_is_valid(host):
    assert host.run("nginx -t").rc == 0


def test_only_nginx_and_sshd_listen_beyond_loopback(host, site):
    public, jupyter = set(), set()
    for line in host.check_output("ss -Hltnp").splitlines():
        fields = line.split()
        local, process = fields[3], " ".join(fields[5:])
        address = local.rsplit(":", 1)[0].strip("[]")
        loopback = address.startswith("127.") or address == "::1"
        if '"jupyter' in process:
            jupyter.add(local)
        # sshd is how the course team (and Ansible) reach the VM; everything else stays on loopback.
        assert loopback or '"nginx"' in process or '"sshd"' in process, line
        if '"nginx"' in process:
            public.add(local)
    assert public == ({"0.0.0.0:80", "[::]:80", "0.0.0.0:443", "[::]:443"} if site.tls
                      else {"0.0.0.0:80", "[::]:80"}), public
    assert jupyter == {"127.0.0.1:8888"}, jupyter


def test_site_files(host):
    site = host.file("/etc/nginx/sites-available/coursevm.conf")
    assert site.user == "root" and site.mode == 0o644
    assert "Ansible managed" in site.content_string.splitlines()[1]
    assert host.file("/etc/nginx/sites-enabled/coursevm.conf").linked_to == "/etc/nginx/sites-available/coursevm.conf"
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    upgrade = host.file("/etc/nginx/conf.d/coursevm_websocket.conf").content_string
    assert "map $http_upgrade $connection_upgrade" in upgrade
    # Plain requests reuse the upstream's kept-open connections to Jupyter (an empty Connection, not close).
    assert "''      \"\";" in upgrade and "close" not in upgrade.split("map $http_upgrade")[1]
    text = site.content_string
    assert "upstream coursevm_jupyter {" in text and "keepalive 16;" in text
    assert "proxy_pass http://coursevm_jupyter;" in text


def test_tls_key_is_root_only(host, https_site):
    key = host.file("/etc/nginx/tls/coursevm.key")
    assert key.user == "root" and key.group == "root" and key.mode == 0o600
    assert host.file("/etc/nginx/tls").mode == 0o750


def test_no_certificate_or_key_without_https(host, http_site):
    assert not host.file("/etc/nginx/tls/coursevm.key").exists
    assert not host.file("/etc/nginx/tls/coursevm.crt").exists
