"""The HJ 1259 declaration tables C.1 (month), C.2 (quarter) and C.3 (year) from the ledgers (issue 14).

The monthly ledger is, column for column, most of C.1 (``ledger-workbook.md``): 产生贮存 gives 产生量
and the 剩余贮存量, 利用处置 the 自行利用/处置, 转出 the 委托外单位. A table is built from the current
versions of the period's ledgers only; every figure is listed in ``trace`` with the ledger version,
sheet and row it comes from. What the ledgers, the registry and the permits cannot give (有害成分名称,
形态 when the optional 产生贮存 columns are blank, a receiver's 许可证编号, a method left blank) is left empty
and named in the row's ``gaps``; 有害成分名称 and 形态, which ``rows`` items do not carry (their fields are a
contract), are in ``identity`` per code.

Quantities are exact: integer kilograms summed, shown as tonnes (``Decimal`` with three places).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nofei.access import Actor
from nofei.domain.declarations import KIND_ZH, BadPeriod, Period, parse_period, province_of
from nofei.errors import InputRejected, NotFound
from nofei.problems import Problem
from nofei.quantity import kg_to_tonnes
from nofei.storage import declarations as repo
from nofei.storage.ledgerstore import previous_month_close
from nofei.storage.repo import find_unit_row, unit_rows_by_code
from nofei.storage.uow import UnitOfWork

SHEET_STOCK, SHEET_TREAT, SHEET_OUT = "产生贮存", "利用处置", "转出"

# The official columns of C.1/C.2/C.3 in their order (HJ 1259-2022 附录 C; official-check.md §3).
COLUMNS: list[tuple[str, str, str]] = [  # (key, group, header)
    ("name", "", "废物名称"), ("category", "", "废物类别"), ("code", "", "废物代码"),
    ("harmful_components", "", "有害成分名称"), ("form", "", "形态"), ("hazard", "", "危险特性"),
    ("generated_t", "", "产生量"), ("unit", "", "计量单位"),
    ("own.method", "自行利用/处置", "方式"), ("own.qty_t", "自行利用/处置", "量"),
    ("entrusted.province", "委托外单位利用/处置", "省（区、市）"),
    ("entrusted.receiver_name", "委托外单位利用/处置", "单位名称"),
    ("entrusted.licence", "委托外单位利用/处置", "许可证编号/豁免单位编号/出口核准通知单编号"),
    ("entrusted.method", "委托外单位利用/处置", "方式"), ("entrusted.qty_t", "委托外单位利用/处置", "量"),
    ("stock_open_t", "剩余贮存量", "上期末"), ("stock_close_t", "剩余贮存量", "本期末"),
]
STOCK_WORDS = {"month": ("上月底", "本月底"), "quarter": ("上季度末", "本季度末"), "year": ("上年末", "本年末")}
GAP_NO_COLUMN = "本期台账的产生贮存表未填写此列（可选列），登记信息中也没有（请在申报系统中补填）"


def _t(kg: int) -> Decimal:
    return kg_to_tonnes(kg)


def _gap(field: str, column: str, reason: str) -> dict[str, str]:
    return {"field": field, "column": column, "reason": reason}


def period_arg(text: str) -> Period:
    """The ``period`` query argument, or a 422 naming it."""
    try:
        return parse_period(text)
    except BadPeriod as e:
        raise InputRejected("申报期格式有误 (bad period)", problems=[
            Problem("bad_period", str(e), "period must be YYYY-MM, YYYY-Qn or YYYY", field="period", value=text)]) from e


def build_declaration(*, uow: UnitOfWork, actor: Actor, credit_code: str, period: Period,
                      tier: dict[str, Any] | None = None) -> dict[str, Any]:
    """The C.1/C.2/C.3 table of a unit for ``period`` (a unit the caller may see; 404 otherwise).

    ``tier`` (``ledgers.declarations.unit_tier``'s answer, passed in by the api layer) goes into the unit block."""
    session = uow.session
    unit = find_unit_row(session, (credit_code or "").strip().upper())
    if unit is None or not actor.can_view_unit(unit.credit_code, unit.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    cat = uow.catalogue
    months = period.months()
    e = repo.period_entries(session, int(unit.id or 0), months)
    ledgers = {r["id"]: r for r in e.ledgers}
    present = [r["month"] for r in e.ledgers]
    missing = [m for m in months if m not in present]
    trace: list[dict[str, Any]] = []

    def ref(d: dict[str, Any], sheet: str, field: str, code: str, kg: int) -> None:
        led = ledgers[d["ledger_id"]]
        trace.append({"code": code, "field": field, "ledger_id": d["ledger_id"], "month": led["month"],
                      "version": led["version"], "sheet": sheet, "row": d.get("row"), "qty_t": _t(kg)})

    codes: list[str] = []
    stocks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in e.stocks:
        stocks[s["code"]].append(s)
        if s["code"] not in codes:
            codes.append(s["code"])
    for x in (*e.treatments, *e.transfers_out):
        if x["code"] not in codes:
            codes.append(x["code"])
    codes.sort()

    # receivers: registry name, province and the permit covering the code (and method) in the period
    receivers = unit_rows_by_code(session, {t["counterpart"] for t in e.transfers_out})
    permits = repo.permits_by_unit(session, [int(r.id or 0) for r in receivers.values()])
    prev = previous_month_close(session, int(unit.id or 0), months[0])

    rows: list[dict[str, Any]] = []
    identity: dict[str, dict[str, str | None]] = {}
    for code in codes:
        wc = cat.codes.get(code)
        gaps: list[dict[str, str]] = []
        name = wc.name_zh if wc else next((s["name"] for s in stocks[code] if s.get("name")), "")
        category = (wc.category if wc else None) or (f"HW{code[-2:]}" if len(code) == 10 else "")
        hazard = wc.hazard if wc else ""
        if not name:
            gaps.append(_gap("name", "废物名称", "代码不在名录数据中，台账也未填写名称"))
        if not hazard:
            gaps.append(_gap("hazard", "危险特性", "代码不在 nofei 的名录数据中（管理员可导入完整名录）"))
        st = sorted(stocks[code], key=lambda s: s["month"])
        ident: dict[str, str | None] = {}
        for key, column in (("harmful_components", "有害成分名称"), ("form", "形态")):
            src = next((s for s in reversed(st) if (s.get(key) or "").strip()), None)  # the latest month's entry
            ident[key] = src[key].strip() if src else None
            if src is None:
                gaps.append(_gap(key, column, GAP_NO_COLUMN))
            else:
                led = ledgers[src["ledger_id"]]
                trace.append({"code": code, "field": key, "ledger_id": src["ledger_id"], "month": led["month"],
                              "version": led["version"], "sheet": SHEET_STOCK, "row": src.get("row"), "qty_t": None})
        identity[code] = ident
        generated = 0
        for s in st:
            generated += int(s["generated_kg"])
            ref(s, SHEET_STOCK, "generated_t", code, int(s["generated_kg"]))
        if st and st[0]["month"] == months[0]:
            open_kg = int(st[0]["open_kg"])
            ref(st[0], SHEET_STOCK, "stock_open_t", code, open_kg)
            if prev is not None and prev.get(code, 0) != open_kg:
                gaps.append(_gap("stock_open_t", "上期末剩余贮存量",
                                 f"本期首月期初 {_t(open_kg)} 吨与上期末（上月期末）{_t(prev.get(code, 0))} 吨不一致，取本期首月期初"))
        elif st:
            open_kg = int(st[0]["open_kg"])
            ref(st[0], SHEET_STOCK, "stock_open_t", code, open_kg)
            gaps.append(_gap("stock_open_t", "上期末剩余贮存量",
                             f"{months[0]} 台账未提交，取 {st[0]['month']} 的期初贮存量"))
        else:
            open_kg = 0
            gaps.append(_gap("stock_open_t", "上期末剩余贮存量", "本期台账没有该代码的产生贮存行"))
        if st:
            close_kg = int(st[-1]["close_kg"])
            ref(st[-1], SHEET_STOCK, "stock_close_t", code, close_kg)
            if st[-1]["month"] != months[-1]:
                gaps.append(_gap("stock_close_t", "本期末剩余贮存量",
                                 f"{months[-1]} 台账未提交或无该代码，取 {st[-1]['month']} 的期末贮存量"))
        else:
            close_kg = 0

        own_kg: dict[str, int] = defaultdict(int)
        for t in e.treatments:
            if t["code"] == code:
                own_kg[t["method"]] += int(t["qty_kg"])
        own: list[dict[str, Any]] = []
        for i, (m, kg) in enumerate(sorted(own_kg.items())):
            own.append({"method": m, "qty_t": _t(kg)})
            for t in e.treatments:
                if t["code"] == code and t["method"] == m:
                    ref(t, SHEET_TREAT, f"own[{i}].qty_t", code, int(t["qty_kg"]))

        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for t in e.transfers_out:
            if t["code"] == code:
                groups[(t["counterpart"], t.get("planned_method") or "")].append(t)
        entrusted: list[dict[str, Any]] = []
        for i, ((rc, method), lines) in enumerate(sorted(groups.items())):
            r = receivers.get(rc)
            rname = r.name if r is not None else next((x["counterpart_name"] for x in lines if x["counterpart_name"]), "")
            lic = None
            if r is not None:
                for p in permits.get(int(r.id or 0), []):
                    if any(p.covers(code, method or None, on) for on in (period.start, period.end)):
                        lic = p.number
                        break
            f = f"entrusted[{i}]"
            if lic is None:
                why = ("接收单位未在 nofei 登记" if r is None else
                       "接收单位登记的许可证不覆盖该代码" + ("及方式" if method else "") + "（或不在有效期内）")
                gaps.append(_gap(f"{f}.licence", "许可证编号/豁免单位编号/出口核准通知单编号", why))
            prov = province_of(rc)
            if prov is None:
                gaps.append(_gap(f"{f}.province", "省（区、市）", "接收单位统一社会信用代码无法识别行政区划"))
            if not method:
                gaps.append(_gap(f"{f}.method", "方式", "转出行未填写拟利用处置方式"))
            if not rname:
                gaps.append(_gap(f"{f}.receiver_name", "单位名称", "接收单位未登记，转出行也未填写名称"))
            qty = sum(int(x["qty_kg"]) for x in lines)
            for x in lines:
                ref(x, SHEET_OUT, f"{f}.qty_t", code, int(x["qty_kg"]))
            entrusted.append({"receiver": rc, "receiver_name": rname, "province": prov, "licence": lic,
                              "method": method or None, "qty_t": _t(qty)})
        rows.append({"code": code, "name": name, "category": category, "hazard": hazard,
                     "generated_t": _t(generated), "own": own, "entrusted": entrusted,
                     "stock_open_t": _t(open_kg), "stock_close_t": _t(close_kg), "gaps": gaps})

    def total(key: str) -> Decimal:
        return sum((r[key] for r in rows), Decimal("0.000"))

    totals = {"generated_t": total("generated_t"),
              "own_t": sum((o["qty_t"] for r in rows for o in r["own"]), Decimal("0.000")),
              "entrusted_t": sum((x["qty_t"] for r in rows for x in r["entrusted"]), Decimal("0.000")),
              "stock_open_t": total("stock_open_t"), "stock_close_t": total("stock_close_t")}
    return {
        "unit": unit.credit_code, "unit_name": unit.name, "district": unit.district,
        "district_name": cat.region_name(unit.district),
        "period": period.key, "period_kind": period.kind, "period_label": period.label_zh,
        "table": period.table, "title": f"危险废物{KIND_ZH[period.kind]}申报报告",
        "deadline": period.deadline(), "months": months,
        "ledgers": [{"month": r["month"], "ledger_id": r["id"], "version": r["version"]} for r in e.ledgers],
        "missing_months": missing, "complete": not missing,
        "tier": tier["tier"] if tier else None, "tier_zh": tier["tier_zh"] if tier else None,
        "rows": rows, "identity": identity, "totals": totals, "trace": trace,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
