"""The declaration table as an .xlsx laid out like HJ 1259 表 C.1/C.2/C.3: title, unit block, two header
rows (groups merged over their columns), one block of lines per waste (identity cells merged down when a
waste has several methods or receivers), a total line, the gaps and, on a second sheet, the ledger rows
behind every figure.

Text that a spreadsheet would run as a formula is neutralised (``nofei.text.neutralise_cell_text``): unit and
receiver names come from clerks.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from nofei.text import neutralise_cell_text
from reports.declarations import COLUMNS, STOCK_WORDS

TONNES = "0.000"
THIN = Side(style="thin", color="808080")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD = PatternFill("solid", fgColor="DDEBF7")
GAP = PatternFill("solid", fgColor="FFF2CC")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
WIDTHS = [18, 9, 12, 14, 8, 10, 11, 8, 8, 11, 12, 24, 22, 8, 11, 11, 11]
NCOL = len(COLUMNS)
IDX = {k: i + 1 for i, (k, _, _) in enumerate(COLUMNS)}  # column number of each key


neutral = neutralise_cell_text  # the project's one formula-neutralising function (nofei.text)


def _title(ws: Worksheet, d: dict[str, Any]) -> None:
    """Row 1: the declaration's title over the whole width."""
    ws.merge_cells(f"A1:{get_column_letter(NCOL)}1")
    ws["A1"] = neutral(f"{d['title']}（HJ 1259—2022 表 {d['table']}）")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 28


def _unit_block(ws: Worksheet, d: dict[str, Any], r: int) -> int:
    """Rows from ``r``: the unit, period, tier and data sources, two labelled values a row; the next free row."""
    block = [
        ("单位名称", d["unit_name"], "统一社会信用代码", d["unit"]),
        ("所在区县", f"{d['district_name']}（{d['district']}）", "申报期", f"{d['period_label']}（{d['period']}）"),
        ("管理类别", d.get("tier_zh") or "—", "申报截止日期", str(d["deadline"])),
        ("数据来源", "nofei 月度台账现行版本：" + ("、".join(f"{x['month']} 第{x['version']}版" for x in d["ledgers"]) or "无"),
         "未提交台账的月份", "、".join(d["missing_months"]) or "无"),
    ]
    for a, b, label, e in block:
        ws.cell(r, 1, a).font = Font(bold=True)
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=8)
        ws.cell(r, 2, neutral(b))
        ws.merge_cells(start_row=r, start_column=9, end_row=r, end_column=11)
        ws.cell(r, 9, label).font = Font(bold=True)
        ws.merge_cells(start_row=r, start_column=12, end_row=r, end_column=NCOL)
        ws.cell(r, 12, neutral(e))
        r += 1
    return r


def _header_text(key: str, group: str, header: str, words: tuple[str, str]) -> str:
    """A column's own header: the period's words for the two stocks, tonnes named on the quantities."""
    header = {"stock_open_t": words[0], "stock_close_t": words[1]}.get(key, header)
    if group:
        return header + ("（吨）" if header == "量" else "")
    return header + ("（吨）" if key == "generated_t" else "")


def _headers(ws: Worksheet, h1: int, h2: int, words: tuple[str, str]) -> None:
    """Rows ``h1`` and ``h2``: a group over its columns with the columns under it, or one header over both rows."""
    for c, (key, group, header) in enumerate(COLUMNS, start=1):
        if group and (c == 1 or COLUMNS[c - 2][1] != group):  # the first column of its group
            span = sum(1 for k in COLUMNS if k[1] == group)
            ws.merge_cells(start_row=h1, start_column=c, end_row=h1, end_column=c + span - 1)
            cell = ws.cell(h1, c, group + ("（吨）" if group == "剩余贮存量" else ""))
            cell.font, cell.alignment, cell.fill = Font(bold=True), CENTER, HEAD
        if group:
            cell = ws.cell(h2, c, _header_text(key, group, header, words))
        else:
            ws.merge_cells(start_row=h1, start_column=c, end_row=h2, end_column=c)
            cell = ws.cell(h1, c, _header_text(key, group, header, words))
        cell.font, cell.alignment, cell.fill = Font(bold=True), CENTER, HEAD
    for rr in (h1, h2):
        for cc in range(1, NCOL + 1):
            ws.cell(rr, cc).border = BOX
            ws.cell(rr, cc).fill = HEAD
    ws.row_dimensions[h2].height = 42


def _identity_cells(ws: Worksheet, r: int, n: int, row: dict[str, Any], extra: dict[str, Any],
                    gap_fields: set[str]) -> None:
    """The waste's own cells (name … stocks), merged down over its ``n`` lines; gaps filled yellow."""
    ident = {"name": row["name"], "category": row["category"], "code": row["code"],
             "harmful_components": extra.get("harmful_components"), "form": extra.get("form"),
             "hazard": row["hazard"] or None, "generated_t": row["generated_t"], "unit": "吨",
             "stock_open_t": row["stock_open_t"], "stock_close_t": row["stock_close_t"]}
    for key, v in ident.items():
        col = IDX[key]
        if n > 1:
            ws.merge_cells(start_row=r, start_column=col, end_row=r + n - 1, end_column=col)
        cell = ws.cell(r, col, neutral(v))
        if isinstance(v, Decimal):
            cell.number_format = TONNES
        if key in gap_fields:
            cell.fill = GAP


