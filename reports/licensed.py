"""持证单位经营情况年报: a licensed unit's year — received, stored, utilised and disposed per code and
method, against the yearly capacity of its permits — due by 31 March (环办固体函〔2020〕733号; issue 14).

From the current versions of the year's ledgers: 转入 gives what was received, 利用处置 what was utilised
or disposed (the method's class, C1 as configured), 产生贮存 the stocks at the start and the end of the year.
Each treatment row counts against the first permit (valid in the year) that covers its code and method;
rows no permit covers are listed as such (they are also a warning at upload).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from nofei.access import Actor
from nofei.errors import NotFound
from nofei.quantity import kg_to_tonnes
from nofei.storage import declarations as repo
from nofei.storage.repo import find_unit_row
from nofei.storage.uow import UnitOfWork

ZERO = Decimal("0.000")


def _t(kg: int) -> Decimal:
    return kg_to_tonnes(kg)


def build_licensed_report(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int) -> dict[str, Any]:
    """The annual operating report of a unit holding a hazardous-waste permit valid in ``year``."""
    session = uow.session
    unit = find_unit_row(session, (credit_code or "").strip().upper())
    if unit is None or not actor.can_view_unit(unit.credit_code, unit.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    uid = int(unit.id or 0)
    first, last = date(year, 1, 1), date(year, 12, 31)
    permits = [p for p in repo.permits_by_unit(session, [uid]).get(uid, [])
               if p.number in repo.licences(session, year, [uid]).get(uid, [])]
    if not permits:
        raise NotFound(f"单位 {unit.credit_code} 在 {year} 年没有有效的危险废物经营许可证 (not licensed)",
                       code="not_licensed")
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    e = repo.period_entries(session, uid, months, received=True)
    cat = uow.catalogue
    codes = sorted({x["code"] for x in (*e.stocks, *e.treatments, *e.transfers_in, *e.transfers_out)})
    used: dict[str, int] = defaultdict(int)
    uncovered: list[dict[str, Any]] = []
    rows = []
    for code in codes:
        st = sorted((s for s in e.stocks if s["code"] == code), key=lambda s: s["month"])
        received = sum(int(x["qty_kg"]) for x in e.transfers_in if x["code"] == code)
        senders = len({x["counterpart"] for x in e.transfers_in if x["code"] == code})
        by_method: dict[str, int] = defaultdict(int)
        for t in e.treatments:
            if t["code"] != code:
                continue
            by_method[t["method"]] += int(t["qty_kg"])
            p = next((p for p in permits if p.covers(code, t["method"], first) or p.covers(code, t["method"], last)),
                     None)
            if p is None:
                uncovered.append({"code": code, "method": t["method"], "month": t["month"], "ledger_id": t["ledger_id"],
                                  "row": t.get("row"), "qty_t": _t(int(t["qty_kg"]))})
            else:
                used[p.number] += int(t["qty_kg"])
        utilised = {m: kg for m, kg in by_method.items() if cat.method_class(m) == "utilisation"}
        disposed = {m: kg for m, kg in by_method.items() if cat.method_class(m) != "utilisation"}
        wc = cat.codes.get(code)
        rows.append({
            "code": code, "name": wc.name_zh if wc else "", "category": (wc.category if wc else None) or f"HW{code[-2:]}",
            "received_t": _t(received), "senders": senders,
            "generated_t": _t(sum(int(s["generated_kg"]) for s in st)),
            "stock_open_t": _t(int(st[0]["open_kg"])) if st else ZERO,
            "stock_close_t": _t(int(st[-1]["close_kg"])) if st else ZERO,
            "utilised": [{"method": m, "qty_t": _t(kg)} for m, kg in sorted(utilised.items())],
            "disposed": [{"method": m, "qty_t": _t(kg)} for m, kg in sorted(disposed.items())],
            "utilised_t": _t(sum(utilised.values())), "disposed_t": _t(sum(disposed.values())),
            "sent_on_t": _t(sum(int(x["qty_kg"]) for x in e.transfers_out if x["code"] == code)),
        })
    permit_rows = []
    for p in permits:
        cap = _t(p.capacity_kg)
        use = _t(used.get(p.number, 0))
        permit_rows.append({"number": p.number, "waste_codes": list(p.waste_codes), "methods": list(p.methods),
                            "capacity_t": cap, "used_t": use,
                            "use_pct": (use / cap * 100).quantize(Decimal("0.01")) if cap else None,
                            "valid_from": p.valid_from, "valid_to": p.valid_to})
    present = {r["month"] for r in e.ledgers}
    return {"unit": unit.credit_code, "unit_name": unit.name, "district": unit.district,
            "district_name": cat.region_name(unit.district), "year": year, "deadline": date(year + 1, 3, 31),
            "title": f"{year} 年危险废物经营单位经营情况年报", "rows": rows, "permits": permit_rows,
            "uncovered": uncovered, "missing_months": [m for m in months if m not in present],
            "totals": {k: sum((r[k] for r in rows), ZERO) for k in
                       ("received_t", "utilised_t", "disposed_t", "stock_open_t", "stock_close_t", "sent_on_t")}}


def write_licensed_xlsx(rep: dict[str, Any]) -> bytes:
    """The report as a workbook: title and unit block, the per-code table, the permits against capacity."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    from reports.declarations_xlsx import HEAD, TONNES, neutral

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "经营情况"
    ws["A1"] = rep["title"]
    ws["A1"].font = Font(bold=True, size=13)
    ws["A2"] = neutral(f"单位：{rep['unit_name']}（{rep['unit']}），{rep['district_name']}；报送截止 {rep['deadline']}")
    if rep["missing_months"]:
        ws["A3"] = "未提交台账的月份：" + "、".join(rep["missing_months"])
    heads = ["废物代码", "废物名称", "类别", "年初贮存（吨）", "接收量（吨）", "移出单位数", "利用量（吨）", "利用方式",
             "处置量（吨）", "处置方式", "转出（吨）", "年末贮存（吨）"]
    for c, h in enumerate(heads, start=1):
        ws.cell(4, c, h).font = Font(bold=True)
        ws.cell(4, c).fill = HEAD
        ws.column_dimensions[ws.cell(4, c).column_letter].width = 14
    for r, row in enumerate(rep["rows"], start=5):
        vals = [row["code"], row["name"], row["category"], row["stock_open_t"], row["received_t"], row["senders"],
                row["utilised_t"], "、".join(f"{x['method']} {x['qty_t']}" for x in row["utilised"]),
                row["disposed_t"], "、".join(f"{x['method']} {x['qty_t']}" for x in row["disposed"]),
                row["sent_on_t"], row["stock_close_t"]]
        for c, v in enumerate(vals, start=1):
            cell = ws.cell(r, c, neutral(v))
            if isinstance(v, Decimal):
                cell.number_format = TONNES
    ps = wb.create_sheet("许可证能力")
    for c, h in enumerate(["许可证编号", "核准代码/类别", "核准方式", "年经营规模（吨）", "实际利用处置（吨）", "负荷率（%）"],
                          start=1):
        ps.cell(1, c, h).font = Font(bold=True)
        ps.cell(1, c).fill = HEAD
        ps.column_dimensions[ps.cell(1, c).column_letter].width = 18
    for r, p in enumerate(rep["permits"], start=2):
        for c, v in enumerate([p["number"], "、".join(p["waste_codes"]), "、".join(p["methods"]), p["capacity_t"],
                               p["used_t"], p["use_pct"]], start=1):
            ps.cell(r, c, neutral(v))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
