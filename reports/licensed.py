"""持证单位经营情况年报: a licensed unit's year — received, stored, utilised and disposed per code and
method, against the yearly capacity of its permits — due by 31 March (环办固体函〔2020〕733号; issue 14).

From the current versions of the year's ledgers: 转入 gives what was received, 利用处置 what was utilised
or disposed (the method's class, C1 as configured), 产生贮存 the stocks at the start and the end of the year.
Each treatment row counts against the first permit (valid in the year) that covers its code and method;
rows no permit covers are listed as such (they are also a warning at upload).
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.domain.units import Permit, month_days
from nofei.errors import NotFound
from nofei.quantity import kg_to_tonnes
from nofei.storage import declarations as repo
from nofei.storage.declarations import PeriodEntries
from nofei.storage.uow import UnitOfWork
from reports.declarations import visible_unit
from reports.declarations_xlsx import HEAD, TONNES, neutral

ZERO = Decimal("0.000")


def _t(kg: int) -> Decimal:
    return kg_to_tonnes(kg)


@dataclass
class _Capacity:
    """The unit's permits valid in the year, and how much of each one's capacity the treatments used."""

    permits: list[Permit]
    first: date
    last: date
    used: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    uncovered: list[dict[str, Any]] = field(default_factory=list)

    def count(self, t: dict[str, Any]) -> None:
        """A treatment row counts against the first permit naming its code and method that is in force in the row's
        month (the one permit-period rule, ``nofei.domain.units.in_force``)."""
        code, method = t["code"], t["method"]
        first, last = month_days(t["month"]) if t.get("month") else (self.first, self.last)
        p = next((p for p in self.permits if p.in_force(first, last) and p.names(code, method)), None)
        if p is None:
            self.uncovered.append({"code": code, "method": method, "month": t["month"], "ledger_id": t["ledger_id"],
                                   "row": t.get("row"), "qty_t": _t(int(t["qty_kg"]))})
        else:
            self.used[p.number] += int(t["qty_kg"])

    def rows(self) -> list[dict[str, Any]]:
        """Per permit: the yearly capacity, what was used and the load in percent."""
        out = []
        for p in self.permits:
            cap = _t(p.capacity_kg)
            use = _t(self.used.get(p.number, 0))
            out.append({"number": p.number, "waste_codes": list(p.waste_codes), "methods": list(p.methods),
                        "capacity_t": cap, "used_t": use,
                        "use_pct": (use / cap * 100).quantize(Decimal("0.01")) if cap else None,
                        "valid_from": p.valid_from, "valid_to": p.valid_to})
        return out


def _methods(items: dict[str, int]) -> list[dict[str, Any]]:
    return [{"method": m, "qty_t": _t(kg)} for m, kg in sorted(items.items())]


def _of(rows: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [x for x in rows if x["code"] == code]


def _stocks(st: list[dict[str, Any]]) -> dict[str, Decimal]:
    """产生量 over the months, the stock at the start of the first and at the end of the last month."""
    return {"generated_t": _t(sum(int(s["generated_kg"]) for s in st)),
            "stock_open_t": _t(int(st[0]["open_kg"])) if st else ZERO,
            "stock_close_t": _t(int(st[-1]["close_kg"])) if st else ZERO}


def _treated(code: str, e: PeriodEntries, cat: Catalogue, capacity: _Capacity) -> dict[str, Any]:
    """Utilised and disposed per method (by the method's class), each row counted against a permit."""
    by_method: dict[str, int] = defaultdict(int)
    for t in _of(e.treatments, code):
        by_method[t["method"]] += int(t["qty_kg"])
        capacity.count(t)
    utilised = {m: kg for m, kg in by_method.items() if cat.method_class(m) == "utilisation"}
    disposed = {m: kg for m, kg in by_method.items() if cat.method_class(m) != "utilisation"}
    return {"utilised": _methods(utilised), "disposed": _methods(disposed),
            "utilised_t": _t(sum(utilised.values())), "disposed_t": _t(sum(disposed.values()))}


def _code_row(code: str, e: PeriodEntries, cat: Catalogue, capacity: _Capacity) -> dict[str, Any]:
    """One waste code's year: stocks, received (and from how many senders), utilised and disposed per method."""
    st = sorted(_of(e.stocks, code), key=lambda s: s["month"])
    received = _of(e.transfers_in, code)
    wc = cat.codes.get(code)
    return {
        "code": code, "name": wc.name_zh if wc else "", "category": (wc.category if wc else None) or f"HW{code[-2:]}",
        "received_t": _t(sum(int(x["qty_kg"]) for x in received)), "senders": len({x["counterpart"] for x in received}),
        **_stocks(st), **_treated(code, e, cat, capacity),
        "sent_on_t": _t(sum(int(x["qty_kg"]) for x in _of(e.transfers_out, code))),
    }


TOTALLED = ("received_t", "utilised_t", "disposed_t", "stock_open_t", "stock_close_t", "sent_on_t")


def build_licensed_report(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int) -> dict[str, Any]:
    """The annual operating report of a unit holding a hazardous-waste permit valid in ``year``."""
    session = uow.session
    unit = visible_unit(uow, actor, credit_code)
    uid = int(unit.id or 0)
    permits = [p for p in repo.permits_by_unit(session, [uid]).get(uid, [])
               if p.number in repo.licences(session, year, [uid]).get(uid, [])]
    if not permits:
        raise NotFound(f"单位 {unit.credit_code} 在 {year} 年没有有效的危险废物经营许可证 (not licensed)",
                       code="not_licensed")
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    e = repo.period_entries(session, uid, months, received=True)
    cat = uow.catalogue
    capacity = _Capacity(permits, date(year, 1, 1), date(year, 12, 31))
    codes = sorted({x["code"] for x in (*e.stocks, *e.treatments, *e.transfers_in, *e.transfers_out)})
    rows = [_code_row(code, e, cat, capacity) for code in codes]
    present = {r["month"] for r in e.ledgers}
    return {"unit": unit.credit_code, "unit_name": unit.name, "district": unit.district,
            "district_name": cat.region_name(unit.district), "year": year, "deadline": date(year + 1, 3, 31),
            "title": f"{year} 年危险废物经营单位经营情况年报", "rows": rows, "permits": capacity.rows(),
            "uncovered": capacity.uncovered, "missing_months": [m for m in months if m not in present],
            "totals": {k: sum((r[k] for r in rows), ZERO) for k in TOTALLED}}


def write_licensed_xlsx(rep: dict[str, Any]) -> bytes:
    """The report as a workbook: title and unit block, the per-code table, the permits against capacity."""
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
