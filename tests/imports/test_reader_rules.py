"""read_monthly_ledger against every rule of ledger-workbook.md, accepted and rejected, on workbooks
generated here with openpyxl (and the committed .xls/.ods written by LibreOffice)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from imports import ReadLimits, read_monthly_ledger, write_ledger_workbook, write_template
from nofei.catalogue import Catalogue
from nofei.errors import LedgerRejected
from tests.imports.ledger_builders import (
    IN_HEAD,
    ME,
    OUT_HEAD,
    RECV,
    SENDER,
    STOCK_HEAD,
    TREAT_HEAD,
    balanced_sheets,
    cover,
    workbook,
)

CAT = Catalogue.default()
TODAY = date(2025, 4, 2)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def read(data: bytes, **kw):
    return read_monthly_ledger(data, filename="t.xlsx", catalogue=CAT, today=TODAY, **kw)


def rejected(sheets) -> list:
    with pytest.raises(LedgerRejected) as ei:
        read(workbook(sheets))
    return ei.value.problems


def codes_at(problems) -> set[tuple]:
    return {(p.code, p.sheet, p.row, p.column) for p in problems}


def transfers(d, direction="out"):
    return [t for t in d.transfers if t.direction == direction]


# --- accepted, with the contract's tolerances ---------------------------------------------------
def test_balanced_workbook_is_read_exactly():
    d = read(workbook(balanced_sheets()))
    assert (d.credit_code, d.unit_name, d.month, d.reporter) == (ME, "测试化工有限公司", "2025-03", "张三")
    hw, sw = d.stocks
    assert (hw.code, hw.stream, hw.open_kg, hw.generated_kg, hw.close_kg) == ("900-041-49", "hazardous", 1500, 10000, 2500)
    assert (sw.code, sw.name, sw.generated_kg) == ("SW01", "冶炼废渣", 5000)  # kg row; name from the catalogue
    out = transfers(d)
    assert [(t.day, t.code, t.qty_kg, t.counterpart, t.manifest_no, t.planned_method) for t in out] == [
        (date(2025, 3, 7), "900-041-49", 8000, RECV, "20250300000001", "D10"),
        (date(2025, 3, 7), "SW01", 5000, RECV, None, "R4")]
    assert transfers(d, "in")[0].counterpart == SENDER
    assert out[0].ref.sheet == "转出" and out[0].ref.row == 2
    assert d.warnings == []


def test_headers_match_by_text_ignoring_spaces_brackets_units_and_order():
    s = balanced_sheets()
    head = ["  废物 代码 ", "期初贮存量(吨)", "本月产生量（t）", "期末贮存量 （ 吨 ）", "计量单位", "废物名称"]
    s["产生贮存"] = [head, ["900-041-49", 1.5, 10, 2.5, "吨", None], ["SW01", 0, 5000, 0, "千克", None]]
    d = read(workbook(s))
    assert [(x.code, x.open_kg, x.close_kg) for x in d.stocks] == [("900-041-49", 1500, 2500), ("SW01", 0, 0)]


def test_numbers_as_text_fullwidth_digits_thousands_separators_and_spaces():
    s = balanced_sheets()
    s["产生贮存"][1][2:5] = ["１.５", "1,000.000", "９９２.５"]          # 1.5 + 1000 + 2 − 3 − 8 = 992.5
    d = read(workbook(s))
    assert (d.stocks[0].open_kg, d.stocks[0].generated_kg, d.stocks[0].close_kg) == (1500, 1_000_000, 992_500)


@pytest.mark.parametrize("text", ["2025-03-07", "2025/3/7", "2025年3月7日", "２０２５年３月７日", "2025.03.07"])
def test_text_dates(text):
    s = balanced_sheets()
    s["转出"][1][0] = text
    assert transfers(read(workbook(s)))[0].day == date(2025, 3, 7)


def test_excel_datetime_cells_and_serial_numbers():
    s = balanced_sheets()
    s["转出"][1][0] = datetime(2025, 3, 7, 15, 30)
    s["转出"][2][0] = 45723.0   # Excel serial of 2025-03-07
    assert [t.day for t in transfers(read(workbook(s)))] == [date(2025, 3, 7)] * 2


@pytest.mark.parametrize("unit,qty,kg", [("千克", 8000, 8000), ("kg", 8000, 8000), ("KG", 8000, 8000), ("公斤", 8000, 8000),
                                         ("吨", 8, 8000), ("t", 8, 8000), (None, 8, 8000)])
def test_units_of_measure(unit, qty, kg):
    s = balanced_sheets()
    s["转出"][1][3:5] = [qty, unit]
    assert transfers(read(workbook(s)))[0].qty_kg == kg


@pytest.mark.parametrize("month,expected", [("2025-03", "2025-03"), ("2025年3月", "2025-03"), ("2025/03", "2025-03"),
                                            (date(2025, 3, 1), "2025-03"), ("２０２５－０３", "2025-03")])
def test_month_forms(month, expected):
    s = balanced_sheets()
    s["填报信息"] = cover(month=month)
    assert read(workbook(s)).month == expected


def test_hw_prefix_is_dropped_and_codes_of_every_stream_are_accepted():
    s = balanced_sheets()
    s["产生贮存"][1][0] = "HW49-900-041-49"
    s["产生贮存"] += [["NM01", None, 0, 1, 1, None, None], ["CC01", None, 0, 2, 2, None, None],
                   ["841-001-01", None, 0, 3, 3, None, None]]
    d = read(workbook(s))
    assert {x.code: x.stream for x in d.stocks} == {"900-041-49": "hazardous", "SW01": "general_industrial",
                                                   "NM01": "agricultural_film", "CC01": "kitchen_waste",
                                                   "841-001-01": "medical"}


def test_blank_rows_are_skipped_and_row_numbers_kept():
    s = balanced_sheets()
    s["转出"].insert(2, [None] * 10)
    s["转出"].insert(2, [""] * 10)
    out = transfers(read(workbook(s)))
    assert [t.ref.row for t in out] == [2, 5]


def test_extra_sheets_and_columns_are_warnings():
    s = balanced_sheets()
    s["我的草稿"] = [["随便"]]
    s["转出"][0].append("内部编号")
    s["转出"][1].append("X-1")
    d = read(workbook(s))
    got = {(w.code, w.sheet, w.column) for w in d.warnings}
    assert ("extra_sheet", "我的草稿", None) in got and ("extra_column", "转出", "K") in got
    assert all(w.severity == "warning" for w in d.warnings)


def test_optional_sheets_may_be_absent_and_sheet_names_may_have_spaces():
    s = balanced_sheets()
    s["产生贮存"] = [STOCK_HEAD, ["SW01", None, 1, 2, 3, None, None]]
    del s["利用处置"], s["转出"], s["转入"]
    s[" 产生贮存 "] = s.pop("产生贮存")
    d = read(workbook(s))
    assert d.row_counts() == {"产生贮存": 1, "利用处置": 0, "转出": 0, "转入": 0}


def test_manifest_missing_or_malformed_for_hw_is_a_warning():
    s = balanced_sheets()
    s["转出"][1][1] = None
    s["转入"][1][1] = "2025-0001"
    d = read(workbook(s))
    got = {(w.code, w.sheet, w.row, w.column) for w in d.warnings}
    assert got == {("missing_manifest", "转出", 2, "B"), ("bad_manifest", "转入", 2, "B")}


def test_manifest_typed_as_a_number_keeps_its_digits():
    s = balanced_sheets()
    s["转出"][1][1] = 20250300000001
    assert transfers(read(workbook(s)))[0].manifest_no == "20250300000001"


def test_a_hazardous_code_outside_the_2021_catalogue_is_refused_at_its_cell():
    # issue 18: 900-123-49 has a valid form and category but is not in the 2021 名录 (was: accepted with a warning)
    s = balanced_sheets()
    s["产生贮存"][1][0] = "900-123-49"
    s["转出"][1][2] = "841-006-01"
    got = codes_at(rejected(s))
    assert ("unknown_code", "产生贮存", 2, "A") in got
    assert ("unknown_code", "转出", 2, "C") in got


def test_an_exempt_transfer_needs_no_manifest_number():
    # 900-052-31 未破损的废铅蓄电池 is exempt at the transport stage (豁免清单 item 18): no 联单, so no warning;
    # 900-041-49 on the next row is not exempt and keeps its warning
    s = balanced_sheets()
    s["产生贮存"].append(["900-052-31", None, 0, 1, 0, "吨", None])
    s["转出"].append([date(2025, 3, 7), None, "900-052-31", 1, "吨", RECV, "接收单位", None, "R4", None])
    s["转出"][1][1] = None
    d = read(workbook(s))
    warned = {(w.code, w.sheet, w.row) for w in d.warnings}
    assert ("missing_manifest", "转出", 2) in warned
    assert ("missing_manifest", "转出", 4) not in warned
    assert [t.code for t in transfers(d)] == ["900-041-49", "SW01", "900-052-31"]


def _with_cached_formula(data: bytes, sheet_index: int, ref: str, value: str | None) -> bytes:
    """openpyxl writes formulas without cached values; put one in (as Excel/WPS would)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == f"xl/worksheets/sheet{sheet_index}.xml" and value is not None:
                body = re.sub(rb'(<c r="' + ref.encode() + rb'"[^>]*>\s*<f>[^<]*</f>)\s*<v\s*/>',
                              rb"\1<v>" + value.encode() + rb"</v>", body)
            dst.writestr(item, body)
    return out.getvalue()


