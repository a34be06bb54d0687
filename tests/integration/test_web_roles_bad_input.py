"""Values the web roles (jupyter, nginx_proxy, server_proxy) used to let through: each is refused at the role's
checks, before the first task after them, and the refusal names the option to fix.

Like test_jupyter_bad_input.py, each role runs against the controller in check mode. The assertions are about
behaviour (refused before anything, which option is named), not the wording of a message.
"""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

# role: (its defaults for a run that passes every check, the first task after its checks)
ROLES = {
    "jupyter": ({"jupyter_password": "a-long-enough-password"}, "Install the packages the venv needs"),
    "nginx_proxy": ({}, "Decide whether nginx serves HTTPS"),
    "server_proxy": ({}, "Look for Jupyter Server in the venv"),
}
BASE_URL_OPTION = {"jupyter": "jupyter_base_url", "nginx_proxy": "nginx_proxy_base_url",
                   "server_proxy": "server_proxy_jupyter_base_url"}
# Paths with dot segments (or an empty one): a browser or nginx resolves them elsewhere than Jupyter serves.
DOT_BASE_URLS = ["/a/../b/", "/../", "/./x/", "/jupyter/./", "/a//b/"]


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-roles")
    plays = {}
    for role in ROLES:
        (folder / role).mkdir()
        plays[role] = role_check.write_playbook(folder / role, "coursevm.openstack." + role)
    return plays


def refused(plays, role, overrides):
    """The (task, message) that refused `overrides` in `role`, after checking nothing ran past the checks."""
    defaults, first_after_checks = ROLES[role]
    return role_check.refusal(plays[role], {**defaults, **overrides}, first_after_checks)


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("base_url", DOT_BASE_URLS)
def test_a_base_url_with_dot_segments_is_refused(plays, role, base_url):
    option = BASE_URL_OPTION[role]
    _task, message = refused(plays, role, {option: base_url})
    assert option in message, message


@pytest.fixture(scope="module")
def checks_only(tmp_path_factory):
    """Per role, a play that runs only the role's checks (tasks_from validate.yml): the control cases pass them
    and the run ends there, without touching the controller."""
    folder = tmp_path_factory.mktemp("web-checks")
    plays = {}
    for role in ROLES:
        (folder / role).mkdir()
        plays[role] = role_check.write_playbook(folder / role, "coursevm.openstack." + role, tasks_from=["validate.yml"])
    return plays


def passes(checks_only, role, overrides):
    result = role_check.run_check(checks_only[role], {**ROLES[role][0], **overrides})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("base_url", ["/", "/jupyter/", "/tm351.2026/a~b_c-d/", "/.../"])
def test_good_base_urls_pass(checks_only, role, base_url):
    passes(checks_only, role, {BASE_URL_OPTION[role]: base_url})


# A port below 1024 cannot be bound by the unprivileged units (Jupyter, OpenRefine, nbdime): the play would wait
# for it in vain. (role, option, value)
PORTS = [("jupyter", "jupyter_port", port) for port in (80, 443, 1023, 0, 65536)] + \
    [("nginx_proxy", "nginx_proxy_jupyter_port", port) for port in (80, 1023, 65536)] + \
    [("server_proxy", option, port) for option in ("server_proxy_jupyter_port", "server_proxy_openrefine_port",
                                                   "server_proxy_nbdime_port") for port in (443, 1023, 70000)]


@pytest.mark.parametrize("role, option, port", PORTS)
def test_a_privileged_or_impossible_port_is_refused(plays, role, option, port):
    _task, message = refused(plays, role, {option: port})
    assert option in message, message


def test_a_privileged_port_of_an_extra_app_is_refused(plays):
    _task, message = refused(plays, "server_proxy", {"server_proxy_extra_apps": [{"title": "Docs", "port": 80}]})
    assert "server_proxy_extra_apps" in message, message


