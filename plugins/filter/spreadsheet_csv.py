# -*- coding: utf-8 -*-
# Copyright: contributors to coursevm.openstack
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""spreadsheet_csv: rows -> CSV text that spreadsheet programs open as the data it holds.

Every field is quoted (RFC 4180: ``"`` doubled, CRLF line ends), the first row names the columns, and the
text starts with a UTF-8 byte-order mark, which Excel needs to read UTF-8 (LibreOffice and Python's
``utf-8-sig`` codec take it). A text field that a spreadsheet would run as a formula (it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return; OWASP's list) gets a ``'`` in front, except in the columns
named ``verbatim``: a password must come back exactly as it was, so it is never changed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def neutralise(text):
    """``text`` with a ``'`` in front when a spreadsheet would take it for a formula (OWASP's advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple, set)):
        raise AnsibleFilterError("spreadsheet_csv: a cell must be a string or a number, got %r" % (value,))
    return to_text(value)


def spreadsheet_csv(rows, columns, verbatim=None, bom=True):
    """CSV text of ``rows`` (mappings) in the order of ``columns``; a missing or null value is an empty cell."""
    if isinstance(columns, (str, bytes)) or not columns:
        raise AnsibleFilterError("spreadsheet_csv: columns must be a non-empty list of column names")
    columns = [to_text(column) for column in columns]
    verbatim = [to_text(column) for column in (verbatim or [])]
    unknown = [column for column in verbatim if column not in columns]
    if unknown:
        raise AnsibleFilterError("spreadsheet_csv: verbatim names columns that are not in columns: %s"
                                 % ", ".join(unknown))
    if rows is None or isinstance(rows, (str, bytes, Mapping)):
        raise AnsibleFilterError("spreadsheet_csv: the input must be a list of mappings, one per row")
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise AnsibleFilterError("spreadsheet_csv: row %d is not a mapping: %r" % (number, row))
        cells = [_cell(row.get(column)) for column in columns]
        writer.writerow([cell if column in verbatim else neutralise(cell) for column, cell in zip(columns, cells)])
    return (BOM if bom else "") + out.getvalue()


class FilterModule:
    """CSV for spreadsheets."""

    def filters(self):
        return {"spreadsheet_csv": spreadsheet_csv}
