"""Bad values for the egress_proxy role and egress_tunnel.yml stop the play at their checks, before any change.

Like test_jupyter_bad_input.py: against the controller itself, in check mode as a second guard.
"""

import re
from pathlib import Path

import pytest

import role_check  # tests/support, on sys.path via conftest

ROOT = Path(__file__).resolve().parents[2]
# The role's first task that changes anything.
FIRST_CHANGE = "Create the drop-in folders"
URL_MSG = "egress_proxy_url does not parse as a proxy URL"
ROLE_CASES = {
    "no port": ({"egress_proxy_url": "http://proxy.example.org"}, URL_MSG),
    "port out of range": ({"egress_proxy_url": "http://proxy.example.org:99999"}, URL_MSG),
    "port zero": ({"egress_proxy_url": "http://proxy.example.org:0"}, URL_MSG),
    "not http": ({"egress_proxy_url": "socks5://127.0.0.1:1080"}, URL_MSG),
    "no scheme": ({"egress_proxy_url": "127.0.0.1:3128"}, URL_MSG),
    "space in host": ({"egress_proxy_url": "http://proxy host:3128"}, URL_MSG),
    "quote in url": ({"egress_proxy_url": 'http://proxy":3128'}, URL_MSG),
    "path in url": ({"egress_proxy_url": "http://proxy:3128/path"}, URL_MSG),
    "bad unit name": ({"egress_proxy_url": "http://127.0.0.1:3128", "egress_proxy_units": ["jupyter; rm"]},
                      "egress_proxy_units"),
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("bad-input"), "coursevm.openstack.egress_proxy")


@pytest.mark.parametrize("case", sorted(ROLE_CASES))
def test_bad_role_value_fails_before_any_change(playbook, case):
    overrides, message = ROLE_CASES[case]
    role_check.assert_refused(role_check.run_check(playbook, overrides), message, FIRST_CHANGE)


def test_a_password_in_the_url_is_not_printed(playbook):
    result = role_check.run_check(playbook, {"egress_proxy_url": "http://user:s3cret-pw@proxy:99999"})
    output = result.stdout + result.stderr
    assert URL_MSG in re.sub(r"\s+", " ", output)
    assert "s3cret-pw" not in output


# Two halves of one password, each checked on its own: a message that cuts the password at its '/', '@' or ':'
# still prints one of them.
HALVES = ("Zx9qK", "Vw7tR")
REFUSED_WITH_A_PASSWORD = {
    "raw slash in the password": "http://student:Zx9qK/Vw7tR@proxy.example:3128",
    "raw at in the password": "http://student:Zx9qK@Vw7tR@proxy.example:3128",
    "raw colon in the password": "http://student:Zx9qK:Vw7tR@proxy.example:3128",
    "raw percent in the password": "http://student:Zx9qK%Vw7tR@proxy.example:3128",
    "newline in the password": "http://student:Zx9qK\nVw7tR@proxy.example:3128",
    "encoded password, port out of range": "http://student:Zx9qK%2FVw7tR%40%3A@proxy.example:99999",
    "encoded password, no scheme": "student:Zx9qK%2FVw7tR@proxy.example:3128",
    "encoded password, not http": "socks5://student:Zx9qK%40Vw7tR@proxy.example:1080",
    "encoded password, path after the port": "http://student:Zx9qK%2FVw7tR@proxy.example:3128/x@y",
}


@pytest.mark.parametrize("case", sorted(REFUSED_WITH_A_PASSWORD))
def test_a_refused_url_never_shows_its_password(playbook, case):
    """Refused before any change, naming the option, and no part of the password in the output, even at -vvv."""
    result = role_check.run_check(playbook, {"egress_proxy_url": REFUSED_WITH_A_PASSWORD[case]}, options=["-vvv"])
    role_check.assert_refused(result, "egress_proxy_url", FIRST_CHANGE)
    output = result.stdout + result.stderr
    for half in HALVES:
        assert half not in output, output


def test_a_percent_encoded_password_is_accepted_and_never_shown(playbook, tmp_path):
    """A valid URL whose password holds '/', '@' and ':' (encoded) passes the checks and the whole role runs
    (check mode; apt and pip files in a scratch folder) without showing the password, even at -vvv."""
    url = "http://student:Zx9qK%2FVw7tR%40%3A@proxy.example:3128/"
    result = role_check.run_check(playbook, {
        "egress_proxy_url": url, "egress_proxy_units": ["jupyter"],
        "egress_proxy_apt_conf": str(tmp_path / "95coursevm-proxy"), "egress_proxy_pip_conf": str(tmp_path / "pip.conf")},
        options=["-vvv"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=[1-9]", output), output  # it got to the writing tasks
    for half in HALVES:
        assert half not in output, output


TUNNEL_CASES = {
    "nothing to do": ({}, "Give apt package names"),
    "apt option as a package": ({"egress_tunnel_apt_packages": ["-o=Dpkg::Options::=--force-all"]}, "Give apt package names"),
    "pip option as a package": ({"egress_tunnel_pip_packages": ["--index-url=http://evil/"]}, "Give apt package names"),
    "source that is not a deb line": ({"egress_tunnel_apt_packages": ["sl"], "egress_tunnel_apt_sources": ["rm -rf /"]},
                                      "egress_tunnel_apt_sources must be"),
    # Refused by the tunnel entry point's argument spec (egress_tunnel_route is its egress_proxy_tunnel_route).
    "unknown route": ({"egress_tunnel_apt_packages": ["sl"], "egress_tunnel_route": "carrier-pigeon"},
                      "egress_proxy_tunnel_route must be one of: tunnel, offline"),
}


@pytest.mark.parametrize("case", sorted(TUNNEL_CASES))
def test_bad_tunnel_request_fails_before_anything_starts(case):
    overrides, message = TUNNEL_CASES[case]
    result = role_check.run_check(ROOT / "playbooks" / "egress_tunnel.yml", {"egress_tunnel_hosts": "localhost", **overrides})
    role_check.assert_refused(result, message, "Start the controller's proxy")