def test_formula_cells_are_read_by_their_cached_value():
    s = balanced_sheets()
    s["产生贮存"][1][4] = "=C2+D2-9"     # 1.5 + 10 − 9 = 2.5
    data = _with_cached_formula(workbook(s), 2, "E2", "2.5")
    assert read(data).stocks[0].close_kg == 2500


def test_formula_without_cached_value_is_an_error_at_its_cell():
    s = balanced_sheets()
    s["产生贮存"][1][4] = "=C2+D2-9"
    with pytest.raises(LedgerRejected) as ei:
        read(workbook(s))
    assert ("formula_without_value", "产生贮存", 2, "E") in codes_at(ei.value.problems)


def test_real_xls_and_ods_files_read_like_the_xlsx():
    """Fixtures converted from ``workbook(balanced_sheets())`` by LibreOffice 7 (soffice --convert-to)."""
    want = read(workbook(balanced_sheets()))
    for ext in ("xls", "ods"):
        d = read_monthly_ledger((FIXTURES / f"ledger_2025-03.{ext}").read_bytes(), filename=f"l.{ext}",
                                catalogue=CAT, today=TODAY)
        assert d.month == want.month and d.credit_code == want.credit_code
        assert d.stocks == want.stocks and d.treatments == want.treatments
        assert list(d.transfers) == list(want.transfers)


