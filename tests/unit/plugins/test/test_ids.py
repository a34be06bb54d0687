"""One student-id rule: what the roster accepts, every later step's check (the student_id test) accepts, and
what the roster refuses, the test refuses."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter.roster import roster
from ansible_collections.coursevm.openstack.plugins.test.ids import course_id, linux_name, student_id

IDS = ["s001", "20231234", "ab-12", "a", "x" * 31, "x" * 32, "Ab12", "s_001", "-ab", "s001\n", "a b", "../x", ""]


def roster_accepts(sid):
    try:
        roster("student_id,name,email\n%s,Name,n@example.invalid\n" % sid)
        return True
    except AnsibleFilterError:
        return False


@pytest.mark.parametrize("sid", IDS)
def test_the_roster_and_the_student_id_test_agree(sid):
    assert student_id(sid) == roster_accepts(sid)


def test_digits_first_is_a_student_id_but_not_a_linux_name():
    assert student_id("20231234") and not linux_name("20231234")


@pytest.mark.parametrize("value", ["tm351\n", "tm-351", "", None, 351, "x" * 21])
def test_bad_course_ids(value):
    assert not course_id(value)


@pytest.mark.parametrize("value", ["tm351", "tm351_2026", "1course"])
def test_good_course_ids(value):
    assert course_id(value)


@pytest.mark.parametrize("value", ["root\n", "Root", "1abc", "a" * 33, None])
def test_bad_linux_names(value):
    assert not linux_name(value)
