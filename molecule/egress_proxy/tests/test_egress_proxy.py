"""The proxy settings on the VM, and apt through a reverse tunnel to the controller's proxy (testinfra).

The tests run in file order: the tunnel test runs egress_tunnel.yml, which restores the inventory's proxy
settings (none) afterwards, and the test after it checks that apt's and pip's are gone; the failing tunnel run
restores an inventory proxy with a password; the last test unsets the proxy and checks that the services' settings
are gone too. The egress_tunnel.yml runs are at -vvv and print no secret they were given (issue 14): neither the
private key of Ansible's connection (which the tunnel's own ssh uses), nor the inventory proxy's password, nor one
in a refused request.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
# converge.yml's proxy: its password holds '/', '@' and ':' (percent-encoded). Each half is looked for on its
# own, so a view that cut the password at one of those characters would still be caught.
PROXY = "http://student-proxy:Zx9qK%2FVw7tR%40%3A@127.0.0.1:3128"
PASSWORD_HALVES = ("Zx9qK", "Vw7tR")
TUNNEL_PROXY = "http://127.0.0.1:3128"
# The proxy an inventory sets, which egress_tunnel.yml puts back after its work; nothing listens there.
INVENTORY_PROXY = "http://course-proxy:Jd3wX%2FMv6nB%40@127.0.0.1:3129"
INVENTORY_PROXY_HALVES = ("Jd3wX", "Mv6nB")
UNITS = ("jupyter", "openrefine")
CONTROLLER_PORT = 18128
# Not in the image's local repository (tests/machines/packages.txt), small, in bookworm main.
PACKAGE = "sl"
SOURCE = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
SOURCES_FILE = "/etc/apt/sources.list.d/molecule-egress.list"
sys.path.insert(0, str(ROOT / "tests" / "support"))
import secret_sweep  # noqa: E402  pylint: disable=wrong-import-position


def run_playbook(playbook, extra_vars, *options):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, *options, str(playbook), "-e", json.dumps(extra_vars)],
                            capture_output=True, text=True, env=env, timeout=1200, check=False)
    return result.returncode, result.stdout + result.stderr


def connection_key():
    """{place: line} of the private key Ansible's connection uses (Molecule's instance config): the tunnel's ssh
    is given the same key, so a -vvv run must show its path and never its text."""
    instances = yaml.safe_load((EPHEMERAL / "instance_config.yml").read_text())
    found = {}
    for instance in instances:
        found.update(secret_sweep.private_key(instance["identity_file"]))
    assert found  # a sweep that looks for nothing passes every leak
    return found


def assert_vvv(output):
    assert "ESTABLISH SSH CONNECTION" in output, "not a -vvv run: " + output[-2000:]


def apt_through_the_tunnel_port(host):
    """apt as the tunnel would use it: Debian's mirror as a source, the VM's loopback port as the proxy."""
    host.run_test("printf '%%s\\n' %s > %s", SOURCE, SOURCES_FILE)
    try:
        update = host.run("apt-get -o Acquire::http::Proxy=%s -o Acquire::Retries=0 update", TUNNEL_PROXY)
        install = host.run("apt-get -o Acquire::http::Proxy=%s -o Acquire::Retries=0 install -y %s", TUNNEL_PROXY,
                           "cowsay")
    finally:
        host.run_test("rm -f %s", SOURCES_FILE)
        host.run("apt-get update")  # forget that source's lists again
    return update, install


def controller_port_open(port):
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_environment(host, unit):
    pid = host.check_output("systemctl show -p MainPID --value %s", unit)
    return host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid).splitlines()


def test_apt_uses_the_proxy(host):
    conf = host.file("/etc/apt/apt.conf.d/95coursevm-proxy")
    # The URL holds a password: root only (apt runs as root).
    assert (conf.mode, conf.user, conf.group) == (0o600, "root", "root")
    dump = host.check_output("apt-config dump")
    assert 'Acquire::http::Proxy "%s";' % PROXY in dump
    assert 'Acquire::https::Proxy "%s";' % PROXY in dump


def test_pip_uses_the_proxy(host):
    conf = host.file("/etc/pip.conf")
    assert (conf.mode, conf.user, conf.group) == (0o600, "root", "root")
    # Read as pip reads it, as root (the image has no pip for the system Python; the venvs' pips read the same
    # file). RawConfigParser, as pip's: the %XX of the password stay as they are.
    script = ("import configparser; c = configparser.RawConfigParser(); c.read('/etc/pip.conf'); "
              "print(c.get('global', 'proxy'))")
    assert host.check_output("python3 -c %s", script) == PROXY


def test_jupyter_unit_gets_the_proxy_from_a_root_only_file(host):
    for unit in UNITS:
        env_file = host.file("/etc/systemd/system/%s.service.d/proxy.env" % unit)
        assert (env_file.mode, env_file.user, env_file.group) == (0o600, "root", "root")
    assert "proxy.env" in host.check_output("systemctl show -p EnvironmentFiles --value jupyter")
    # The running process got the variables, the %XX untouched: the role restarted the unit after writing them.
    environ = process_environment(host, "jupyter")
    assert "https_proxy=%s" % PROXY in environ and "HTTP_PROXY=%s" % PROXY in environ
    assert "no_proxy=localhost,127.0.0.1,::1" in environ


# What another user of the VM can run or read. Each must work (or be refused) as expected, so that an empty
# answer is not taken for a hidden password.
AS_NOBODY = {
    "systemctl show -p Environment jupyter": 0,
    "systemctl show jupyter": 0,
    "systemctl cat jupyter": 0,
    "cat /etc/apt/apt.conf.d/95coursevm-proxy": 1,
    "cat /etc/pip.conf": 1,
    "cat /etc/systemd/system/jupyter.service.d/proxy.env": 1,
    "cat /etc/systemd/system/openrefine.service.d/proxy.env": 1,
    "apt-config dump": 0,
}


@pytest.mark.parametrize("command", sorted(AS_NOBODY))
def test_another_user_cannot_see_the_password(host, command):
    result = host.run("runuser -u nobody -- %s" % command)
    assert result.rc == AS_NOBODY[command], result.stdout + result.stderr
    for half in PASSWORD_HALVES:
        assert half not in result.stdout + result.stderr


def test_a_new_password_is_applied_and_never_shown_at_vvv(host):
    """A run that changes the password (files rewritten, units verified, reloaded and restarted) shows no part of
    it, even at -vvv; the service runs with the new one."""
    new_url = "http://student-proxy:Qm4pL%2FHc8sN%40@127.0.0.1:3128"
    pid_before = host.check_output("systemctl show -p MainPID --value jupyter")
    rc, output = run_playbook(ROOT / "molecule" / "egress_proxy" / "converge.yml", {"egress_proxy_url": new_url}, "-vvv")
    assert rc == 0, output
    for half in ("Qm4pL", "Hc8sN", *PASSWORD_HALVES):
        assert half not in output, output
    assert host.check_output("systemctl show -p MainPID --value jupyter") != pid_before  # restarted
    assert "https_proxy=%s" % new_url in process_environment(host, "jupyter")


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
        "egress_tunnel_apt_sources": [SOURCE]}, "-vvv")
    assert rc == 0, output
    assert_vvv(output)
    assert secret_sweep.printed(output, connection_key()) == []
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


def test_tunnel_is_closed_even_when_the_work_fails(host, tmp_path):
    """The work fails; the tunnel is closed and the inventory's own proxy (with a password) is put back, and the
    -vvv run shows neither that password nor the connection's key."""
    inventory_proxy = tmp_path / "inventory-proxy.yml"
    inventory_proxy.write_text(json.dumps({"all": {"vars": {"egress_proxy_url": INVENTORY_PROXY}}}))
    rc, output = run_playbook(ROOT / "playbooks" / "egress_tunnel.yml", {
        "egress_tunnel_hosts": "all", "egress_tunnel_apt_packages": ["no-such-package-coursevm"],
        "egress_tunnel_apt_sources": [SOURCE]}, "-i", str(inventory_proxy), "-vvv")
    assert rc != 0, output
    assert "no-such-package-coursevm" in output
    assert "Close the reverse tunnel" in output
    assert not controller_port_open(CONTROLLER_PORT)
    assert not host.socket("tcp://127.0.0.1:3128").is_listening
    assert not host.file("/etc/apt/sources.list.d/coursevm-egress-tunnel.list").exists
    # The inventory's proxy is back (root only), and the run printed none of it.
    assert 'Acquire::http::Proxy "%s";' % INVENTORY_PROXY in host.check_output("apt-config dump")
    assert host.file("/etc/apt/apt.conf.d/95coursevm-proxy").mode == 0o600
    assert_vvv(output)
    secrets = dict(connection_key(), **dict(("inventory proxy password, part %d" % n, half)
                                            for n, half in enumerate(INVENTORY_PROXY_HALVES, 1)))
    assert secret_sweep.printed(output, secrets) == []


