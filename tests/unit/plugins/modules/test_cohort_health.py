"""cohort_health's pure parts (the steps' order and first failure, the table, the CSV, the report file) and
the steps that reach a VM, against servers of the test's own on loopback. The module itself runs against the
local cloud in tests/cloud_integration/test_cohort_health.py."""

import csv
import http.server
import io
import os
import socket
import stat
import threading
import urllib.error
from types import SimpleNamespace

import pytest

from ansible_collections.coursevm.openstack.plugins.modules import cohort_health as ch


def passing(detail="fine"):
    return lambda: (True, detail)


def failing(detail="broken"):
    return lambda: (False, detail)


def raising(exc):
    def check():
        raise exc
    return check


# ---- the steps: in order, stopping at the first failure

def test_every_step_passing_is_healthy():
    steps, failed = ch.run_steps([(name, passing()) for name in ch.STEPS])
    assert failed is None
    assert [s["name"] for s in steps] == list(ch.STEPS)
    assert all(s["ok"] is True for s in steps)


def test_the_first_failure_stops_the_later_steps():
    ran = []

    def tracked(name, check):
        def run():
            ran.append(name)
            return check()
        return run

    checks = [(name, tracked(name, failing() if name == "ssh" else passing())) for name in ch.STEPS]
    steps, failed = ch.run_steps(checks)
    assert failed == "ssh"
    assert ran == ["server", "floating_ip", "ssh"]
    assert [s["ok"] for s in steps] == [True, True, False, None, None]


def test_an_exception_is_a_failure_of_its_step_in_one_line():
    steps, failed = ch.run_steps([("server", passing()), ("floating_ip", raising(ValueError("bad\n  thing")))])
    assert failed == "floating_ip"
    assert steps[1]["ok"] is False and "\n" not in steps[1]["detail"]


@pytest.mark.parametrize("exc", [socket.timeout("timed out"),
                                 urllib.error.URLError(socket.timeout("timed out"))], ids=["socket", "url"])
def test_a_timeout_says_how_long_was_waited(exc):
    assert "7 s" in ch.describe_error(exc, 7)


def test_an_http_error_keeps_its_status():
    exc = urllib.error.HTTPError("http://192.0.2.1/api/kernels", 500, "Internal Server Error", {}, None)
    assert "500" in ch.describe_error(exc, 5)


def test_a_websocket_handshake_error_keeps_no_headers():
    exc = RuntimeError("Handshake status 403 Forbidden -+-+- {'set-cookie': 'session=abc'} -+-+- b''")
    assert "session=abc" not in ch.describe_error(exc, 5)


def test_long_details_are_cut():
    assert len(ch.one_line("x" * 1000)) == ch.DETAIL_LIMIT


@pytest.mark.parametrize("url, floating_ip, expected", [
    ("http://172.24.4.10/jupyter/", "172.24.4.10", "http://172.24.4.10/jupyter/"),
    ("http://172.24.4.10", "172.24.4.10", "http://172.24.4.10/"),
    (None, "172.24.4.11", "http://172.24.4.11/"),
    (None, None, None),
])
def test_the_url_checked(url, floating_ip, expected):
    assert ch.base_url(url, floating_ip) == expected


# ---- the report: table, CSV, file

def student(sid, failed=None, detail="port 22: Connection refused", server=True):
    checks = [(name, failing(detail) if name == failed else passing(name + " ok")) for name in ch.STEPS]
    steps, failed_step = ch.run_steps(checks)
    return ch.student_report(sid, "tm351-" + sid if server else None, "ACTIVE" if server else None,
                             "172.24.4.10" if server else None, "http://172.24.4.10/" if server else None,
                             steps, failed_step)


STUDENTS = [student("ab12", "ssh"), student("cd34567", None), student("ef5", "server", "no server", False)]


def test_the_table_has_a_header_and_one_line_per_student_in_aligned_columns():
    lines = ch.table_lines(STUDENTS)
    assert len(lines) == 1 + len(STUDENTS)
    column = lines[0].index("FAILED STEP")
    assert [line[column:].split()[0] for line in lines[1:]] == ["ssh", "-", "server"]
    assert lines[1].split()[:6] == ["ab12", "tm351-ab12", "ACTIVE", "172.24.4.10", "UNHEALTHY", "ssh"]
    assert lines[2].split() == ["cd34567", "tm351-cd34567", "ACTIVE", "172.24.4.10", "ok", "-"]
    assert lines[3].split()[:6] == ["ef5", "-", "-", "-", "UNHEALTHY", "server"]


def test_the_csv_quotes_every_field_and_reads_back():
    tricky = student("gh6", "kernel", 'the kernel answered "4,2" to 6*7')
    text = ch.csv_text(STUDENTS + [tricky])
    lines = text.splitlines()
    assert all(line.startswith('"') and line.endswith('"') for line in lines)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(ch.CSV_HEADER)
    by_id = dict((row[0], dict(zip(rows[0], row))) for row in rows[1:])
    assert by_id["ab12"]["failed_step"] == "ssh" and by_id["ab12"]["healthy"] == "false"
    assert [by_id["ab12"]["step_" + n] for n in ch.STEPS] == ["ok", "ok", "failed", "not run", "not run"]
    assert by_id["cd34567"]["healthy"] == "true" and by_id["cd34567"]["failed_step"] == ""
    assert by_id["gh6"]["detail"] == 'the kernel answered "4,2" to 6*7'


