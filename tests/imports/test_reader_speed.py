"""The column-wise (fastexcel) read of a clean xlsx sheet gives exactly what calamine's cell path gives.

Each workbook is read twice: as the reader does (the fast path where the sheet qualifies) and with the
fast path switched off; the drafts, or the rejections, must be identical. The cases cover both sides of
the switch: clean sheets (fast path) and sheets the fast path must refuse (mixed types, a header off row
1, duplicate headers, times of day), which fall back to calamine.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import Workbook

import imports.reader as R
from imports import read_monthly_ledger
from imports.spec import DATA_SHEETS
from nofei.catalogue import Catalogue
from nofei.errors import LedgerRejected
from tests.imports.ledger_builders import OUT_HEAD, RECV, balanced_sheets, workbook

CAT = Catalogue.default()
TODAY = date(2025, 4, 2)
DATA = tuple(spec.name for spec in DATA_SHEETS)  # the four data sheets


def _outcome(data: bytes) -> tuple[str, Any, Any]:
    try:
        d = read_monthly_ledger(data, filename="t.xlsx", catalogue=CAT, today=TODAY)
    except LedgerRejected as e:
        return ("rejected", [p.__dict__ if hasattr(p, "__dict__") else p for p in e.problems],
                getattr(e, "warnings", None))
    return ("accepted", (d.credit_code, d.month, list(d.stocks), list(d.treatments), list(d.transfers),
                         d.cover_refs), d.warnings)


def _both(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, set[str]]:
    """The outcome with the fast path where it qualifies, the outcome with it off, and the sheets that took
    it. The second read must have asked for the fast path for every data sheet (and been refused), so a
    reader that stopped asking cannot make the two reads agree by being the same read."""
    taken: set[str] = set()
    asked: list[str] = []
    real = R._fast_columns

    def counting(book: Any, name: str) -> Any:
        out = real(book, name)
        if out is not None:
            taken.add(name)
        return out

    def refused(book: Any, name: str) -> None:
        asked.append(name)
        return None

    monkeypatch.setattr(R, "_fast_columns", counting)
    fast = _outcome(data)
    monkeypatch.setattr(R, "_fast_columns", refused)
    slow = _outcome(data)
    assert sorted(asked) == sorted(DATA), asked
    return fast, slow, taken


def _out_rows(rows: list[list[Any]]) -> bytes:
    sheets = balanced_sheets()
    sheets["转出"] = [list(OUT_HEAD), *rows]
    return workbook(sheets)


D = date(2025, 3, 7)
CLEAN = [D, "20250300000001", "900-041-49", 8, "吨", RECV, "接收单位", None, "D10", None]


def test_clean_workbook_takes_the_fast_path_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow, taken = _both(workbook(balanced_sheets()), monkeypatch)
    assert taken == set(DATA)
    assert fast == slow
    assert fast[0] == "accepted"


@pytest.mark.parametrize(("rows", "out_fast"), [
    # blank rows between and after, a partially filled row (validated), zero quantity
    ([CLEAN, [None] * 10, [D, None, "SW01", 5, "吨", RECV, "接收单位", None, "R4", None], [None] * 10], True),
    ([CLEAN, [None, None, None, 0, None, None, None, None, None, None]], True),
    # kilograms, an error row pinned to its cell, a date outside the month, a bad credit code
    ([[D, "20250300000001", "900-041-49", 8000, "千克", RECV, "接收单位", None, "D10", None]], True),
    ([CLEAN, [date(2025, 4, 1), "123", "900-041-49", 1, "吨", "91630105MA0000000X", "x", None, "D10", None]], True),
    # mixed types in a column (text number, text date, full-width digits): the fallback path
    ([CLEAN, ["２０２５年３月７日", 20250300000003.0, "HW49-900-041-49", "1,000.5", "吨", RECV, "y", None, "d10", 1.0]],
     False),
    # a datetime with a time of day
    ([[datetime(2025, 3, 7, 13, 30), *CLEAN[1:]]], False),
    # a number in a text column
    ([[*CLEAN[:6], 12345, *CLEAN[7:]]], True),
])
def test_fast_and_cell_paths_agree(rows: list[list[Any]], out_fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow, taken = _both(_out_rows(rows), monkeypatch)
    assert ("转出" in taken) is out_fast  # the case exercises the path it is meant to
    assert taken - {"转出"} == set(DATA) - {"转出"}
    assert fast == slow


def _sheet_with(header_at: str, dup: bool = False) -> bytes:
    sheets = balanced_sheets()
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        if name == "转出":
            head = list(OUT_HEAD)
            if dup:
                head[9] = head[2]
            start_row, start_col = (2, 1) if header_at == "A2" else (1, 2) if header_at == "B1" else (1, 1)
            for i, r in enumerate([head, CLEAN]):
                for j, v in enumerate(r):
                    if v is not None:
                        ws.cell(start_row + i, start_col + j, v)
        else:
            for r in rows:
                ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize(("header_at", "dup"), [("A2", False), ("B1", False), ("A1", True)])
def test_headers_off_a1_or_duplicated_fall_back_and_agree(header_at: str, dup: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sheet_with(header_at, dup)
    fast, slow, taken = _both(data, monkeypatch)
    assert fast == slow
    assert taken == set(DATA) - {"转出"}  # the other three data sheets only


def test_header_on_row_one_reads_the_sheet_xml() -> None:
    assert R._header_on_row_one(_sheet_with("A1"), "转出")
    assert not R._header_on_row_one(_sheet_with("A2"), "转出")
    assert not R._header_on_row_one(_sheet_with("A1"), "no such sheet")
