"""nginx_proxy's main-configuration options (issue 14): TLS protocols and ciphers, HSTS, worker limits. A value
nginx or gixy would object to is refused at the role's checks, before anything changes, naming the option; the
edge values pass.

Like test_web_roles_bad_input.py, the role runs against the controller in check mode; the assertions are about
behaviour (refused before anything, which option is named), not a message's wording.
"""

import textwrap

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

FIRST_AFTER_CHECKS = "Decide whether nginx serves HTTPS"

# why: (options, the option the refusal names)
BAD = {
    "TLS 1.1": ({"nginx_proxy_tls_protocols": ["TLSv1.1", "TLSv1.2"]}, "nginx_proxy_tls_protocols"),
    "TLS 1.0": ({"nginx_proxy_tls_protocols": ["TLSv1"]}, "nginx_proxy_tls_protocols"),
    "no protocol": ({"nginx_proxy_tls_protocols": []}, "nginx_proxy_tls_protocols"),
    "no cipher": ({"nginx_proxy_tls_ciphers": []}, "nginx_proxy_tls_ciphers"),
    "a cipher alias with an exclusion": ({"nginx_proxy_tls_ciphers": ["HIGH", "!aNULL"]}, "nginx_proxy_tls_ciphers"),
    "a cipher list in one entry": ({"nginx_proxy_tls_ciphers": ["ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA"]},
                                   "nginx_proxy_tls_ciphers"),
    "a directive smuggled in a cipher": ({"nginx_proxy_tls_ciphers": ["AES128-SHA; autoindex on"]},
                                         "nginx_proxy_tls_ciphers"),
    "a negative HSTS max-age": ({"nginx_proxy_tls_hsts_max_age": -1}, "nginx_proxy_tls_hsts_max_age"),
    "open files below twice the connections": ({"nginx_proxy_worker_connections": 1024,
                                                "nginx_proxy_worker_rlimit_nofile": 2047},
                                               "nginx_proxy_worker_rlimit_nofile"),
    "no connections": ({"nginx_proxy_worker_connections": 0}, "nginx_proxy_worker_connections"),
}

GOOD = {
    "TLS 1.3 only": {"nginx_proxy_tls_protocols": ["TLSv1.3"]},
    "one cipher": {"nginx_proxy_tls_ciphers": ["ECDHE-RSA-AES256-GCM-SHA384"]},
    "no HSTS": {"nginx_proxy_tls_hsts_max_age": 0},
    "open files exactly twice the connections": {"nginx_proxy_worker_connections": 512,
                                                 "nginx_proxy_worker_rlimit_nofile": 1024},
}


@pytest.fixture(scope="module")
def play(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("nginx-proxy"), "coursevm.openstack.nginx_proxy")


@pytest.fixture(scope="module")
def checks_only(tmp_path_factory):
    """A play that runs only the role's checks (tasks_from validate.yml) on the controller."""
    path = tmp_path_factory.mktemp("nginx-proxy-checks") / "checks.yml"
    path.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - ansible.builtin.include_role:
                name: coursevm.openstack.nginx_proxy
                tasks_from: validate.yml
        """))
    return path


@pytest.mark.parametrize("why", sorted(BAD))
def test_a_bad_main_configuration_option_is_refused(play, why):
    overrides, option = BAD[why]
    _task, message = role_check.refusal(play, overrides, FIRST_AFTER_CHECKS)
    assert option in message, message


@pytest.mark.parametrize("why", sorted(GOOD))
def test_good_main_configuration_options_pass(checks_only, why):
    result = role_check.run_check(checks_only, GOOD[why])
    assert result.returncode == 0, result.stdout + result.stderr
