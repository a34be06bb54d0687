"""What the role answers for in nginx's main configuration (issue 14): gixy, the nginx analyzer, finds nothing in
the configuration the machine runs with, and TLS is 1.2+ with the role's ciphers and HSTS where HTTPS is on."""

import os
import socket
import ssl
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
import nginx_gixy  # noqa: E402

TLS_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "tls"
CIPHERS = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
           "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}


def test_gixy_finds_nothing_in_the_running_configuration(host, tmp_path):
    nginx_gixy.assert_no_findings(host, tmp_path, expect_files=[
        "/etc/nginx/nginx.conf", "/etc/nginx/conf.d/coursevm_websocket.conf",
        "/etc/nginx/sites-enabled/coursevm.conf"])


def test_main_configuration_is_the_roles(host):
    main = host.file("/etc/nginx/nginx.conf")
    assert (main.user, main.group, main.mode) == ("root", "root", 0o644)
    assert "Ansible managed" in main.content_string.splitlines()[1]


@pytest.fixture(scope="module")
def https_addr(host):
    variables = host.ansible.get_variables()
    if not variables["molecule_tls"]:
        pytest.skip("HTTP only on this machine")
    return variables["ansible_host"], TLS_DIR / ("%s.crt" % variables["inventory_hostname"])


def handshake(addr, context):
    with socket.create_connection((addr, 443), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=addr) as tls:
            return tls.version(), tls.cipher()[0]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_served(https_addr, version):
    addr, cafile = https_addr
    context = ssl.create_default_context(cafile=str(cafile))
    context.minimum_version = context.maximum_version = version
    protocol, cipher = handshake(addr, context)
    assert protocol == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    if version == ssl.TLSVersion.TLSv1_2:
        assert cipher in CIPHERS, cipher


# ssl.TLSVersion.TLSv1 and TLSv1_1 are deprecated in Python: that is the point here.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_10_and_11_are_refused_by_the_server(https_addr, version):
    addr, cafile = https_addr
    context = ssl.create_default_context(cafile=str(cafile))
    # Let this client offer the old protocol at all (OpenSSL 3 refuses it below security level 0), so that a
    # refusal comes from nginx, as a protocol-version alert, not from the client's own settings.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    with pytest.raises(ssl.SSLError) as refused:
        handshake(addr, context)
    assert "PROTOCOL_VERSION" in refused.value.reason.upper() or "PROTOCOL VERSION" in str(refused.value).upper(), \
        refused.value


def test_https_answers_carry_hsts(https_addr):
    addr, cafile = https_addr
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((addr, 443), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=addr) as tls:
            tls.sendall(("GET /jupyter/login HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % addr).encode())
            head = tls.makefile("rb").read().split(b"\r\n\r\n", 1)[0].decode()
    headers = {line.partition(":")[0].lower(): line.partition(":")[2].strip() for line in head.splitlines()[1:]}
    assert headers.get("strict-transport-security") == "max-age=31536000", head
