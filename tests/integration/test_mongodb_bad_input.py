"""Bad values for the mongodb role stop the play at the role's checks, before any task that changes anything (on
the controller or the VM), and the refusal names the option to fix, never a password.

The role runs against the controller itself in check mode, as in test_postgresql_bad_input.py.
"""

import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

FIRST_CHANGE = "Create the folder of the MongoDB passwords on the controller (owner only)"
SECRET = "Sh0rt-pw-x9"  # too short (11 < 12): refused, and never printed
SECRET_BAD_CHARS = "long-enough-but-has:colon@at"  # would break the connection URI: refused, never printed

ADMIN = {"name": "admin", "database": "admin", "roles": ["root"]}
COURSE = {"name": "course", "database": "course", "roles": ["readWrite"]}
# overrides: the options the refusal must name
CASES = {
    "database name with a dash": ({"mongodb_users": [ADMIN, dict(COURSE, database="course-db")]},
                                  ["mongodb_users[1]"]),
    "database name with a dot": ({"mongodb_users": [ADMIN, dict(COURSE, database="course.x")]},
                                 ["mongodb_users[1]"]),
    "database name with a space": ({"mongodb_users": [dict(ADMIN), dict(COURSE, database="my db")]},
                                   ["mongodb_users[1]"]),
    "database name starting with a digit": ({"mongodb_users": [ADMIN, dict(COURSE, database="2026course")]},
                                            ["mongodb_users[1]"]),
    "database name with a dollar": ({"mongodb_users": [ADMIN, dict(COURSE, database="course$")]},
                                    ["mongodb_users[1]"]),
    "user name with a colon": ({"mongodb_users": [ADMIN, dict(COURSE, name="course:x")]}, ["mongodb_users[1]"]),
    "duplicate user name": ({"mongodb_users": [ADMIN, COURSE, dict(COURSE, database="other")]},
                            ["mongodb_users[1]", "mongodb_users[2]"]),
    "user without roles": ({"mongodb_users": [ADMIN, dict(COURSE, roles=[])]}, ["mongodb_users[1]"]),
    "environment database not an identifier": ({"mongodb_env_database": "course db"}, ["mongodb_env_database"]),
    "admin user not root in admin": ({"mongodb_users": [dict(ADMIN, database="course"), COURSE]},
                                     ["mongodb_admin_user"]),
    "connection user not listed": ({"mongodb_uri_user": "nobody"}, ["mongodb_uri_user"]),
    "port of Jupyter": ({"mongodb_port": 8888}, ["mongodb_port", "jupyter_port"]),
    "port of OpenRefine": ({"mongodb_port": 3334}, ["mongodb_port", "openrefine_port"]),
    "port of a moved OpenRefine": ({"mongodb_port": 27351, "openrefine_port": 27351},
                                   ["mongodb_port", "openrefine_port"]),
    "port of nbdime": ({"mongodb_port": 8899}, ["mongodb_port", "server_proxy_nbdime_port"]),
    "port of PostgreSQL": ({"mongodb_port": 5432}, ["mongodb_port", "postgresql_port"]),
    "port of a moved PostgreSQL": ({"mongodb_port": 27351, "postgresql_port": 27351},
                                   ["mongodb_port", "postgresql_port"]),
    "port out of range": ({"mongodb_port": 70000}, ["mongodb_port"]),
    "bind every address": ({"mongodb_bind_ip": ["127.0.0.1", "0.0.0.0"]},
                           ["mongodb_bind_ip", "mongodb_allow_non_loopback"]),
    "bind a private address": ({"mongodb_bind_ip": ["127.0.0.1", "10.0.0.5"]},
                               ["mongodb_bind_ip", "mongodb_allow_non_loopback"]),
    "bind a host name": ({"mongodb_bind_ip": ["127.0.0.1", "db.example.org"]}, ["mongodb_bind_ip"]),
    "bind without 127.0.0.1": ({"mongodb_bind_ip": ["::1"]}, ["mongodb_bind_ip"]),
    "version not a series": ({"mongodb_version": "latest"}, ["mongodb_version"]),
    "key file missing": ({"mongodb_apt_key_file": "/nonexistent/server.asc"}, ["mongodb_apt_key_file"]),
    "key file not a public key": ({"mongodb_apt_key_file": "/etc/hostname"}, ["mongodb_apt_key_file"]),
    "debs route without a folder": ({"mongodb_source": "debs"}, ["mongodb_debs_dir"]),
    "debs folder without debs": ({"mongodb_source": "debs", "mongodb_debs_dir": "/etc"}, ["mongodb_debs_dir"]),
    "dbPath under /home": ({"mongodb_db_path": "/home/oustudent/db"}, ["mongodb_db_path"]),
    "dbPath relative": ({"mongodb_db_path": "var/lib/mongodb"}, ["mongodb_db_path"]),
    "settings file in the notebook folder": ({"mongodb_env_file": "/home/oustudent/notebooks/mongodb.env"},
                                             ["mongodb_env_file", "mongodb_notebook_dir"]),
    "missing seed archive": ({"mongodb_seed_archive": "/nonexistent/seed.archive"}, ["mongodb_seed_archive"]),
    "root as the course account": ({"mongodb_course_user": "root"}, ["mongodb_course_user"]),
}


playbook = role_check.role_playbook("coursevm.openstack.mongodb")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_refused_before_any_change_naming_the_option(playbook, case):
    overrides, options = CASES[case]
    role_check.assert_refused_naming(playbook, overrides, options, FIRST_CHANGE)


@pytest.mark.parametrize("secret", [SECRET, SECRET_BAD_CHARS])
def test_a_bad_password_is_refused_naming_the_user_not_the_password(playbook, secret):
    users = [ADMIN, dict(COURSE, password=secret)]
    role_check.assert_secret_refused(playbook, {"mongodb_users": users}, "mongodb_users[1].password", secret,
                                     FIRST_CHANGE)


# A play that runs only the role's checks: the good cases pass them and the run ends there.
checks_only = role_check.role_playbook("coursevm.openstack.mongodb", ["validate.yml"], "checks_only")


@pytest.fixture(scope="module")
def debs_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mongodb-debs")
    (folder / "mongodb-org-server_8.0.0_amd64.deb").write_bytes(b"not read by the checks")
    return folder


GOOD = {
    "the defaults": {},
    "the classic port": {"mongodb_port": 27351},
    "a non-loopback address opted in": {"mongodb_bind_ip": ["127.0.0.1", "10.0.0.5"],
                                        "mongodb_allow_non_loopback": True},
    "loopback in other spellings": {"mongodb_bind_ip": ["127.0.0.1", "localhost", "::1"]},
    "no authentication and no users": {"mongodb_auth": False, "mongodb_users": [], "mongodb_uri_user": ""},
    "a given password": {"mongodb_users": [ADMIN, dict(COURSE, password="a-long-enough_password.1~")]},
    "identifiers with digits and underscores": {
        "mongodb_users": [ADMIN, {"name": "tm351.student", "database": "tm351_2026", "roles": ["readWrite"]}],
        "mongodb_uri_user": "tm351.student", "mongodb_env_database": "tm351_2026"},
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_values_pass_the_checks(checks_only, case):
    result = role_check.run_check(checks_only, GOOD[case])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_folder_of_debs_passes_the_checks(checks_only, debs_dir):
    result = role_check.run_check(checks_only, {"mongodb_source": "debs", "mongodb_debs_dir": str(debs_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