def _own_line(ws: Worksheet, r: int, o: dict[str, Any]) -> None:
    ws.cell(r, IDX["own.method"], neutral(o["method"]))
    ws.cell(r, IDX["own.qty_t"], o["qty_t"]).number_format = TONNES


def _entrusted_line(ws: Worksheet, r: int, i: int, x: dict[str, Any], gap_fields: set[str]) -> None:
    for k in ("province", "receiver_name", "licence", "method"):
        cell = ws.cell(r, IDX[f"entrusted.{k}"], neutral(x[k]))
        if f"entrusted[{i}].{k}" in gap_fields:
            cell.fill = GAP
    ws.cell(r, IDX["entrusted.qty_t"], x["qty_t"]).number_format = TONNES


def _waste_block(ws: Worksheet, r: int, row: dict[str, Any], extra: dict[str, Any]) -> int:
    """The lines of one waste from row ``r``: one per method or receiver (at least one); how many."""
    n = max(len(row["own"]), len(row["entrusted"]), 1)
    gap_fields = {g["field"] for g in row["gaps"]}
    _identity_cells(ws, r, n, row, extra, gap_fields)
    for i in range(n):  # line i: the i-th method beside the i-th receiver
        if i < len(row["own"]):
            _own_line(ws, r + i, row["own"][i])
        if i < len(row["entrusted"]):
            _entrusted_line(ws, r + i, i, row["entrusted"][i], gap_fields)
    for rr in range(r, r + n):
        for cc in range(1, NCOL + 1):
            ws.cell(rr, cc).border = BOX
            ws.cell(rr, cc).alignment = Alignment(vertical="center", wrap_text=True)
    return n


TOTALS = (("generated_t", "generated_t"), ("own.qty_t", "own_t"), ("entrusted.qty_t", "entrusted_t"),
          ("stock_open_t", "stock_open_t"), ("stock_close_t", "stock_close_t"))  # (column, key of totals)


def _total_line(ws: Worksheet, r: int, tot: dict[str, Any]) -> None:
    ws.cell(r, 1, "合计").font = Font(bold=True)
    for key, t in TOTALS:
        cell = ws.cell(r, IDX[key], tot[t])
        cell.number_format, cell.font = TONNES, Font(bold=True)
    for cc in range(1, NCOL + 1):
        ws.cell(r, cc).border = BOX


def _gap_notes(ws: Worksheet, r: int, rows: list[dict[str, Any]]) -> None:
    """From row ``r``: 缺项说明 and one line per gap (or 无)."""
    lines = [f"{row['code']} · {g['column']}：{g['reason']}" for row in rows for g in row["gaps"]]
    ws.cell(r, 1, "缺项说明").font = Font(bold=True)
    ws.cell(r, 1).comment = Comment("黄色单元格为台账、登记信息和许可证无法提供的内容，请在申报系统中补填。", "nofei")
    r += 1
    for line in lines or ["无"]:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=NCOL)
        ws.cell(r, 1, neutral(line))
        r += 1


TRACE_HEADS = ("废物代码", "栏目", "月份", "台账编号", "版本", "工作表", "行号", "数量（吨）")
TRACE_KEYS = ("code", "field", "month", "ledger_id", "version", "sheet", "row", "qty_t")


def _trace_sheet(wb: Workbook, trace: list[dict[str, Any]]) -> None:
    """The 数据来源 sheet: the ledger version, sheet and row behind every figure."""
    src = wb.create_sheet("数据来源")
    for i, h in enumerate(TRACE_HEADS, start=1):
        cell = src.cell(1, i, h)
        cell.font, cell.fill = Font(bold=True), HEAD
        src.column_dimensions[get_column_letter(i)].width = 14
    for i, t in enumerate(trace, start=2):
        for j, k in enumerate(TRACE_KEYS, start=1):
            cell = src.cell(i, j, neutral(t[k]))
            if k == "qty_t":
                cell.number_format = TONNES
    src.freeze_panes = "A2"


def write_declaration_xlsx(d: dict[str, Any]) -> bytes:
    """Workbook bytes of a declaration dict from :func:`reports.declarations.build_declaration`."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"表{d['table']}"
    for i, w in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
    _title(ws, d)
    r = _unit_block(ws, d, 2)
    h1, h2 = r + 1, r + 2
    _headers(ws, h1, h2, STOCK_WORDS[d["period_kind"]])
    r = h2 + 1
    for row in d["rows"]:
        r += _waste_block(ws, r, row, d.get("identity", {}).get(row["code"], {}))
    _total_line(ws, r, d["totals"])
    _gap_notes(ws, r + 2, d["rows"])
    ws.freeze_panes = ws.cell(h2 + 1, 4)
    _trace_sheet(wb, d["trace"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
