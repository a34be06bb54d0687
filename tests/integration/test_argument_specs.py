"""Argument specs enforce what they say: an unset required option, or a value of the wrong kind, is refused by
the role's argument spec validation (the first task of the entry point), naming the option, before anything runs.

Each entry point runs against the controller in check mode through role_check.write_playbook (tasks_from for the
entry points other than main). The control: with the option given, the same play gets past the spec.
"""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): each is refused by the first task.
BATCHED = True

SPEC_TASK = "Validating arguments against arg spec"
SECRET = "a-chosen-jupyter-pw-x9"

# (role, entry point): every required option with a value that passes the spec
REQUIRED = {
    ("jupyter", "main"): {"jupyter_password": SECRET},
    ("jupyter", "password"): {"jupyter_password": SECRET},
    ("course_image", "main"): {"course_image_src": "/nonexistent/course.vmdk"},
    ("course_server", "main"): {"course_server_course": "tm351", "course_server_student": "s001",
                                "course_server_image": "course", "course_server_flavor": "m1.small"},
    ("course_server", "absent"): {"course_server_course": "tm351", "course_server_student": "s001"},
    ("cloud_network", "main"): {"cloud_network_course": "tm351"},
    ("cloud_network", "absent"): {"cloud_network_course": "tm351"},
    ("heat_stack", "main"): {"heat_stack_course": "tm351", "heat_stack_students": [{"id": "s001"}],
                             "heat_stack_output_dir": "/nonexistent/heat", "heat_stack_image": "course",
                             "heat_stack_flavor": "m1.small"},
    ("credentials", "reset_password"): {"credentials_reset_student": "s001"},
    ("student_volume", "main"): {"student_volume_id": "0f6e2b8c-3a4d-4f1e-9b7a-5c2d1e0f9a8b"},
}
UNSET = sorted((role, entry, option) for (role, entry), given in REQUIRED.items() for option in given)


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    plays = {}
    for role, entry in REQUIRED:
        folder = tmp_path_factory.mktemp("%s-%s" % (role, entry))
        plays[role, entry] = role_check.write_playbook(folder, "coursevm.openstack." + role,
                                                       tasks_from=() if entry == "main" else [entry])
    return plays


def refused_by_the_spec(play, extra_vars):
    task, message = role_check.refusal(play, extra_vars, "never reached: the spec is the first task")
    assert SPEC_TASK in task, (task, message)
    return message


@pytest.mark.parametrize("role, entry, option", UNSET)
def test_an_unset_required_option_is_refused_by_the_spec_naming_it(plays, role, entry, option):
    given = {name: value for name, value in REQUIRED[role, entry].items() if name != option}
    message = refused_by_the_spec(plays[role, entry], given)
    assert "missing required arguments: %s" % option in message, message
    assert SECRET not in message


BAD = {
    "tunnel route": ("egress_proxy", "tunnel", {"egress_proxy_tunnel_apt_packages": ["sl"],
                                                "egress_proxy_tunnel_route": "carrier-pigeon"},
                     "egress_proxy_tunnel_route"),
    "tunnel packages not a list": ("egress_proxy", "tunnel", {"egress_proxy_tunnel_apt_packages": {"sl": "1.0"}},
                                   "egress_proxy_tunnel_apt_packages"),
    "tunnel port not a number": ("egress_proxy", "tunnel", {"egress_proxy_tunnel_apt_packages": ["sl"],
                                                            "egress_proxy_tunnel_controller_port": "many"},
                                 "egress_proxy_tunnel_controller_port"),
    "reset unix not a boolean": ("credentials", "reset_password", {"credentials_reset_student": "s001",
                                                                   "credentials_reset_unix": "perhaps",
                                                                   "credentials_reset_password": SECRET},
                                 "credentials_reset_unix"),
}


@pytest.fixture(scope="module")
def entry_points(tmp_path_factory):
    plays = {}
    for role, entry, _given, _option in BAD.values():
        if (role, entry) not in plays:
            plays[role, entry] = role_check.write_playbook(tmp_path_factory.mktemp(entry), "coursevm.openstack." + role,
                                                           tasks_from=[entry])
    return plays


@pytest.mark.parametrize("case", sorted(BAD))
def test_an_entry_point_refuses_a_bad_value_naming_the_option(entry_points, case):
    role, entry, given, option = BAD[case]
    message = refused_by_the_spec(entry_points[role, entry], given)
    assert option in message, message


def test_a_refused_reset_never_shows_the_chosen_password(entry_points):
    _role, _entry, given, _option = BAD["reset unix not a boolean"]
    result = role_check.run_check(entry_points["credentials", "reset_password"], given, "-vvv")
    output = role_check.assert_refused_before(result, "Make, record and apply the student's new secrets")
    assert "credentials_reset_unix" in output and SECRET not in output, output
