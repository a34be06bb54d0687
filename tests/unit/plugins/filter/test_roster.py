"""The roster and subnet filters, with real keys made by ssh-keygen."""

import base64
import struct
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter import roster as r


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Real public keys of every type ssh-keygen makes here."""
    made = {}
    folder = tmp_path_factory.mktemp("keys")
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "3072"]), ("ecdsa", ["-b", "384"]), ("rsa1024", None)):
        path = folder / kind
        args = ["-t", "rsa", "-b", "1024"] if kind == "rsa1024" else ["-t", kind] + extra
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "%s@test" % kind, "-f", str(path)] + args, check=True)
        made[kind] = (folder / (kind + ".pub")).read_text().strip()
    return made


def _raises(text):
    with pytest.raises(AnsibleFilterError) as info:
        r.roster(text)
    return str(info.value)


def test_roster_with_header_comments_and_quoted_names(keys):
    text = ("student_id,name,email,ssh_public_key\n"
            "# withdrawn: zz9\n"
            "\n"
            "ab12,\"Byron, Ada\",ada@example.edu,%s\n"
            "cd-34,Grace Hopper,grace@example.edu,\n"
            "ef5,Edsger,ed@example.org\n" % keys["ed25519"])
    students = r.roster(text)
    assert [s["id"] for s in students] == ["ab12", "cd-34", "ef5"]
    assert students[0]["name"] == "Byron, Ada"
    assert students[0]["ssh_public_key"] == keys["ed25519"]
    assert students[0]["line"] == 4
    assert students[1]["ssh_public_key"] == "" and students[2]["ssh_public_key"] == ""


def test_roster_without_header_accepts_every_key_type(keys):
    lines = ["s%d,Student %d,s%d@example.edu,%s" % (i, i, i, keys[k])
             for i, k in enumerate(("ed25519", "rsa", "ecdsa"))]
    assert [s["id"] for s in r.roster("\n".join(lines))] == ["s0", "s1", "s2"]


def test_key_whitespace_is_normalised(keys):
    kind, body, comment = keys["ed25519"].split()
    students = r.roster("s1,A,a@example.edu,  %s   %s  %s " % (kind, body, comment))
    assert students[0]["ssh_public_key"] == " ".join((kind, body, comment))


def test_every_problem_is_reported_with_its_line(keys):
    text = ("id,name,email,key\n"
            "ok1,Fine,fine@example.edu,\n"
            "Bad_Id,Upper,upper@example.edu,\n"
            "ok1,Again,again@example.edu,\n"
            "ok2,No Mail,not-an-email,\n"
            "ok3,,empty@example.edu,\n"
            "ok4,Cols\n"
            "ok5,Key,key@example.edu,ssh-ed25519 AAAA!!notbase64\n")
    message = _raises(text)
    assert "6 problems; nothing was created" in message
    assert "line 3: student id 'Bad_Id' is not safe in a resource name" in message
    assert "line 4: student id 'ok1' is a duplicate of line 2" in message
    assert "line 5: 'not-an-email' is not an email address" in message
    assert "line 6: student 'ok3' has no name" in message
    assert "line 7: expected 3 or 4 columns" in message
    assert "line 8: the SSH public key of 'ok5' has a key body that is not valid base64" in message


@pytest.mark.parametrize("student_id", ["-lead", "a b", "a.b", "x" * 32, "é1", "a/b", "a;rm"])
def test_unsafe_ids(student_id):
    assert "not safe in a resource name" in _raises("%s,N,n@example.edu" % student_id)


def test_longest_safe_id():
    assert r.roster("%s,N,n@example.edu" % ("a" * 31))[0]["id"] == "a" * 31


def test_truncated_key_is_refused(keys):
    kind, body = keys["rsa"].split()[:2]
    message = _raises("s1,A,a@example.edu,%s %s" % (kind, body[:-40]))
    assert "the SSH public key of 's1'" in message


def test_key_type_mismatch_is_refused(keys):
    body = keys["ed25519"].split()[1]
    assert "its key body is of another type" in _raises("s1,A,a@example.edu,ssh-rsa %s" % body)


def test_unknown_key_type_and_missing_body(keys):
    assert "unknown key type 'ssh-dss'" in _raises("s1,A,a@example.edu,ssh-dss AAAAB3NzaC1kc3M=")
    assert "is not an OpenSSH public key" in _raises("s1,A,a@example.edu,ssh-ed25519")


def test_short_rsa_key_is_refused(keys):
    assert "RSA key of 1024 bits" in _raises("s1,A,a@example.edu,%s" % keys["rsa1024"])


def test_wrong_size_ed25519_is_refused():
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 16) + b"\x01" * 16
    line = "s1,A,a@example.edu,ssh-ed25519 %s" % base64.b64encode(blob).decode()
    assert "wrong size" in _raises(line)


def test_private_key_pasted_instead_of_public():
    assert "is a private key" in _raises("s1,A,a@example.edu,-----BEGIN OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "student_id,name,email\n"])
def test_empty_roster(text):
    assert "lists no students" in _raises(text)


def test_none_roster():
    assert "no roster text" in _raises(None)


def test_shared_cidr_for_every_student():
    plan = r.cohort_cidrs(["a", "b"], "192.168.50.0/24", avoid=["172.24.4.0/24"])
    assert plan == {"a": "192.168.50.0/24", "b": "192.168.50.0/24"}


def test_roster_dicts_are_accepted():
    students = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    plan = r.cohort_cidrs(students, "10.60.0.0/22", prefix=24)
    assert plan == {"a": "10.60.0.0/24", "b": "10.60.1.0/24", "c": "10.60.2.0/24"}


def test_pool_too_small():
    with pytest.raises(AnsibleFilterError, match="holds only 2 /24 subnets, but the roster has 3 students"):
        r.cohort_cidrs(["a", "b", "c"], "10.60.0.0/23", prefix=24)


@pytest.mark.parametrize("cidr, expected", [
    ("10.0.0.300/24", "not a valid CIDR"),
    ("10.0.0.1/24", "has host bits set"),
    ("banana", "not a valid CIDR"),
    ("fd00::/64", "IPv6"),
    ("10.0.0.0/30", "too small"),
])
def test_invalid_cidr(cidr, expected):
    with pytest.raises(AnsibleFilterError, match=expected):
        r.cohort_cidrs(["a"], cidr)


def test_bad_prefix():
    with pytest.raises(AnsibleFilterError, match="must be between /24"):
        r.cohort_cidrs(["a"], "10.0.0.0/24", prefix=16)


def test_overlap_with_external_network():
    with pytest.raises(AnsibleFilterError, match="172.24.0.0/16 overlaps 172.24.4.0/24"):
        r.cohort_cidrs(["a"], "172.24.0.0/16", avoid=["172.24.4.0/24", "fd00::/64"])


def test_invalid_avoid_cidr():
    with pytest.raises(AnsibleFilterError, match="The CIDR to avoid"):
        r.cohort_cidrs(["a"], "10.0.0.0/24", avoid=["10.1.0.0/33"])


def test_a_student_whose_id_looks_like_a_header_word_is_a_student():
    students = r.roster("student,Stu Dent,stu@example.edu\nid,Ida Dee,ida@example.edu\n")
    assert [s["id"] for s in students] == ["student", "id"]
    assert [s["line"] for s in students] == [1, 2]