def test_written_ledger_workbook_and_template_round_trip():
    want = read(workbook(balanced_sheets()))
    again = read(write_ledger_workbook(want))
    assert again.stocks == want.stocks and list(again.transfers) == list(want.transfers)
    assert again.treatments == want.treatments
    blank = write_template(ME, "测试", CAT)
    with pytest.raises(LedgerRejected) as ei:
        read(blank)
    assert {p.code for p in ei.value.problems} == {"missing_value"}   # only the month is missing


# --- rejected: every error, each at its cell -----------------------------------------------------
def test_unbalanced_names_the_code_and_both_sides_at_the_close_cell():
    s = balanced_sheets()
    s["产生贮存"][1][4] = 3
    (p,) = rejected(s)
    assert (p.code, p.sheet, p.row, p.column, p.header) == ("unbalanced", "产生贮存", 2, "E", "期末贮存量")
    assert "900-041-49" in p.message and "2.500" in p.message and "3.000" in p.message


def test_balance_tolerance_is_one_kilogram_by_default_and_configurable():
    s = balanced_sheets()
    s["产生贮存"][1][4] = 2.501
    assert read(workbook(s)).stocks[0].close_kg == 2501
    s["产生贮存"][1][4] = 2.502
    with pytest.raises(LedgerRejected):
        read(workbook(s))
    assert read(workbook(s), limits=ReadLimits(balance_tolerance_kg=5)).stocks[0].close_kg == 2502


def test_every_error_comes_together():
    s = balanced_sheets()
    s["填报信息"] = cover(credit="91630104MA00000010", month="2025-13")
    s["产生贮存"][2][0] = "SW08"                    # unknown_code
    s["产生贮存"][1][2] = -1                        # negative
    s["利用处置"][1][1] = "R99"                     # unknown_method
    s["转出"][1][3] = "abc"                         # not_a_number
    s["转出"][2][3] = 0                             # not_positive
    s["转出"][2][5] = "123"                         # bad_credit_code
    s["转出"][2][7] = "9163010"                     # carrier bad_credit_code
    s["转出"][2][8] = "Q1"                          # planned method unknown
    s["转入"][1][0] = "昨天"                         # bad_date
    got = codes_at(rejected(s))
    assert {("bad_credit_code", "填报信息", 1, "B"), ("bad_month", "填报信息", 3, "B"),
            ("unknown_code", "产生贮存", 3, "A"), ("negative", "产生贮存", 2, "C"),
            ("unknown_method", "利用处置", 2, "B"), ("not_a_number", "转出", 2, "D"),
            ("not_positive", "转出", 3, "D"), ("bad_credit_code", "转出", 3, "F"),
            ("bad_credit_code", "转出", 3, "H"), ("unknown_method", "转出", 3, "I"),
            ("bad_date", "转入", 2, "A")} <= got


