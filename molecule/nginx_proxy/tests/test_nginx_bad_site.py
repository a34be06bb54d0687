"""A site nginx refuses never reaches /etc/nginx (issue 14): the run fails with nginx's own message, nginx keeps
serving the previous site, and a re-run fails again instead of finding nothing to do.

bad_site.yml runs the role with converge.yml's options and a site template that adds a directive nginx does not
know (templates/bad_site.conf.j2). Both runs are limited to the machine under test.
"""

import http.client
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
BAD_DIRECTIVE = "coursevm_no_such_directive"
SITE = "/etc/nginx/sites-available/coursevm.conf"
ENABLED_SITE = "/etc/nginx/sites-enabled/coursevm.conf"


def run_bad_site(hostname):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or str(EPHEMERAL / "inventory")
    result = subprocess.run(["ansible-playbook", "-i", inventory, "--limit", hostname, str(SCENARIO / "bad_site.yml"),
                             "-e", json.dumps({"molecule_ephemeral_directory": str(EPHEMERAL)})],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    return result.returncode, result.stdout + result.stderr


def served(address):
    """What nginx answers on :80 at / (redirects not followed): (status, Location)."""
    conn = http.client.HTTPConnection(address, 80, timeout=30)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.headers.get("Location")
    finally:
        conn.close()


def state(host):
    """The configuration files nginx would load next, and the nginx master's pid."""
    return {"config": host.check_output("nginx -T"), "site": host.file(SITE).sha256sum,
            "master": host.check_output("systemctl show -p MainPID --value nginx")}


def test_a_site_nginx_refuses_is_never_put_in_place(host):
    variables = host.ansible.get_variables()
    hostname, address = variables["inventory_hostname"], variables["ansible_host"]
    before, answer = state(host), served(address)
    assert answer[0] in (301, 302), answer

    for attempt in ("first run", "re-run"):
        rc, output = run_bad_site(hostname)
        # The run fails with nginx's message: the directive, in the file nginx reads (as it would be in /etc/nginx).
        assert rc != 0, "%s reported success:\n%s" % (attempt, output[-3000:])
        assert BAD_DIRECTIVE in output and ENABLED_SITE in output, output[-3000:]
        # Nothing changed on disk and nginx serves the previous site, never reloaded or restarted.
        assert BAD_DIRECTIVE not in host.file(SITE).content_string
        assert state(host) == before, attempt
        assert served(address) == answer, attempt
        assert host.service("nginx").is_running
        # The copy of /etc/nginx the candidate was checked in is gone.
        assert host.run("ls -d /tmp/coursevm-nginx-*").rc != 0, attempt
