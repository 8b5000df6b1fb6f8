"""Workbooks nofei writes, from the same column specification the reader uses (``imports.spec``):
the blank template, a filled ledger (what a clerk produces from the template) and the uploaded
workbook annotated with its errors (faulty cells red, each with its message as a comment).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from imports.spec import (
    COVER,
    DATA_SHEETS,
    IN,
    INSTRUCTIONS_SHEET,
    LISTS_SHEET,
    MEASURE_CHOICES,
    OUT,
    STOCK,
    TREAT,
    SheetSpec,
    template_header,
)
from nofei.catalogue import Catalogue
from nofei.domain.ledger import SHEET_COVER, LedgerDraft
from nofei.problems import Problem
from nofei.quantity import kg_to_tonnes

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQ_FONT = Font(bold=True, color="C00000")
_HEAD_FONT = Font(bold=True)
_RED = PatternFill("solid", fgColor="FF9999")
_YELLOW = PatternFill("solid", fgColor="FFF2CC")
_QTY_FORMAT = "#,##0.000"
_DATE_FORMAT = "yyyy-mm-dd"
_VALIDATION_ROWS = 5000


def _lists_sheet(wb: Workbook, catalogue: Catalogue) -> dict[str, str]:
    """The hidden 代码表 sheet holding the drop-down lists; returns list name → range formula."""
    ws = wb.create_sheet(LISTS_SHEET)
    codes = [c.code for c in catalogue.waste_codes()]
    methods = [m.code for m in catalogue.method_list()]
    ws.append(["废物代码", "废物名称", "方式代码", "方式名称", "计量单位"])
    names = {c.code: c.name_zh for c in catalogue.waste_codes()}
    mnames = {m.code: m.name_zh for m in catalogue.method_list()}
    for i in range(max(len(codes), len(methods), len(MEASURE_CHOICES))):
        ws.append([
            codes[i] if i < len(codes) else None, names[codes[i]] if i < len(codes) else None,
            methods[i] if i < len(methods) else None, mnames[methods[i]] if i < len(methods) else None,
            MEASURE_CHOICES[i] if i < len(MEASURE_CHOICES) else None,
        ])
    ws.sheet_state = "hidden"
    q = quote_sheetname(LISTS_SHEET)
    return {
        "code": f"{q}!$A$2:$A${len(codes) + 1}",
        "method": f"{q}!$C$2:$C${len(methods) + 1}",
        "measure": f"{q}!$E$2:$E${len(MEASURE_CHOICES) + 1}",
    }


def _data_sheet(wb: Workbook, spec: SheetSpec, lists: dict[str, str]) -> Worksheet:
    ws = wb.create_sheet(spec.name)
    for j, col in enumerate(spec.columns, start=1):
        cell = ws.cell(row=1, column=j, value=template_header(col))
        cell.font = _REQ_FONT if col.required else _HEAD_FONT
        cell.fill = _HEAD_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if col.help:
            cell.comment = Comment(("必填。" if col.required else "") + col.help, "nofei")
        letter = get_column_letter(j)
        ws.column_dimensions[letter].width = col.width
        fmt = _format(col.kind)
        if fmt:  # the column's default style, so cells a clerk types into get it too
            ws.column_dimensions[letter].number_format = fmt
        rng = f"{letter}2:{letter}{_VALIDATION_ROWS}"
        kind = {"code": "code", "method": "method", "measure": "measure"}.get(col.kind)
        if kind:
            dv = DataValidation(type="list", formula1=f"={lists[kind]}", allow_blank=True, showErrorMessage=kind != "code",
                                errorTitle="输入有误", error=f"请从下拉列表中选择{col.header}")
            dv.add(rng)
            ws.add_data_validation(dv)
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 30
    return ws


def _format(kind: str) -> str | None:
    """Quantities with three decimals, dates as dates, codes as text (so 联单编号 keep every digit)."""
    return {"qty": _QTY_FORMAT, "date": _DATE_FORMAT, "code": "@", "manifest": "@", "credit": "@"}.get(kind)


def _formats(spec: SheetSpec) -> list[str | None]:
    return [_format(c.kind) for c in spec.columns]


def _instructions(wb: Workbook) -> None:
    ws = wb.create_sheet(INSTRUCTIONS_SHEET)
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 90
    ws.append(["月度固体废物管理台账 填报说明"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([])
    ws.append(["通用", "每个单位每月一个文件；表名、表头不要修改（可在表头后注明单位，如“（吨）”）；红色表头为必填列。"])
    ws.append(["数量", "默认单位为吨，保留三位小数；如按千克填写，请在“计量单位”列填“千克”。"])
    ws.append(["日期", "填写日期，如 2025-03-07；须在填报月份内。"])
    ws.append(["平衡", "每个废物代码：期初贮存量 + 本月产生量 + 转入 − 利用处置 − 转出 = 期末贮存量（误差 0.001 吨）。"])
    ws.append(["联单", "危险废物、医疗废物的转出、转入须填写14位转移联单编号。"])
    ws.append([SHEET_COVER, "填写统一社会信用代码、单位名称、填报月份（YYYY-MM）。"])
    for spec in DATA_SHEETS:
        ws.append([spec.name, spec.help])
        for c in spec.columns:
            ws.append(["", f"{c.header}{'（必填）' if c.required else ''}：{c.help}".rstrip("：")])
    for row in ws.iter_rows(min_row=3):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")


def _build(catalogue: Catalogue, cover: dict[str, str], rows: dict[str, Iterable[Sequence[Any]]]) -> bytes:
    wb = Workbook()
    cov = wb.active
    cov.title = SHEET_COVER
    cov.column_dimensions["A"].width = 20
    cov.column_dimensions["B"].width = 36
    for i, f in enumerate(COVER, start=1):
        a = cov.cell(row=i, column=1, value=f.label)
        a.font = _REQ_FONT if f.required else _HEAD_FONT
        a.fill = _HEAD_FILL
        b = cov.cell(row=i, column=2, value=cover.get(f.key) or None)
        b.number_format = "@"
        if f.help:
            a.comment = Comment(f.help, "nofei")
    lists = _lists_sheet(wb, catalogue)
    for spec in DATA_SHEETS:
        ws = _data_sheet(wb, spec, lists)
        fmts = _formats(spec)
        for r, values in enumerate(rows.get(spec.name, ()), start=2):
            for j, v in enumerate(values, start=1):
                if v is None or v == "":
                    continue
                cell = ws.cell(row=r, column=j, value=v)
                if fmts[j - 1]:
                    cell.number_format = fmts[j - 1]
    _instructions(wb)
    wb.move_sheet(INSTRUCTIONS_SHEET, offset=-(len(wb.sheetnames) - 1))
    wb.move_sheet(LISTS_SHEET, offset=len(wb.sheetnames))
    wb.active = wb.sheetnames.index(SHEET_COVER)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_template(unit_code: str | None, unit_name: str | None, catalogue: Catalogue) -> bytes:
    """The blank monthly ledger template (cover pre-filled when the unit is known)."""
    return _build(catalogue, {"credit_code": unit_code or "", "unit_name": unit_name or ""}, {})


def _t(kg: int) -> float:
    return float(kg_to_tonnes(kg))


def write_ledger_workbook(draft: LedgerDraft, catalogue: Catalogue | None = None) -> bytes:
    """A filled workbook exactly as a clerk would produce it from the template (quantities in tonnes)."""
    cat = catalogue or Catalogue.default()
    stock = [[s.code, s.name, _t(s.open_kg), _t(s.generated_kg), _t(s.close_kg), "吨", s.note] for s in draft.stocks]
    treat = [[t.code, t.method, _t(t.qty_kg), "吨", t.product, t.note] for t in draft.treatments]
    out = [[t.day, t.manifest_no, t.code, _t(t.qty_kg), "吨", t.counterpart, t.counterpart_name, t.carrier,
            t.planned_method, t.note] for t in draft.transfers if t.direction == "out"]
    inn = [[t.day, t.manifest_no, t.code, _t(t.qty_kg), "吨", t.counterpart, t.counterpart_name, t.note]
           for t in draft.transfers if t.direction == "in"]
    assert [c.key for c in STOCK.columns][:5] == ["code", "name", "open", "generated", "close"]  # spec order
    cover = {"credit_code": draft.credit_code, "unit_name": draft.unit_name, "month": draft.month,
             "reporter": draft.reporter, "phone": draft.phone}
    return _build(cat, cover, {STOCK.name: stock, TREAT.name: treat, OUT.name: out, IN.name: inn})


# --- the annotated error workbook ---------------------------------------------------------------
def _as_xlsx(data: bytes) -> Workbook:
    """The upload as an openpyxl workbook: loaded directly when xlsx, rebuilt from calamine otherwise."""
    try:
        return load_workbook(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - xls/ods or anything openpyxl cannot load: rebuild the values
        from python_calamine import CalamineWorkbook

        src = CalamineWorkbook.from_filelike(io.BytesIO(data))
        wb = Workbook()
        wb.remove(wb.active)
        for name in src.sheet_names:
            ws = wb.create_sheet(name[:31])
            for row in src.get_sheet_by_name(name).to_python(skip_empty_area=False):
                ws.append([None if v == "" else v for v in row])
        return wb


ANNOTATE_MAX_BYTES = 4 * 1024 * 1024
"""Above this upload size the annotated answer is the 错误清单 sheet alone: openpyxl holds a whole
workbook in memory (about 4 KB per row), which a 20 MB upload would turn into gigabytes."""


def annotate_workbook(data: bytes, problems: list[Problem], warnings: list[Problem] | None = None) -> bytes:
    """The uploaded workbook with every faulty cell filled red (warnings yellow) and commented with its
    message, plus a first sheet ``错误清单`` listing every problem (also those without a cell)."""
    if len(data) > ANNOTATE_MAX_BYTES:
        wb = Workbook()
        wb.remove(wb.active)
    else:
        wb = _as_xlsx(data)
    by_name = {n.strip(): n for n in wb.sheetnames}
    notes: dict[tuple[str, str], list[Problem]] = {}
    for p in [*problems, *(warnings or [])]:
        if p.sheet and p.sheet in by_name and p.row:
            notes.setdefault((by_name[p.sheet], f"{p.column or 'A'}{p.row}"), []).append(p)
    for (sheet, ref), ps in notes.items():
        cell = wb[sheet][ref]
        cell.fill = _RED if any(p.severity == "error" for p in ps) else _YELLOW
        text = "\n".join(f"[{p.code}] {p.message}" for p in ps)
        cell.comment = Comment(text[:30000], "nofei", width=300, height=120)
    ws = wb.create_sheet("错误清单", 0)
    ws.append(["级别", "代码", "工作表", "行", "列", "表头", "值", "说明", "message"])
    for c in ws[1]:
        c.font = _HEAD_FONT
        c.fill = _HEAD_FILL
    for p in [*problems, *(warnings or [])]:
        ws.append(["错误" if p.severity == "error" else "提示", p.code, p.sheet, p.row, p.column, p.header,
                   None if p.value is None else str(p.value), p.message, p.message_en])
    for letter, w in zip("ABCDEFGHI", (6, 20, 10, 6, 5, 16, 18, 60, 60), strict=True):
        ws.column_dimensions[letter].width = w
    ws.freeze_panes = "A2"
    wb.active = 0
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