# A request egress_tunnel.yml refuses, each part holding a password: a pip index URL given as a "package" (no pip
# options), and a mirror with credentials on a line that is no deb line (no suite).
REFUSED_SECRETS = {"pip index password": "Tq7vWz3kPn", "apt mirror password": "Hy5rLm8cXs"}


def test_a_refused_tunnel_request_prints_no_secret_at_vvv(host):
    rc, output = run_playbook(ROOT / "playbooks" / "egress_tunnel.yml", {
        "egress_tunnel_hosts": "all",
        "egress_tunnel_pip_packages": ["rich", "--index-url=https://mirror-user:%s@pypi.example/simple"
                                       % REFUSED_SECRETS["pip index password"]],
        "egress_tunnel_apt_sources": ["deb https://mirror-user:%s@deb.example/debian"
                                      % REFUSED_SECRETS["apt mirror password"]]}, "-vvv")
    assert rc != 0, output
    assert "Give apt package names" in " ".join(output.split()), output
    assert "Start the controller's proxy" not in output and not controller_port_open(CONTROLLER_PORT)
    assert_vvv(output)
    assert secret_sweep.printed(output, dict(connection_key(), **REFUSED_SECRETS)) == []


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


def test_unsetting_the_proxy_removes_every_file_and_variable(host):
    rc, output = run_playbook(ROOT / "molecule" / "egress_proxy" / "converge.yml", {"egress_proxy_url": ""})
    assert rc == 0, output
    for unit in UNITS:
        assert not host.file("/etc/systemd/system/%s.service.d/proxy.conf" % unit).exists
        assert not host.file("/etc/systemd/system/%s.service.d/proxy.env" % unit).exists
    assert host.check_output("systemctl show -p EnvironmentFiles --value jupyter") == ""
    assert not [line for line in process_environment(host, "jupyter") if line.lower().startswith("https_proxy=")]
    assert not host.file("/etc/apt/apt.conf.d/95coursevm-proxy").exists
    assert "proxy" not in host.file("/etc/pip.conf").content_string
