"""危险废物管理计划 pre-fill (HJ 1259-2022 附录 A) for a year from the previous year's actuals (issue 14).

The plan of year Y is filed by 31 March of Y; nofei fills what its ledgers know: A.3 产生 (codes and
quantities), A.4 贮存 (the stock at the end of Y-1), A.5 自行利用/处置 (methods and quantities) and A.7
转移 (receivers, their province and licence, methods and quantities). The planned figures start equal to
last year's actuals, for the clerk to adjust. Which tables a unit files follows its tier (5.3): 重点 A.1–A.7,
简化 A.1, A.3, A.4, A.6, A.7, 登记 A.1, A.3, A.7; A.1, A.2 and A.6 (unit data, facilities, reduction
measures) are not held by nofei. The figures come from the C.3 table of Y-1, so they trace to the same
ledger rows.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from nofei.access import Actor
from nofei.domain.declarations import Period
from nofei.storage.uow import UnitOfWork
from reports.declarations import build_declaration
from reports.declarations_xlsx import GAP, HEAD, TONNES, neutral

TABLES_BY_TIER = {"key": ("A.3", "A.4", "A.5", "A.7"), "simplified": ("A.3", "A.4", "A.7"),
                  "registration": ("A.3", "A.7")}
TITLES = {"A.3": "危险废物产生情况", "A.4": "危险废物贮存情况", "A.5": "危险废物自行利用/处置情况",
          "A.7": "危险废物转移情况"}
# (key, header, width) per table, in the order of the official tables as far as nofei can fill them
SPECS: dict[str, list[tuple[str, str, int]]] = {
    "A.3": [("name", "废物名称", 22), ("category", "废物类别", 9), ("code", "废物代码", 12),
            ("harmful_components", "有害成分名称", 14), ("form", "形态", 8), ("hazard", "危险特性", 9),
            ("planned_t", "本年度计划产生量（吨）", 14), ("last_t", "上年度实际产生量（吨）", 14)],
    "A.4": [("name", "废物名称", 22), ("code", "废物代码", 12), ("facility", "贮存设施编码", 14),
            ("last_close_t", "上年度末贮存量（吨）", 14)],
    "A.5": [("name", "废物名称", 22), ("code", "废物代码", 12), ("method", "利用/处置方式", 10),
            ("facility", "设施编码", 14), ("planned_t", "本年度计划量（吨）", 14), ("last_t", "上年度实际量（吨）", 14)],
    "A.7": [("name", "废物名称", 22), ("code", "废物代码", 12), ("province", "接收单位所在省（区、市）", 12),
            ("receiver_name", "接收单位名称", 24), ("receiver", "接收单位统一社会信用代码", 20),
            ("licence", "许可证编号", 18), ("method", "利用/处置方式", 10), ("planned_t", "本年度计划转移量（吨）", 14),
            ("last_t", "上年度实际转移量（吨）", 14)],
}
NOT_HELD = "nofei 未掌握（请按排污许可证或 HJ 608 填写）"


def build_plan(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int,
               tier: dict[str, Any] | None) -> dict[str, Any]:
    """The pre-filled plan tables of ``year`` from the C.3 table of ``year - 1`` (404 for a unit not visible)."""
    d = build_declaration(uow=uow, actor=actor, credit_code=credit_code, period=Period(year - 1, "year"), tier=tier)
    t = tier["tier"] if tier else "registration"
    tables: dict[str, list[dict[str, Any]]] = {k: [] for k in TABLES_BY_TIER[t]}
    for r in d["rows"]:
        extra = d["identity"].get(r["code"], {})
        ident = {"name": r["name"], "category": r["category"], "code": r["code"], "hazard": r["hazard"],
                 "harmful_components": extra.get("harmful_components"), "form": extra.get("form")}
        tables["A.3"].append({**ident, "planned_t": r["generated_t"], "last_t": r["generated_t"]})
        if "A.4" in tables:
            tables["A.4"].append({**ident, "facility": None, "last_close_t": r["stock_close_t"]})
        if "A.5" in tables:
            for o in r["own"]:
                tables["A.5"].append({**ident, "method": o["method"], "facility": None, "planned_t": o["qty_t"],
                                      "last_t": o["qty_t"]})
        for x in r["entrusted"]:
            tables["A.7"].append({**ident, **{k: x[k] for k in ("province", "receiver_name", "receiver", "licence",
                                                                "method")},
                                  "planned_t": x["qty_t"], "last_t": x["qty_t"]})
    return {"unit": d["unit"], "unit_name": d["unit_name"], "district": d["district"],
            "district_name": d["district_name"], "year": year, "based_on": d["period"], "tier": t,
            "tier_zh": tier["tier_zh"] if tier else "登记管理", "tables": tables,
            "missing_months": d["missing_months"], "ledgers": d["ledgers"],
            "not_held": ["A.1 单位基本信息", "A.2 设施信息", "A.6 减少危险废物产生量和危害性的措施",
                         "有害成分名称、形态、设施编码"]}


def write_plan_xlsx(plan: dict[str, Any]) -> bytes:
    """One sheet per table (表A.3 …), each with the plan's title, the unit block and one header row."""
    wb = Workbook()
    wb.remove(wb.active)
    for key, rows in plan["tables"].items():
        ws = wb.create_sheet(f"表{key}")
        spec = SPECS[key]
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(spec))
        ws.cell(1, 1, f"{plan['year']} 年危险废物管理计划 表{key} {TITLES[key]}（预填）").font = Font(bold=True, size=13)
        ws.cell(2, 1, neutral(f"单位：{plan['unit_name']}（{plan['unit']}），{plan['district_name']}；管理类别："
                               f"{plan['tier_zh']}；按 {plan['based_on']} 年台账实际数预填，计划量请按本年度安排调整。"))
        if plan["missing_months"]:
            ws.cell(3, 1, "上年度未提交台账的月份：" + "、".join(plan["missing_months"]))
        for c, (_, header, width) in enumerate(spec, start=1):
            cell = ws.cell(4, c, header)
            cell.font, cell.fill = Font(bold=True), HEAD
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            ws.column_dimensions[cell.column_letter].width = width
        for r, row in enumerate(rows, start=5):
            for c, (k, _, _) in enumerate(spec, start=1):
                cell = ws.cell(r, c, neutral(row.get(k)))
                if k.endswith("_t"):
                    cell.number_format = TONNES
                elif row.get(k) is None:
                    cell.fill = GAP
        ws.cell(len(rows) + 6, 1, "黄色单元格：" + NOT_HELD if key in ("A.4", "A.5") else
                "黄色单元格：台账未提供，请补填").font = Font(italic=True)
        ws.freeze_panes = "A5"
    info = wb.create_sheet("说明")
    info.column_dimensions["A"].width = 80
    for i, line in enumerate([
        f"本文件按 HJ 1259—2022 附录 A 预填 {plan['year']} 年管理计划的 {'、'.join(plan['tables'])}。",
        f"依据：{plan['based_on']} 年月度台账现行版本（{len(plan['ledgers'])} 个月）。",
        "nofei 未掌握、需另行填写：" + "；".join(plan["not_held"]),
    ], start=1):
        info.cell(i, 1, neutral(line)).fill = PatternFill()
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
