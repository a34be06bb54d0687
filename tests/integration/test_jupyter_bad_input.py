"""Bad values for the jupyter role stop the play at its checks, before any task that changes the machine.

The role runs against the controller itself, in check mode as a second guard: if a check ever let a bad value
through, nothing would be changed here either, and the test would still fail on the missing message.
"""


import pytest

import role_check  # tests/support, on sys.path via conftest

# Its cases run in one ansible-playbook per playbook (role_check.Batch): these roles check one host at a time.
BATCHED = True

GOOD = {"jupyter_password": "a-long-enough-password"}

CASES = {
    "port out of range": ({"jupyter_port": 70000}, "jupyter_port must be 1024-65535"),
    "port zero": ({"jupyter_port": 0}, "jupyter_port must be 1024-65535"),
    "base_url without leading slash": ({"jupyter_base_url": "jupyter/"}, "jupyter_base_url must start and end with '/'"),
    "base_url without trailing slash": ({"jupyter_base_url": "/jupyter"}, "jupyter_base_url must start and end with '/'"),
    "empty password": ({"jupyter_password": ""}, "jupyter_password is empty or shorter than 8"),
    "short password": ({"jupyter_password": "short"}, "jupyter_password is empty or shorter than 8"),
    "user name with a space": ({"jupyter_user": "ou student"}, "is not a valid Linux user or group name"),
    "user name with upper case": ({"jupyter_user": "OUstudent"}, "is not a valid Linux user or group name"),
    "root as the course user": ({"jupyter_user": "root"}, "Jupyter must run as an unprivileged course user"),
    "default_url without slash": ({"jupyter_default_url": "tree"}, "jupyter_default_url must start with '/'"),
    "relative notebook folder": ({"jupyter_notebook_dir": "notebooks"}, "must be absolute paths"),
    "unknown install source": ({"jupyter_install_from": "ftp"}, "jupyter_install_from"),
    "unknown hash algorithm": ({"jupyter_password_algorithm": "md5"}, "jupyter_password_algorithm"),
}


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    return role_check.write_playbook(tmp_path_factory.mktemp("bad-input"), "coursevm.openstack.jupyter")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_fails_before_any_change(playbook, case):
    overrides, message = CASES[case]
    # Nothing after the checks ran: the first task that would touch the machine is the apt install.
    role_check.assert_refused(role_check.run_check(playbook, {**GOOD, **overrides}), message, "Install the packages the venv needs")
