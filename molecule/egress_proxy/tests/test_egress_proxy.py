"""The proxy settings on the VM, and apt through a reverse tunnel to the controller's proxy (testinfra).

The tests run in file order: the tunnel test runs egress_tunnel.yml, which restores the inventory's proxy
settings (none) afterwards, and the last test checks that the settings are gone.
"""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PROXY = "http://127.0.0.1:3128"
CONTROLLER_PORT = 18128
# Not in the image's local repository (tests/machines/packages.txt), small, in bookworm main.
PACKAGE = "sl"
SOURCE = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
SOURCES_FILE = "/etc/apt/sources.list.d/molecule-egress.list"


def run_playbook(playbook, extra_vars):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, str(playbook), "-e", json.dumps(extra_vars)],
                            capture_output=True, text=True, env=env, timeout=1200, check=False)
    return result.returncode, result.stdout + result.stderr


def apt_through_the_tunnel_port(host):
    """apt as the tunnel would use it: Debian's mirror as a source, the VM's loopback port as the proxy."""
    host.run_test("printf '%%s\\n' %s > %s", SOURCE, SOURCES_FILE)
    try:
        update = host.run("apt-get -o Acquire::http::Proxy=%s -o Acquire::Retries=0 update", PROXY)
        install = host.run("apt-get -o Acquire::http::Proxy=%s -o Acquire::Retries=0 install -y %s", PROXY, "cowsay")
    finally:
        host.run_test("rm -f %s", SOURCES_FILE)
        host.run("apt-get update")  # forget that source's lists again
    return update, install


def controller_port_open(port):
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_apt_uses_the_proxy(host):
    conf = host.file("/etc/apt/apt.conf.d/95coursevm-proxy")
    assert conf.mode == 0o644 and "Ansible managed" in conf.content_string
    dump = host.check_output("apt-config dump")
    assert 'Acquire::http::Proxy "%s";' % PROXY in dump
    assert 'Acquire::https::Proxy "%s";' % PROXY in dump


def test_pip_uses_the_proxy(host):
    # Read as pip reads it (the image has no pip for the system Python; the venvs' pips read the same file).
    script = ("import configparser; c = configparser.ConfigParser(); c.read('/etc/pip.conf'); "
              "print(c.get('global', 'proxy'))")
    assert host.check_output("python3 -c %s", script) == PROXY


def test_jupyter_unit_has_the_proxy_in_its_environment(host):
    env = host.check_output("systemctl show -p Environment --value jupyter")
    assert "http_proxy=%s" % PROXY in env and "HTTPS_PROXY=%s" % PROXY in env
    # The running process got it: the role restarted the unit after writing the drop-in.
    pid = host.check_output("systemctl show -p MainPID --value jupyter")
    environ = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid)
    assert "https_proxy=%s" % PROXY in environ.splitlines()
    assert "no_proxy=localhost,127.0.0.1,::1" in environ.splitlines()


def test_absent_unit_gets_a_drop_in_for_later_and_nothing_breaks(host):
    assert host.file("/etc/systemd/system/openrefine.service.d/proxy.conf").exists
    assert host.run("systemctl cat openrefine.service").rc != 0  # still not installed


def test_without_the_tunnel_apt_cannot_reach_the_mirror(host):
    assert not host.package(PACKAGE).is_installed
    # The image's own repository does not have the package...
    assert host.run("apt-cache policy %s", PACKAGE).stdout.strip() == ""
    # ...and Debian's mirror is out of reach: nothing listens on the VM's proxy port, there is no route out.
    update, install = apt_through_the_tunnel_port(host)
    assert "Could not connect to 127.0.0.1:3128" in update.stdout + update.stderr or update.rc != 0, update.stdout
    assert install.rc != 0


def test_apt_install_through_the_reverse_tunnel(host):
    assert not controller_port_open(CONTROLLER_PORT)
    rc, output = run_playbook(ROOT / "playbooks" / "egress_tunnel.yml", {
        "egress_tunnel_hosts": "all", "egress_tunnel_apt_packages": [PACKAGE],
        "egress_tunnel_apt_sources": [SOURCE]})
    assert rc == 0, output
    assert host.package(PACKAGE).is_installed
    assert host.file("/usr/games/sl").is_file


def test_tunnel_and_proxy_are_closed_after_the_run(host):
    assert not controller_port_open(CONTROLLER_PORT)
    assert not host.socket("tcp://127.0.0.1:3128").is_listening
    assert not host.file("/etc/apt/sources.list.d/coursevm-egress-tunnel.list").exists
    # The inventory sets no proxy, so the run left none behind.
    assert not host.file("/etc/apt/apt.conf.d/95coursevm-proxy").exists
    assert "proxy" not in host.file("/etc/pip.conf").content_string


def test_apt_fails_again_after_the_tunnel_is_closed(host):
    update, install = apt_through_the_tunnel_port(host)
    assert update.rc != 0 or "Could not connect" in update.stdout + update.stderr
    assert install.rc != 0


def test_tunnel_is_closed_even_when_the_work_fails(host):
    rc, output = run_playbook(ROOT / "playbooks" / "egress_tunnel.yml", {
        "egress_tunnel_hosts": "all", "egress_tunnel_apt_packages": ["no-such-package-coursevm"],
        "egress_tunnel_apt_sources": [SOURCE]})
    assert rc != 0, output
    assert "no-such-package-coursevm" in output
    assert "Close the reverse tunnel" in output
    assert not controller_port_open(CONTROLLER_PORT)
    assert not host.socket("tcp://127.0.0.1:3128").is_listening
    assert not host.file("/etc/apt/sources.list.d/coursevm-egress-tunnel.list").exists


def test_offline_route_pushes_debs_gathered_on_the_controller(host):
    # figlet is not in the image's repository either; this time nothing leaves the VM, not even a tunnel.
    assert not host.package("figlet").is_installed
    rc, output = run_playbook(ROOT / "playbooks" / "egress_tunnel.yml", {
        "egress_tunnel_hosts": "all", "egress_tunnel_route": "offline", "egress_tunnel_apt_packages": ["figlet"]})
    assert rc == 0, output
    assert "Open the reverse tunnel" not in output
    assert host.package("figlet").is_installed
    assert host.check_output("figlet -v").startswith("FIGlet")
    sources = host.check_output("cat /etc/apt/sources.list.d/coursevm-wheelhouse-*.list")
    assert sources.startswith("deb [trusted=yes] file:/var/cache/coursevm/wheelhouse/debs-")


@pytest.mark.parametrize("url", ["http://proxy.example", "ftp://10.0.0.1:3128", "http://host:99999",
                                 "http://a b:3128", "proxy:3128"])
def test_a_proxy_url_that_does_not_parse_is_refused_before_any_change(host, url):
    before = host.check_output("cat /etc/pip.conf 2>/dev/null; ls /etc/apt/apt.conf.d")
    rc, output = run_playbook(ROOT / "molecule" / "egress_proxy" / "converge.yml", {"egress_proxy_url": url})
    assert rc != 0 and "egress_proxy_url does not parse as a proxy URL" in output, output
    assert host.check_output("cat /etc/pip.conf 2>/dev/null; ls /etc/apt/apt.conf.d") == before