@pytest.mark.parametrize("role, option", sorted({(role, option) for role, option, _port in PORTS}))
@pytest.mark.parametrize("port", [1024, 65535])
def test_unprivileged_ports_pass(checks_only, role, option, port):
    passes(checks_only, role, {option: port})


# Two apps on one port: the refusal names the port and both apps (by the option each comes from).
SHARED_PORTS = {
    "nbdime on OpenRefine's port": ({"server_proxy_nbdime_port": 3334}, 3334,
                                    ["server_proxy_openrefine_port", "server_proxy_nbdime_port"]),
    "two extra apps on one port": ({"server_proxy_extra_apps": [{"title": "Docs", "port": 9000},
                                                                {"title": "Dash", "port": 9001},
                                                                {"title": "Board", "port": 9000}]}, 9000,
                                   ["server_proxy_extra_apps[0]", "server_proxy_extra_apps[2]"]),
}


@pytest.mark.parametrize("case", sorted(SHARED_PORTS))
def test_two_apps_on_one_port_are_named(plays, case):
    overrides, port, options = SHARED_PORTS[case]
    _task, message = refused(plays, "server_proxy", overrides)
    assert str(port) in message, message
    for option in options:
        assert option in message, message
    assert "server_proxy_extra_apps[1]" not in message, message


@pytest.mark.parametrize("nginx, jupyter", [("/", "/jupyter/"), ("/jupyter/", "/"), ("/a/", "/b/")])
def test_nginx_and_jupyter_base_urls_that_differ_are_refused(plays, nginx, jupyter):
    _task, message = refused(plays, "nginx_proxy", {"nginx_proxy_base_url": nginx, "jupyter_base_url": jupyter})
    assert "nginx_proxy_base_url" in message and "jupyter_base_url" in message, message


@pytest.mark.parametrize("base_url", ["/", "/jupyter/"])
def test_nginx_and_jupyter_base_urls_that_agree_pass(checks_only, base_url):
    passes(checks_only, "nginx_proxy", {"nginx_proxy_base_url": base_url, "jupyter_base_url": base_url})


# Entries that would install a jupyter-server-proxy without the 2024 fixes (< 4.2.0), next to a good one.
OLD_PROXY = ["jupyter-server-proxy==4.1.0", "jupyter_server_proxy<4", "jupyter-server-proxy~=3.2",
             "https://files.example.org/jupyter_server_proxy-4.1.0-py3-none-any.whl"]


@pytest.mark.parametrize("entry", OLD_PROXY)
def test_server_proxy_refuses_any_entry_below_the_floor(plays, entry):
    packages = ["jupyter-server-proxy>=4.2.0", entry, "nbdime>=4,<5"]
    _task, message = refused(plays, "server_proxy", {"server_proxy_pip_packages": packages})
    assert "server_proxy_pip_packages" in message, message


@pytest.mark.parametrize("option", ["jupyter_pip_packages", "jupyter_extra_pip_packages"])
@pytest.mark.parametrize("entry", OLD_PROXY)
def test_jupyter_refuses_an_old_jupyter_server_proxy_in_its_lists(plays, option, entry):
    packages = (["jupyter-server>=2.14,<3", "notebook>=7.2,<8"] if option == "jupyter_pip_packages" else []) + [entry]
    _task, message = refused(plays, "jupyter", {option: packages})
    assert option in message, message


@pytest.mark.parametrize("packages", [["jupyter-server-proxy==4.2.1", "nbdime>=4,<5"],
                                      ["jupyter_server_proxy>=4.2,<5", "jupyter-server-proxy~=4.2", "nbdime"]])
def test_server_proxy_takes_entries_at_the_floor(checks_only, packages):
    passes(checks_only, "server_proxy", {"server_proxy_pip_packages": packages})


def test_jupyter_takes_a_good_jupyter_server_proxy(checks_only):
    passes(checks_only, "jupyter", {"jupyter_extra_pip_packages": ["jupyter-server-proxy>=4.2", "pandas"]})
