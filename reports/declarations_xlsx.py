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

from nofei.text import neutralise_cell_text
from reports.declarations import COLUMNS, STOCK_WORDS

TONNES = "0.000"
THIN = Side(style="thin", color="808080")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD = PatternFill("solid", fgColor="DDEBF7")
GAP = PatternFill("solid", fgColor="FFF2CC")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
WIDTHS = [18, 9, 12, 14, 8, 10, 11, 8, 8, 11, 12, 24, 22, 8, 11, 11, 11]


neutral = neutralise_cell_text  # the project's one formula-neutralising function (nofei.text)


def write_declaration_xlsx(d: dict[str, Any]) -> bytes:
    """Workbook bytes of a declaration dict from :func:`reports.declarations.build_declaration`."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"表{d['table']}"
    ncol = len(COLUMNS)
    last = get_column_letter(ncol)
    for i, w in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w

    ws.merge_cells(f"A1:{last}1")
    ws["A1"] = neutral(f"{d['title']}（HJ 1259—2022 表 {d['table']}）")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 28
    block = [
        ("单位名称", d["unit_name"], "统一社会信用代码", d["unit"]),
        ("所在区县", f"{d['district_name']}（{d['district']}）", "申报期", f"{d['period_label']}（{d['period']}）"),
        ("管理类别", d.get("tier_zh") or "—", "申报截止日期", str(d["deadline"])),
        ("数据来源", "nofei 月度台账现行版本：" + ("、".join(f"{x['month']} 第{x['version']}版" for x in d["ledgers"]) or "无"),
         "未提交台账的月份", "、".join(d["missing_months"]) or "无"),
    ]
    r = 2
    for a, b, label, e in block:
        ws.cell(r, 1, a).font = Font(bold=True)
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=8)
        ws.cell(r, 2, neutral(b))
        ws.merge_cells(start_row=r, start_column=9, end_row=r, end_column=11)
        ws.cell(r, 9, label).font = Font(bold=True)
        ws.merge_cells(start_row=r, start_column=12, end_row=r, end_column=ncol)
        ws.cell(r, 12, neutral(e))
        r += 1

    # two header rows: a group over its columns, or one header merged over both rows
    h1, h2 = r + 1, r + 2
    words = STOCK_WORDS[d["period_kind"]]
    c = 1
    while c <= ncol:
        key, group, header = COLUMNS[c - 1]
        if key == "stock_open_t":
            header = words[0]
        elif key == "stock_close_t":
            header = words[1]
        if group:
            span = sum(1 for k in COLUMNS if k[1] == group)
            if COLUMNS[c - 2][1] != group or c == 1:
                ws.merge_cells(start_row=h1, start_column=c, end_row=h1, end_column=c + span - 1)
                cell = ws.cell(h1, c, group + ("（吨）" if group == "剩余贮存量" else ""))
                cell.font, cell.alignment, cell.fill = Font(bold=True), CENTER, HEAD
            cell = ws.cell(h2, c, header + ("（吨）" if header == "量" else ""))
        else:
            ws.merge_cells(start_row=h1, start_column=c, end_row=h2, end_column=c)
            cell = ws.cell(h1, c, header + ("（吨）" if key == "generated_t" else ""))
        cell.font, cell.alignment, cell.fill = Font(bold=True), CENTER, HEAD
        c += 1
    for rr in (h1, h2):
        for cc in range(1, ncol + 1):
            ws.cell(rr, cc).border = BOX
            ws.cell(rr, cc).fill = HEAD
    ws.row_dimensions[h2].height = 42

    idx = {k: i + 1 for i, (k, _, _) in enumerate(COLUMNS)}
    r = h2 + 1
    gap_lines: list[str] = []
    for row in d["rows"]:
        n = max(len(row["own"]), len(row["entrusted"]), 1)
        gap_fields = {g["field"] for g in row["gaps"]}
        extra = d.get("identity", {}).get(row["code"], {})
        ident = {"name": row["name"], "category": row["category"], "code": row["code"],
                 "harmful_components": extra.get("harmful_components"), "form": extra.get("form"), "hazard": row["hazard"] or None, "generated_t": row["generated_t"], "unit": "吨",
                 "stock_open_t": row["stock_open_t"], "stock_close_t": row["stock_close_t"]}
        for key, v in ident.items():
            col = idx[key]
            if n > 1:
                ws.merge_cells(start_row=r, start_column=col, end_row=r + n - 1, end_column=col)
            cell = ws.cell(r, col, neutral(v))
            if isinstance(v, Decimal):
                cell.number_format = TONNES
            if key in gap_fields:
                cell.fill = GAP
        for i in range(n):
            o = row["own"][i] if i < len(row["own"]) else None
            x = row["entrusted"][i] if i < len(row["entrusted"]) else None
            if o:
                ws.cell(r + i, idx["own.method"], neutral(o["method"]))
                ws.cell(r + i, idx["own.qty_t"], o["qty_t"]).number_format = TONNES
            if x:
                for k in ("province", "receiver_name", "licence", "method"):
                    cell = ws.cell(r + i, idx[f"entrusted.{k}"], neutral(x[k]))
                    if f"entrusted[{i}].{k}" in gap_fields:
                        cell.fill = GAP
                ws.cell(r + i, idx["entrusted.qty_t"], x["qty_t"]).number_format = TONNES
        for g in row["gaps"]:
            gap_lines.append(f"{row['code']} · {g['column']}：{g['reason']}")
        for rr in range(r, r + n):
            for cc in range(1, ncol + 1):
                ws.cell(rr, cc).border = BOX
                ws.cell(rr, cc).alignment = Alignment(vertical="center", wrap_text=True)
        r += n
    tot = d["totals"]
    ws.cell(r, 1, "合计").font = Font(bold=True)
    for key, v in (("generated_t", tot["generated_t"]), ("own.qty_t", tot["own_t"]),
                   ("entrusted.qty_t", tot["entrusted_t"]), ("stock_open_t", tot["stock_open_t"]),
                   ("stock_close_t", tot["stock_close_t"])):
        cell = ws.cell(r, idx[key], v)
        cell.number_format, cell.font = TONNES, Font(bold=True)
    for cc in range(1, ncol + 1):
        ws.cell(r, cc).border = BOX
    r += 2
    ws.cell(r, 1, "缺项说明").font = Font(bold=True)
    ws.cell(r, 1).comment = Comment("黄色单元格为台账、登记信息和许可证无法提供的内容，请在申报系统中补填。", "nofei")
    r += 1
    for line in gap_lines or ["无"]:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncol)
        ws.cell(r, 1, neutral(line))
        r += 1
    ws.freeze_panes = ws.cell(h2 + 1, 4)

    src = wb.create_sheet("数据来源")
    heads = ["废物代码", "栏目", "月份", "台账编号", "版本", "工作表", "行号", "数量（吨）"]
    for i, h in enumerate(heads, start=1):
        cell = src.cell(1, i, h)
        cell.font, cell.fill = Font(bold=True), HEAD
        src.column_dimensions[get_column_letter(i)].width = 14
    for i, t in enumerate(d["trace"], start=2):
        for j, v in enumerate((t["code"], t["field"], t["month"], t["ledger_id"], t["version"], t["sheet"], t["row"],
                               t["qty_t"]), start=1):
            cell = src.cell(i, j, neutral(v))
            if j == 8:
                cell.number_format = TONNES
    src.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
