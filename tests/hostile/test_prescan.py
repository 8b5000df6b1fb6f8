"""The sheet pre-scan (``imports.safety.prescan_xlsx``) and the macro check, on generated hostile files:
each is refused with its code, naming the sheet and cell, before any parser runs."""

from __future__ import annotations

import pytest

from imports import ReadLimits, read_monthly_ledger
from imports.safety import _letters, column_number, prescan_xlsx, sniff
from nofei.catalogue import Catalogue
from nofei.errors import TooLarge, UnsupportedFile
from tests.hostile import corpus as H


def refused(data: bytes, code: str, limits: ReadLimits | None = None) -> dict:
    with pytest.raises(TooLarge) as ei:
        prescan_xlsx(data, limits or ReadLimits())
    assert ei.value.code == code
    return ei.value.problems[0].to_dict()


@pytest.mark.parametrize(("ref", "code"), [("XFD1048576", "too_many_rows"), ("A200002", "too_many_rows"),
                                           ("ZZ200000", "too_many_columns"), ("BM1", "too_many_columns"),
                                           ("AAA1", "too_many_columns")])
def test_a_cell_beyond_the_limits_is_refused_naming_sheet_and_cell(ref, code):
    p = refused(H.with_cell(ref), code)
    assert (p["sheet"], f"{p['column']}{p['row']}") == ("转出", ref)
    assert ref in p["message"]


@pytest.mark.parametrize("ref", ["A200001", "BL200001", "BL1", "J100"])
def test_cells_at_the_limits_pass(ref):
    prescan_xlsx(H.with_cell(ref), ReadLimits())


def test_the_dimension_is_checked_even_without_such_a_cell():
    p = refused(H.with_dimension("A1:XFD1048576"), "too_many_rows")
    assert p["sheet"] == "转出" and p["column"] == "XFD"
    prescan_xlsx(H.with_dimension("A1:J20"), ReadLimits())


def test_cells_without_r_are_placed_as_calamine_places_them():
    prescan_xlsx(H.cells_without_r(64), ReadLimits())
    p = refused(H.cells_without_r(65), "too_many_columns")
    assert (p["column"], p["row"]) == ("BM", 9)


def test_namespace_prefixed_cells_are_seen():
    p = refused(H.prefixed_cell("A900000"), "too_many_rows")
    assert p["row"] == 900000


def test_limits_come_from_read_limits():
    refused(H.with_cell("K12"), "too_many_columns", ReadLimits(max_columns=10))
    refused(H.with_cell("A12"), "too_many_rows", ReadLimits(max_rows_per_sheet=10))
    prescan_xlsx(H.with_cell("A11"), ReadLimits(max_rows_per_sheet=10))


def test_the_reader_runs_the_prescan_first():
    with pytest.raises(TooLarge) as ei:
        read_monthly_ledger(H.with_cell("XFD1048576"), filename="x.xlsx", catalogue=Catalogue.default())
    assert ei.value.code == "too_many_rows"


def test_macro_content_type_spelled_with_character_references_is_refused():
    with pytest.raises(UnsupportedFile) as ei:
        sniff(H.macro_by_char_refs(), ReadLimits())
    assert ei.value.code == "macro_enabled"


@pytest.mark.parametrize(("max_rows", "max_columns"), [(9, 12), (10, 26), (99, 27), (200_000, 64), (1_048_575, 700)])
def test_the_candidate_pass_refuses_exactly_the_cells_beyond(max_rows, max_columns):
    limits = ReadLimits(max_rows_per_sheet=max_rows, max_columns=max_columns)
    top = max_rows + 1  # + the header row
    for row in {1, top - 1, top, top + 1, top * 10, 10 ** len(str(top)), 2 * top + 7} - {0}:
        for col in {1, max_columns - 1, max_columns, max_columns + 1, 26, 27, 52, 53, 702, 703} - {0}:
            data = H.with_cell(f"{_letters(col)}{row}")
            if row > top or col > max_columns:
                with pytest.raises(TooLarge):
                    prescan_xlsx(data, limits)
            else:
                prescan_xlsx(data, limits)


def test_column_letters_round_trip():
    for c in (1, 26, 27, 63, 64, 65, 702, 703, 16384):
        assert column_number(_letters(c)) == c


# --- OpenDocument: repeat counts are expanded as calamine expands them ------------------------------------
def ods_refused(data: bytes, code: str, limits: ReadLimits | None = None) -> dict:
    with pytest.raises(TooLarge) as ei:
        sniff(data, limits or ReadLimits())
    assert ei.value.code == code
    return ei.value.problems[0].to_dict()


def test_the_committed_ods_with_its_padding_passes():
    """LibreOffice pads every row to column XFD and the sheet to row 1048576 with empty repeats."""
    assert sniff((H.FIXTURES / "ledger_2025-03.ods").read_bytes(), ReadLimits()) == "ods"


@pytest.mark.parametrize(("columns", "last"), [(62, "BL"), (16_000_000, None)])
def test_an_ods_cell_repeated_past_the_columns_is_refused_naming_sheet_and_cell(columns, last):
    data = H.ods_cell_repeated(columns)
    assert len(data) < 20_000
    if last is not None:  # columns C.. BL: the 64th column is the last allowed
        assert sniff(data, ReadLimits()) == "ods"
        p = ods_refused(data, "too_many_columns", ReadLimits(max_columns=63))
        assert (p["sheet"], p["column"], p["row"]) == ("填报信息", "BL", 1)
        return
    p = ods_refused(data, "too_many_columns")
    assert p["sheet"] == "填报信息" and p["row"] == 1 and "填报信息" in p["message"]


def test_an_ods_row_repeated_past_the_rows_is_refused_naming_sheet_and_row():
    assert sniff(H.ods_row_repeated(10), ReadLimits()) == "ods"  # rows 6..15
    p = ods_refused(H.ods_row_repeated(100_000_000), "too_many_rows")
    assert (p["sheet"], p["column"], p["row"]) == ("填报信息", "A", 100_000_005)
    p = ods_refused(H.ods_row_repeated(199_997), "too_many_rows")  # rows 6..200002: one past the header + limit
    assert p["row"] == 200_002
    assert sniff(H.ods_row_repeated(199_996), ReadLimits()) == "ods"


def test_a_value_after_the_empty_padding_rows_is_where_calamine_puts_it():
    """1,048,570 empty rows and then a 1: calamine materialises all of them; the 1 is at row 1048576."""
    data = H.ods_changed('<table:table-row table:style-name="ro1"><table:table-cell table:number-columns-repeated='
                         '"16384"/></table:table-row></table:table>',
                         f"<table:table-row>{H.ODS_CELL}</table:table-row></table:table>")
    p = ods_refused(data, "too_many_rows")
    assert (p["sheet"], p["row"]) == ("填报信息", 1_048_576)


def test_a_huge_repeat_count_costs_no_big_int():
    p = ods_refused(H.ods_cell_repeated("9" * 5000), "too_many_columns")
    assert p["row"] == 1


def test_the_ods_reader_runs_the_prescan_first():
    with pytest.raises(TooLarge) as ei:
        read_monthly_ledger(H.ods_cell_repeated(16_000_000), filename="x.ods", catalogue=Catalogue.default())
    assert ei.value.code == "too_many_columns"
