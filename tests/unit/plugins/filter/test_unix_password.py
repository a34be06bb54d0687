"""Unix hashes must be accepted by the system's own crypt(3), so they are checked with libxcrypt too."""

import ctypes
import ctypes.util

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter import unix_password as up

# Cheap hashes for the tests that are not about the cost; the first test checks the default rounds.
FAST = 5000


def system_crypt(password, setting):
    """crypt(3) from libcrypt, what PAM's pam_unix calls to check a password."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode("utf-8"), setting.encode("ascii")).decode("ascii")


def test_hash_is_sha512_crypt_accepted_by_libcrypt():
    hashed = up.unix_password_hash("correct horse battery")
    assert hashed.startswith("$6$rounds=656000$")
    assert system_crypt("correct horse battery", hashed) == hashed
    assert system_crypt("correct horse batterY", hashed) != hashed


def test_rounds_are_honoured():
    hashed = up.unix_password_hash("correct horse battery", rounds=5000)
    # glibc's implicit rounds: passlib writes no rounds= field for 5000.
    assert hashed.startswith("$6$") and "rounds=" not in hashed
    assert system_crypt("correct horse battery", hashed) == hashed


def test_hashes_are_salted():
    assert up.unix_password_hash("same password", rounds=FAST) != up.unix_password_hash("same password", rounds=FAST)


def test_current_hash_is_kept_when_it_matches():
    current = up.unix_password_hash("keep me please", rounds=FAST)
    assert up.unix_password_hash("keep me please", current=current, rounds=FAST) == current


def test_current_hash_made_by_the_system_is_kept():
    current = system_crypt("made by chpasswd", "$6$rounds=5000$abcdefgh12345678$")
    assert up.unix_password_hash("made by chpasswd", current=current, rounds=FAST) == current


@pytest.mark.parametrize("current", ["", "!", "*", "!$6$abc$def", "$y$j9T$3ioQ4jH58ktlAcqksElHw0$b.RkS2Ds",
                                     "$1$abc$def", "not a hash"])
def test_other_current_values_give_a_new_hash(current):
    hashed = up.unix_password_hash("fresh password", current=current, rounds=FAST)
    assert hashed != current and hashed.startswith("$6$")
    assert up.unix_password_verify(hashed, "fresh password")


def test_current_hash_of_another_password_is_replaced():
    old = up.unix_password_hash("old password", rounds=FAST)
    new = up.unix_password_hash("new password", current=old, rounds=FAST)
    assert new != old and up.unix_password_verify(new, "new password")


def test_verify_refuses_a_locked_field():
    hashed = up.unix_password_hash("locked away", rounds=FAST)
    assert up.unix_password_verify(hashed, "locked away")
    assert not up.unix_password_verify("!" + hashed, "locked away")
    assert not up.unix_password_verify("", "locked away")
    assert not up.unix_password_verify(None, "locked away")


def test_non_ascii_password_round_trips():
    hashed = up.unix_password_hash("pässwörd-日本", rounds=FAST)
    assert up.unix_password_verify(hashed, "pässwörd-日本")
    assert system_crypt("pässwörd-日本", hashed) == hashed


@pytest.mark.parametrize("password", ["", None, 42, ["x"]])
def test_bad_password_is_refused(password):
    with pytest.raises(AnsibleFilterError, match="unix_password_hash: the password"):
        up.unix_password_hash(password, rounds=FAST)


@pytest.mark.parametrize("algorithm", ["yescrypt", "md5_crypt", "des"])
def test_unknown_algorithm_is_refused(algorithm):
    with pytest.raises(AnsibleFilterError, match="algorithm must be one of sha512_crypt"):
        up.unix_password_hash("password1234", algorithm)


@pytest.mark.parametrize("rounds", [999, 0, "many", None, 10**10])
def test_bad_rounds_are_refused(rounds):
    with pytest.raises(AnsibleFilterError, match="rounds must be"):
        up.unix_password_hash("password1234", rounds=rounds)


def test_filters_are_registered():
    filters = up.FilterModule().filters()
    assert filters["unix_password_hash"] is up.unix_password_hash
    assert filters["unix_password_verify"] is up.unix_password_verify
