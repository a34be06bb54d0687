"""configure.yml refuses a bad list of the course's databases before any role runs (nothing changed), naming the
option. Run against the controller itself in check mode, as the role bad-input tests are."""

from pathlib import Path

import pytest

import role_check  # tests/support, on sys.path via conftest

CONFIGURE = Path(__file__).resolve().parents[2] / "playbooks" / "configure.yml"
CHECK = "Check which databases the course has"
# The first role's first check: a refused list never gets that far.
FIRST_ROLE_CHECK = "coursevm.openstack.credentials : Check the student id"


@pytest.mark.parametrize("databases", ["postgresql", ["mysql"], ["postgresql", "oracle"], {"postgresql": True}, 5],
                         ids=["a string", "unknown", "one unknown", "a mapping", "a number"])
def test_bad_databases_are_refused_before_any_role(databases):
    task, message = role_check.refusal(
        CONFIGURE, {"configure_hosts": "localhost", "configure_databases": databases}, FIRST_ROLE_CHECK)
    assert task == CHECK
    assert "configure_databases" in message


@pytest.mark.parametrize("databases", [[], ["postgresql"], ["postgresql", "mongodb"]], ids=["none", "postgresql", "both"])
def test_good_databases_pass_the_check(databases):
    """The control: a good list passes the check, and the play goes on into the first role, whose own check
    refuses a bad student id."""
    task, unused = role_check.refusal(
        CONFIGURE, {"configure_hosts": "localhost", "configure_databases": databases, "credentials_student": "Bad Id"},
        "Create the course's secrets folder")
    assert task == FIRST_ROLE_CHECK