def test_a_report_file_is_private_and_replaces_an_older_one(tmp_path):
    path = tmp_path / "health.csv"
    path.write_text("old")
    path.chmod(0o644)
    ch.write_private(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["health.csv"]  # no temporary file left


# ---- what the cloud holds: servers by metadata, floating IPs through ports

def server(sid, name, status="ACTIVE", course="tm351", ident=None):
    metadata = {"coursevm_course": course}
    if sid:
        metadata["coursevm_student"] = sid
    return SimpleNamespace(id=ident or name, name=name, status=status, metadata=metadata)


def fake_module(servers, ips=(), ports=()):
    conn = SimpleNamespace(
        compute=SimpleNamespace(servers=lambda details=True: list(servers)),
        network=SimpleNamespace(ips=lambda: list(ips), ports=lambda: list(ports)))
    return SimpleNamespace(params={"course": "tm351", "timeout": 1}, conn=conn)


def test_the_survey_finds_the_course_servers_and_their_floating_ips():
    servers = [server("ab12", "tm351-ab12"), server("cd34", "tm351-cd34", "ERROR", ident="old"),
               server("cd34", "tm351-cd34", ident="new"), server(None, "tm351-ef56"),
               server("zz", "other-zz", course="other")]
    ips = [SimpleNamespace(port_id="p1", floating_ip_address="172.24.4.10"),
           SimpleNamespace(port_id="p9", floating_ip_address="172.24.4.99"),
           SimpleNamespace(port_id=None, floating_ip_address="172.24.4.50")]
    ports = [SimpleNamespace(id="p1", device_id="tm351-ab12"), SimpleNamespace(id="p9", device_id="someone-else")]
    found, floating = ch.CohortHealthModule.survey(fake_module(servers, ips, ports))
    assert sorted(found) == ["ab12", "cd34", "ef56"]
    assert found["cd34"].id == "new"  # the ACTIVE one of two
    assert floating == {"tm351-ab12": "172.24.4.10"}


def test_a_given_student_without_a_server_fails_at_the_server_step():
    result = ch.CohortHealthModule.check_student(fake_module([]), "ab12", None, None, {"password": "pw"})
    assert result["failed_step"] == "server" and result["healthy"] is False
    assert [s["ok"] for s in result["steps"]] == [False, None, None, None, None]


def test_a_server_that_is_not_active_fails_at_the_server_step():
    result = ch.CohortHealthModule.check_student(fake_module([]), "ab12", server("ab12", "tm351-ab12", "SHUTOFF"),
                                                 "172.24.4.10", {})
    assert result["failed_step"] == "server" and result["status"] == "SHUTOFF"


def test_an_active_server_without_floating_ip_fails_at_the_floating_ip_step():
    result = ch.CohortHealthModule.check_student(fake_module([]), "ab12", server("ab12", "tm351-ab12"), None, {})
    assert result["failed_step"] == "floating_ip" and result["url"] is None


def test_a_report_never_holds_the_password():
    result = ch.CohortHealthModule.check_student(fake_module([]), "ab12", None, None,
                                                 {"url": "http://172.24.4.10/", "password": "s3cret-pw"})
    assert "s3cret-pw" not in repr(result) + ch.csv_text([result]) + "\n".join(ch.table_lines([result]))


# ---- the steps that reach a VM, against loopback servers of the test

@pytest.fixture
def tcp_server():
    """tcp_server(greeting or None) -> port of a loopback listener that sends ``greeting`` (None: nothing)."""
    made = []

    def start(greeting):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        made.append(listener)

        def serve():
            try:
                conn, unused = listener.accept()
            except OSError:
                return
            with conn:
                if greeting is not None:
                    conn.sendall(greeting)
                conn.recv(16)  # hold the connection until the client closes it

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in made:
        listener.close()


def test_an_ssh_banner_passes(tcp_server):
    ok, detail = ch.ssh_banner("127.0.0.1", 5, port=tcp_server(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"))
    assert ok and detail.startswith("SSH-2.0-")


def test_lines_before_the_ssh_banner_are_allowed(tcp_server):
    ok, unused = ch.ssh_banner("127.0.0.1", 5, port=tcp_server(b"Welcome\r\nSSH-2.0-x\r\n"))
    assert ok


def test_another_service_on_the_port_fails(tcp_server):
    ok, unused = ch.ssh_banner("127.0.0.1", 1, port=tcp_server(b"HTTP/1.1 400 Bad Request\r\n\r\n"))
    assert not ok


def test_a_silent_port_fails_within_the_timeout(tcp_server):
    ok, detail = ch.ssh_banner("127.0.0.1", 1, port=tcp_server(None))
    assert not ok and "1 s" in detail


def test_a_closed_port_fails():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    ok, unused = ch.ssh_banner("127.0.0.1", 2, port=port)
    assert not ok


@pytest.fixture
def web():
    """A loopback HTTP server whose /login answers 200 and /jupyter/login 302."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (the name http.server calls)
            self.send_response(200 if self.path == "/login" else 302)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server_ = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server_.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % server_.server_address[1]
    server_.shutdown()
    server_.server_close()


def test_the_login_page_answering_200_passes(web, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert ch.web_page(web, 5)[0] is True
    assert ch.web_page(web + "jupyter/", 5)[0] is False  # a redirect is not the login page


def test_the_kernel_step_without_a_password_fails_without_trying():
    ok, unused = ch.kernel_runs("http://127.0.0.1:9/", None, 1)
    assert ok is False


def test_the_kernel_step_of_a_student_who_chose_their_password_passes_untried():
    # Port 9 (discard) answers nothing: a try would fail, so passing shows nothing was tried.
    ok, detail = ch.kernel_runs("http://127.0.0.1:9/", "the-stale-recorded-one", 1, "2026-11-30T13:20:00Z")
    assert ok is True and "2026-11-30T13:20:00Z" in detail
