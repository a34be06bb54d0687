"""Bad values for the postgresql and course_user roles stop the play at the role's checks, before any task that
changes anything (on the controller or the VM), and the refusal names the option to fix, never a password.

Each role runs against the controller itself in check mode, as in test_web_roles_bad_input.py.
"""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

FIRST_CHANGE = "Create the folder of the database passwords"
SECRET = "Sh0rt-pw-x9"  # too short (11 < 12): refused, and never printed

ROLE = [{"name": "course", "auth": "password"}]
# overrides: the options the refusal must name
CASES = {
    "database name with a dash": ({"postgresql_databases": [{"name": "course-db", "owner": "course"}]},
                                  ["postgresql_databases[0]"]),
    "database name with upper case": ({"postgresql_databases": [{"name": "Course", "owner": "course"}]},
                                      ["postgresql_databases[0]"]),
    "database name with SQL in it": ({"postgresql_databases": [{"name": "x; drop table y", "owner": "course"}]},
                                     ["postgresql_databases[0]"]),
    "database name starting with a digit": ({"postgresql_databases": [{"name": "2026course", "owner": "course"}]},
                                            ["postgresql_databases[0]"]),
    "database owner that is no role": ({"postgresql_databases": [{"name": "course", "owner": "nobody"}]},
                                       ["postgresql_databases[0]"]),
    "second database bad": ({"postgresql_databases": [{"name": "course", "owner": "course"},
                                                      {"name": "bad name"}]}, ["postgresql_databases[1]"]),
    "role name not an identifier": ({"postgresql_roles": ROLE + [{"name": "Bad-Role"}]}, ["postgresql_roles[1]"]),
    "role named postgres": ({"postgresql_roles": ROLE + [{"name": "postgres"}]}, ["postgresql_roles[1]"]),
    "port of Jupyter": ({"postgresql_port": 8888}, ["postgresql_port", "jupyter_port"]),
    "port of OpenRefine": ({"postgresql_port": 3334}, ["postgresql_port", "openrefine_port"]),
    "port of a moved OpenRefine": ({"postgresql_port": 5433, "openrefine_port": 5433},
                                   ["postgresql_port", "openrefine_port"]),
    "port of nbdime": ({"postgresql_port": 8899}, ["postgresql_port", "server_proxy_nbdime_port"]),
    "port out of range": ({"postgresql_port": 70000}, ["postgresql_port"]),
    "listen on every address": ({"postgresql_listen_addresses": ["0.0.0.0"]},
                                ["postgresql_listen_addresses", "postgresql_allow_non_loopback"]),
    "listen on a private address": ({"postgresql_listen_addresses": ["127.0.0.1", "10.0.0.5"]},
                                    ["postgresql_listen_addresses", "postgresql_allow_non_loopback"]),
    "listen on a wildcard": ({"postgresql_listen_addresses": ["*"]}, ["postgresql_allow_non_loopback"]),
    "listen on a host name": ({"postgresql_listen_addresses": ["db.example.org"]}, ["postgresql_listen_addresses"]),
    "pgpass role that has no password": ({"postgresql_pgpass_role": "oustudent"}, ["postgresql_pgpass_role"]),
    "environment database not made": ({"postgresql_env_database": "other"}, ["postgresql_env_database"]),
    "missing seed file": ({"postgresql_seed_file": "/nonexistent/seed.sql"}, ["postgresql_seed_file"]),
    "root as the course account": ({"postgresql_course_user": "root"}, ["postgresql_course_user"]),
}


playbook = role_check.role_playbook("coursevm.openstack.postgresql")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_refused_before_any_change_naming_the_option(playbook, case):
    overrides, options = CASES[case]
    role_check.assert_refused_naming(playbook, overrides, options, FIRST_CHANGE)


def test_a_short_password_is_refused_naming_the_role_not_the_password(playbook):
    roles = [{"name": "course", "auth": "password"}, {"name": "admin", "password": SECRET, "superuser": True}]
    role_check.assert_secret_refused(playbook, {"postgresql_roles": roles, "postgresql_pgpass_role": "course"},
                                     "postgresql_roles[1].password", SECRET, FIRST_CHANGE)


# A play that runs only the role's checks: the good cases pass them and the run ends there.
checks_only = role_check.role_playbook("coursevm.openstack.postgresql", ["validate.yml"], "checks_only")


GOOD = {
    "the defaults": {},
    "a non-loopback address opted in": {"postgresql_listen_addresses": ["127.0.0.1", "10.0.0.5"],
                                        "postgresql_allow_non_loopback": True},
    "loopback in other spellings": {"postgresql_listen_addresses": ["localhost", "127.0.0.2", "::1"]},
    "another port": {"postgresql_port": 5433},
    "identifiers with digits and underscores": {
        "postgresql_databases": [{"name": "tm351_2026", "owner": "tm351"}, {"name": "_scratch"}],
        "postgresql_roles": [{"name": "tm351", "password": "a-long-enough-password"}],
        "postgresql_pgpass_role": "tm351", "postgresql_env_database": "tm351_2026"},
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_values_pass_the_checks(checks_only, case):
    result = role_check.run_check(checks_only, GOOD[case])
    assert result.returncode == 0, result.stdout + result.stderr


# course_user: the one place the account is made; its own checks guard it whichever role includes it.
COURSE_USER_CASES = {
    "root": ({"course_user_name": "root"}, "course_user_name"),
    "a name with a space": ({"course_user_name": "ou student"}, "course_user_name"),
    "a relative home": ({"course_user_home": "home/oustudent"}, "course_user_home"),
    "a relative shell": ({"course_user_shell": "bash"}, "course_user_shell"),
}


@pytest.fixture(scope="module")
def course_user_play(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("course-user-bad"), "coursevm.openstack.course_user")


@pytest.mark.parametrize("case", sorted(COURSE_USER_CASES))
def test_course_user_refuses_a_bad_account(course_user_play, case):
    overrides, option = COURSE_USER_CASES[case]
    _task, message = role_check.refusal(course_user_play, overrides, "Create the course group")
    assert option in message, message


def test_course_user_refuses_a_plaintext_password_without_printing_it(course_user_play):
    plaintext = "my plain password"
    result = role_check.run_check(course_user_play, {"course_user_password_hash": plaintext}, "-vvv")
    output = role_check.assert_refused_before(result, "Create the course group")
    assert "course_user_password_hash" in output, output
    assert plaintext not in output, output
