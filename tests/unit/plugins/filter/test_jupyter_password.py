"""The hashes must be accepted by Jupyter Server itself, so they are checked with its own passwd_check."""

import pytest
from ansible.errors import AnsibleFilterError
from jupyter_server.auth.security import passwd, passwd_check

from ansible_collections.coursevm.openstack.plugins.filter import jupyter_password as jp


def test_argon2_hash_is_accepted_by_jupyter_server():
    hashed = jp.jupyter_password_hash("correct horse")
    assert hashed.startswith("argon2:$argon2id$v=19$m=10240,t=10,p=8$")
    assert passwd_check(hashed, "correct horse")
    assert not passwd_check(hashed, "correct horsE")


def test_sha1_legacy_hash_is_accepted_by_jupyter_server():
    hashed = jp.jupyter_password_hash("correct horse", "sha1")
    algorithm, salt, digest = hashed.split(":")
    assert algorithm == "sha1" and len(salt) == 12 and len(digest) == 40
    assert passwd_check(hashed, "correct horse")
    assert not passwd_check(hashed, "wrong")


def test_non_ascii_password_round_trips():
    for algorithm in ("argon2", "sha1"):
        hashed = jp.jupyter_password_hash("pässwörd-日本", algorithm)
        assert passwd_check(hashed, "pässwörd-日本")


def test_hashes_are_salted():
    assert jp.jupyter_password_hash("same") != jp.jupyter_password_hash("same")


@pytest.mark.parametrize("algorithm", ["argon2", "sha1"])
def test_current_hash_is_kept_when_it_matches(algorithm):
    current = jp.jupyter_password_hash("keep me", algorithm)
    assert jp.jupyter_password_hash("keep me", algorithm, current=current) == current


def test_current_hash_is_replaced_when_password_changed():
    current = jp.jupyter_password_hash("old password")
    new = jp.jupyter_password_hash("new password", current=current)
    assert new != current
    assert passwd_check(new, "new password") and not passwd_check(new, "old password")


def test_current_hash_of_other_algorithm_is_replaced():
    legacy = jp.jupyter_password_hash("pw", "sha1")
    upgraded = jp.jupyter_password_hash("pw", "argon2", current=legacy)
    assert upgraded.startswith("argon2:") and passwd_check(upgraded, "pw")


def test_verify_reads_hashes_written_by_jupyter_server():
    assert jp.jupyter_password_verify(passwd("from jupyter"), "from jupyter")
    assert jp.jupyter_password_verify(passwd("from jupyter", "sha1"), "from jupyter")
    assert not jp.jupyter_password_verify(passwd("from jupyter"), "other")


@pytest.mark.parametrize("garbage", ["", None, "argon2:not-a-phc-string", "sha1:only-two", "md5:x:y", "plain"])
def test_verify_treats_malformed_hashes_as_no_match(garbage):
    assert jp.jupyter_password_verify(garbage, "pw") is False


@pytest.mark.parametrize("bad", ["", None, 42])
def test_empty_or_non_string_password_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="password"):
        jp.jupyter_password_hash(bad)


def test_unknown_algorithm_is_refused_with_the_choices():
    with pytest.raises(AnsibleFilterError, match="argon2, sha1"):
        jp.jupyter_password_hash("pw", "md5")


def test_filters_are_registered():
    filters = jp.FilterModule().filters()
    assert set(filters) == {"jupyter_password_hash", "jupyter_password_verify"}