def test_every_problem_has_messages_in_both_languages_and_the_value():
    s = balanced_sheets()
    s["转出"][1][3] = "abc"
    (p,) = rejected(s)
    assert p.value == "abc" and p.header == "数量" and p.message and p.message_en and p.severity == "error"


def test_date_outside_the_month():
    s = balanced_sheets()
    s["转入"][1][0] = date(2025, 2, 28)
    assert codes_at(rejected(s)) == {("date_outside_month", "转入", 2, "A")}


def test_future_month():
    s = balanced_sheets()
    s["填报信息"] = cover(month="2025-05")
    assert ("future_month", "填报信息", 3, "B") in codes_at(rejected(s))


def test_missing_sheet_and_missing_column():
    s = balanced_sheets()
    del s["产生贮存"]
    s["转出"] = [[h for h in OUT_HEAD if h != "数量（吨）"]]
    got = {(p.code, p.sheet, p.header) for p in rejected(s)}
    assert ("missing_sheet", "产生贮存", None) in got and ("missing_column", "转出", "数量") in got


def test_missing_cover_and_cover_fields():
    s = balanced_sheets()
    del s["填报信息"]
    assert ("missing_sheet", "填报信息", None, None) in codes_at(rejected(s))
    s = balanced_sheets()
    s["填报信息"] = [["统一社会信用代码", ME], ["单位名称", None]]
    got = {(p.code, p.header) for p in rejected(s)}
    assert {("missing_value", "单位名称"), ("missing_value", "填报月份")} <= got


def test_required_cell_left_empty():
    s = balanced_sheets()
    s["转出"][1][5] = None
    assert codes_at(rejected(s)) == {("missing_value", "转出", 2, "F")}


def test_a_code_twice_in_stock_and_a_code_without_stock_row():
    s = balanced_sheets()
    s["产生贮存"].append(["SW01", None, 0, 0, 0, None, None])
    s["利用处置"].append(["SW02", "R4", 1, None, None, None])
    got = {p.code for p in rejected(s)}
    assert {"duplicate_code", "missing_stock_row"} <= got


def test_cell_too_long():
    s = balanced_sheets()
    s["转出"][1][9] = "长" * 600
    assert codes_at(rejected(s)) == {("too_long", "转出", 2, "J")}


def test_unknown_unit_of_measure():
    s = balanced_sheets()
    s["转出"][1][4] = "箱"
    assert ("bad_measure_unit", "转出", 2, "E") in codes_at(rejected(s))


def test_headers_module_matches_the_spec():
    """The builders' headers are the template's (one spec drives both)."""
    from imports.spec import IN, OUT, STOCK, TREAT, template_header

    for spec, head in ((STOCK, STOCK_HEAD), (TREAT, TREAT_HEAD), (OUT, OUT_HEAD), (IN, IN_HEAD)):
        assert [template_header(c) for c in spec.columns] == head


def test_implausibly_large_quantity_is_an_error_not_an_overflow():
    s = balanced_sheets()
    s["转出"][1][3] = 1e16
    assert codes_at(rejected(s)) == {("too_large_value", "转出", 2, "D")}


def test_annotated_workbook_of_a_large_upload_is_the_error_list_alone(monkeypatch):
    from openpyxl import load_workbook

    import imports.writer as writer
    from imports import annotate_workbook
    from nofei.problems import Problem

    p = Problem(code="unbalanced", message="不平衡", sheet="产生贮存", row=2, column="E")
    monkeypatch.setattr(writer, "ANNOTATE_MAX_BYTES", 100)
    wb = load_workbook(io.BytesIO(annotate_workbook(workbook(balanced_sheets()), [p])))
    assert wb.sheetnames == ["错误清单"] and wb["错误清单"]["B2"].value == "unbalanced"
    monkeypatch.setattr(writer, "ANNOTATE_MAX_BYTES", 10**9)
    wb = load_workbook(io.BytesIO(annotate_workbook(workbook(balanced_sheets()), [p])))
    assert "产生贮存" in wb.sheetnames and "unbalanced" in wb["产生贮存"]["E2"].comment.text


def test_the_optional_form_and_harmful_components_columns_are_read_and_may_be_blank():
    """产生贮存's 形态 and 有害成分名称 (ledger-workbook.md, 2026-12) feed the HJ 1259 declarations."""
    s = balanced_sheets()
    s["产生贮存"][1] = [*s["产生贮存"][1][:7], "半固态", "矿物油、重金属"]
    d = read(workbook(s))
    hw = next(x for x in d.stocks if x.code == "900-041-49")
    sw = next(x for x in d.stocks if x.code == "SW01")
    assert (hw.form, hw.harmful_components) == ("半固态", "矿物油、重金属")
    assert (sw.form, sw.harmful_components) == ("", "")
