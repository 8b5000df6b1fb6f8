"""The fast filled-ledger writer (template parts rendered once, data sheets per file) against the
openpyxl writer it replaces: the same parts, the same draft read back, the same sheets, headers,
validations and panes; deterministic bytes; the template itself untouched."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from imports import read_monthly_ledger, write_ledger_workbook, write_template
from imports.spec import ALL_SHEETS, DATA_SHEETS, INSTRUCTIONS_SHEET, LISTS_SHEET
from imports.writer import write_ledger_workbook_openpyxl
from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft
from tests.imports.ledger_builders import balanced_sheets, workbook

CAT = Catalogue.default()
TODAY = date(2025, 4, 2)


def read(data: bytes) -> LedgerDraft:
    return read_monthly_ledger(data, filename="t.xlsx", catalogue=CAT, today=TODAY)


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _base() -> LedgerDraft:
    """A draft as the reader hands it over: Chinese names, a row entered in 千克, dates, manifest numbers."""
    return read(workbook(balanced_sheets()))


def _stock_only() -> LedgerDraft:
    """Only the required sheet filled (the optional sheets empty), no reporter or phone."""
    d = _base()
    return replace(d, reporter="", phone="", treatments=[], transfers=[],
                   stocks=[replace(s, close_kg=s.open_kg + s.generated_kg) for s in d.stocks])


def _awkward_text() -> LedgerDraft:
    """Text XML must escape or keep padded, odd kilograms, a very large quantity, empty optional cells."""
    d = _base()
    hw, sw = d.stocks
    big = 123_456_789_012
    stocks = [replace(hw, name="  废含油抹布 & <手套>  ", note='备注 "引号" a>b'),
              replace(sw, open_kg=big, generated_kg=1001, close_kg=big + 1001 + 999 - 4001, note="\t制表\t"),
              ]
    sw_out = next(t for t in d.transfers if t.code == "SW01")  # 5 t out → 4.001 t; 0.999 t comes in
    transfers = [replace(t, qty_kg=4001, counterpart_name="甲&乙 <接收>", planned_method=None) if t is sw_out else t
                 for t in d.transfers]
    transfers.append(replace(sw_out, direction="in", qty_kg=999, counterpart=d.transfers[-1].counterpart,
                             counterpart_name="", day=date(2025, 3, 31), planned_method=None))
    treatments = [replace(x, product="砖 & 水泥", note="") for x in d.treatments]
    return replace(d, stocks=stocks, transfers=transfers, treatments=treatments, unit_name="测试 <化工> & 有限公司")


DRAFTS = {"base": _base, "stock_only": _stock_only, "awkward_text": _awkward_text}


@pytest.mark.parametrize("name", DRAFTS)
def test_every_part_equals_the_openpyxl_writers_and_reads_back_to_the_same_draft(name):
    draft = DRAFTS[name]()
    new, old = write_ledger_workbook(draft, CAT), write_ledger_workbook_openpyxl(draft, CAT)
    pn, po = parts(new), parts(old)
    assert list(pn) == list(po)  # same entries in the same order
    for part in po:
        if part != "docProps/core.xml":  # openpyxl stamps the current time there
            assert pn[part] == po[part], part
    back = read(new)
    assert back == read(old)
    assert back.stocks == draft.stocks or name != "base"  # the base draft survives a round trip unchanged
    assert [(s.code, s.open_kg, s.generated_kg, s.close_kg, s.name.strip(), s.note.strip()) for s in back.stocks] == \
        [(s.code, s.open_kg, s.generated_kg, s.close_kg, s.name.strip(), s.note.strip()) for s in draft.stocks]
    assert [(t.direction, t.day, t.code, t.qty_kg, t.counterpart, t.manifest_no) for t in back.transfers] == \
        [(t.direction, t.day, t.code, t.qty_kg, t.counterpart, t.manifest_no) for t in draft.transfers]
    assert (back.unit_name, back.reporter, back.phone) == (draft.unit_name, draft.reporter, draft.phone)


@pytest.mark.parametrize("name", DRAFTS)
def test_openpyxl_sees_the_same_sheets_headers_validations_panes_and_cells(name):
    draft = DRAFTS[name]()
    new = load_workbook(io.BytesIO(write_ledger_workbook(draft, CAT)))
    old = load_workbook(io.BytesIO(write_ledger_workbook_openpyxl(draft, CAT)))
    assert new.sheetnames == old.sheetnames == [INSTRUCTIONS_SHEET, *ALL_SHEETS, LISTS_SHEET]
    assert new[LISTS_SHEET].sheet_state == "hidden" and new.active.title == old.active.title
    for spec in DATA_SHEETS:
        a, b = new[spec.name], old[spec.name]
        assert [c.value for c in a[1]] == [c.value for c in b[1]] and len(a[1]) == len(spec.columns)
        assert a.freeze_panes == b.freeze_panes == "A2"
        dv = [(v.type, v.formula1, str(v.sqref), v.showErrorMessage) for v in a.data_validations.dataValidation]
        assert dv and dv == [(v.type, v.formula1, str(v.sqref), v.showErrorMessage)
                             for v in b.data_validations.dataValidation]
        assert [c.comment.text if c.comment else None for c in a[1]] == \
            [c.comment.text if c.comment else None for c in b[1]]
        cells = [[(c.value, c.number_format, c.data_type) for c in row] for row in a.iter_rows()]
        assert cells == [[(c.value, c.number_format, c.data_type) for c in row] for row in b.iter_rows()]
        assert a.max_row == b.max_row == 1 + len(
            {"产生贮存": draft.stocks, "利用处置": draft.treatments,
             "转出": [t for t in draft.transfers if t.direction == "out"],
             "转入": [t for t in draft.transfers if t.direction == "in"]}[spec.name])
    assert [[c.value for c in r] for r in new[ALL_SHEETS[0]].iter_rows()] == \
        [[c.value for c in r] for r in old[ALL_SHEETS[0]].iter_rows()]


def test_dates_are_excel_serials_in_the_date_format_and_quantities_numbers_in_tonnes():
    ws = load_workbook(io.BytesIO(write_ledger_workbook(_awkward_text(), CAT)))["转入"]
    day, qty = ws["A3"], ws["D3"]
    assert day.value == datetime(2025, 3, 31) and day.number_format == "yyyy-mm-dd"
    assert qty.value == 0.999 and qty.number_format == "#,##0.000" and qty.data_type == "n"


def test_same_draft_same_bytes_and_the_saved_time_is_the_documents():
    draft = _base()
    assert write_ledger_workbook(draft, CAT) == write_ledger_workbook(replace(draft), CAT)
    when = datetime(2025, 4, 5, 10, 0)
    data = write_ledger_workbook(draft, CAT, saved_at=when)
    assert data != write_ledger_workbook(draft, CAT)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {i.date_time for i in z.infolist()} == {(2025, 4, 5, 10, 0, 0)}
        assert z.testzip() is None
    props = load_workbook(io.BytesIO(data)).properties
    assert props.created == props.modified == when
    default = load_workbook(io.BytesIO(write_ledger_workbook(draft, CAT))).properties
    assert default.modified == datetime(2025, 4, 1)  # as the ledger's month closes


def test_formula_like_text_is_written_inert_by_both_writers():
    """Text starting with '=' would be a live formula in openpyxl: both writers apply the one writer rule
    (``nofei.text.neutralise_cell_text``), so the note reads back as text, never as ``<f>``."""
    d = _base()
    draft = replace(d, stocks=[replace(d.stocks[0], note="=1+1"), *d.stocks[1:]], unit_name="=HYPERLINK(\"x\")")
    new, old = parts(write_ledger_workbook(draft, CAT)), parts(write_ledger_workbook_openpyxl(draft, CAT))
    assert {k: v for k, v in new.items() if k != "docProps/core.xml"} == \
        {k: v for k, v in old.items() if k != "docProps/core.xml"}
    assert b"<f>" not in b"".join(new.values())
    wb = load_workbook(io.BytesIO(write_ledger_workbook(draft, CAT)))
    assert wb["产生贮存"]["G2"].value == "'=1+1" and wb["产生贮存"]["G2"].data_type == "s"
    assert wb["填报信息"]["B2"].value == "'=HYPERLINK(\"x\")"
    assert write_ledger_workbook(draft, CAT) == write_ledger_workbook(draft, CAT)


def test_the_template_is_the_filled_workbooks_skeleton_and_unchanged_by_the_fast_writer():
    blank = parts(write_template(None, None, CAT))
    write_ledger_workbook(_base(), CAT)  # the skeleton cache is filled and used
    again = parts(write_template(None, None, CAT))
    empty = parts(write_ledger_workbook(LedgerDraft(credit_code="", unit_name="", month=""), CAT))
    assert list(blank) == list(again) == list(empty)
    for part in blank:
        if part != "docProps/core.xml":
            assert blank[part] == again[part] == empty[part], part
    wb = load_workbook(io.BytesIO(write_template("91630104MA00000001", "测试", CAT)))
    assert wb["填报信息"]["B1"].value == "91630104MA00000001" and wb["填报信息"]["B2"].value == "测试"
    assert [c.value for c in wb["产生贮存"][1]][:3] == ["废物代码", "废物名称", "期初贮存量（吨）"]
