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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nofei.access import Actor
from nofei.catalogue import WasteCode
from nofei.domain.declarations import KIND_ZH, BadPeriod, Period, parse_period, province_of
from nofei.domain.units import Permit, normalise_credit_code
from nofei.errors import InputRejected, NotFound
from nofei.problems import Problem
from nofei.quantity import kg_to_tonnes
from nofei.storage import declarations as repo
from nofei.storage.declarations import PeriodEntries
from nofei.storage.ledgerstore import previous_month_close
from nofei.storage.repo import find_unit_row, unit_rows_by_code
from nofei.storage.tables import UnitRow
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


def visible_unit(uow: UnitOfWork, actor: Actor, credit_code: str) -> UnitRow:
    """The registered unit of ``credit_code`` when the caller may see it; 404 otherwise (ids cannot be probed)."""
    unit = find_unit_row(uow.session, normalise_credit_code(credit_code))
    if unit is None or not actor.can_view_unit(unit.credit_code, unit.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    return unit


@dataclass
class _Sources:
    """The period's ledger entries of one unit, and the trace of every figure taken from them."""

    entries: PeriodEntries
    ledgers: dict[int, dict[str, Any]]
    trace: list[dict[str, Any]] = field(default_factory=list)

    def ref(self, d: dict[str, Any], sheet: str, column: str, code: str, qty_t: Decimal | None) -> None:
        """Trace one figure (or, with ``qty_t`` None, one text) to its ledger version, sheet and row."""
        led = self.ledgers[d["ledger_id"]]
        self.trace.append({"code": code, "field": column, "ledger_id": d["ledger_id"], "month": led["month"],
                           "version": led["version"], "sheet": sheet, "row": d.get("row"), "qty_t": qty_t})

    def of(self, rows: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
        """The entries of one waste code, in their order."""
        return [r for r in rows if r["code"] == code]


@dataclass
class _Receivers:
    """The receivers of the period's transfers as registered, with their permits."""

    units: dict[str, UnitRow]
    permits: dict[int, list[Permit]]

    def licence(self, receiver: UnitRow | None, code: str, method: str, period: Period) -> str | None:
        """The number of the receiver's first permit naming the code (and method) and in force on some day of the
        period (the one permit-period rule, ``nofei.domain.units.in_force``)."""
        if receiver is None:
            return None
        for p in self.permits.get(int(receiver.id or 0), []):
            if p.in_force(period.start, period.end) and p.names(code, method or None):
                return p.number
        return None


def _codes(e: PeriodEntries) -> list[str]:
    """Every waste code of the period: of the stock rows, the treatments and the transfers out."""
    return sorted({x["code"] for x in (*e.stocks, *e.treatments, *e.transfers_out)})


def _names(code: str, wc: WasteCode | None, st: list[dict[str, Any]], gaps: list[dict[str, str]]) -> dict[str, str]:
    """废物名称, 废物类别 and 危险特性 from the catalogue (the name from the ledger when the code is not in it)."""
    name = wc.name_zh if wc else next((s["name"] for s in st if s.get("name")), "")
    category = (wc.category if wc else None) or (f"HW{code[-2:]}" if len(code) == 10 else "")
    hazard = wc.hazard if wc else ""
    if not name:
        gaps.append(_gap("name", "废物名称", "代码不在名录数据中，台账也未填写名称"))
    if not hazard:
        gaps.append(_gap("hazard", "危险特性", "代码不在 nofei 的名录数据中（管理员可导入完整名录）"))
    return {"name": name, "category": category, "hazard": hazard}


def _identity(code: str, st: list[dict[str, Any]], src: _Sources, gaps: list[dict[str, str]]) -> dict[str, str | None]:
    """有害成分名称 and 形态 from the latest month whose 产生贮存 row fills them (optional columns)."""
    ident: dict[str, str | None] = {}
    for key, column in (("harmful_components", "有害成分名称"), ("form", "形态")):
        entry = next((s for s in reversed(st) if (s.get(key) or "").strip()), None)
        ident[key] = entry[key].strip() if entry else None
        if entry is None:
            gaps.append(_gap(key, column, GAP_NO_COLUMN))
        else:
            src.ref(entry, SHEET_STOCK, key, code, None)
    return ident


def _generated(code: str, st: list[dict[str, Any]], src: _Sources) -> int:
    """产生量: the sum of the months' 产生量 of the code."""
    for s in st:
        src.ref(s, SHEET_STOCK, "generated_t", code, _t(int(s["generated_kg"])))
    return sum(int(s["generated_kg"]) for s in st)


def _stock_open(code: str, st: list[dict[str, Any]], months: list[str], prev: dict[str, int] | None,
                src: _Sources, gaps: list[dict[str, str]]) -> int:
    """上期末剩余贮存量: the first month's 期初, with a gap when it is not the period's first month or
    disagrees with the close of the month before the period."""
    if not st:
        gaps.append(_gap("stock_open_t", "上期末剩余贮存量", "本期台账没有该代码的产生贮存行"))
        return 0
    open_kg = int(st[0]["open_kg"])
    src.ref(st[0], SHEET_STOCK, "stock_open_t", code, _t(open_kg))
    if st[0]["month"] != months[0]:
        gaps.append(_gap("stock_open_t", "上期末剩余贮存量", f"{months[0]} 台账未提交，取 {st[0]['month']} 的期初贮存量"))
    elif prev is not None and prev.get(code, 0) != open_kg:
        gaps.append(_gap("stock_open_t", "上期末剩余贮存量",
                         f"本期首月期初 {_t(open_kg)} 吨与上期末（上月期末）{_t(prev.get(code, 0))} 吨不一致，取本期首月期初"))
    return open_kg


def _stock_close(code: str, st: list[dict[str, Any]], months: list[str], src: _Sources,
                 gaps: list[dict[str, str]]) -> int:
    """本期末剩余贮存量: the last month's 期末, with a gap when that is not the period's last month."""
    if not st:
        return 0
    close_kg = int(st[-1]["close_kg"])
    src.ref(st[-1], SHEET_STOCK, "stock_close_t", code, _t(close_kg))
    if st[-1]["month"] != months[-1]:
        gaps.append(_gap("stock_close_t", "本期末剩余贮存量",
                         f"{months[-1]} 台账未提交或无该代码，取 {st[-1]['month']} 的期末贮存量"))
    return close_kg


def _own(code: str, src: _Sources) -> list[dict[str, Any]]:
    """自行利用/处置: the code's treatments summed per method, in method order."""
    treated = src.of(src.entries.treatments, code)
    own_kg: dict[str, int] = defaultdict(int)
    for t in treated:
        own_kg[t["method"]] += int(t["qty_kg"])
    own: list[dict[str, Any]] = []
    for i, (m, kg) in enumerate(sorted(own_kg.items())):
        own.append({"method": m, "qty_t": _t(kg)})
        for t in treated:
            if t["method"] == m:
                src.ref(t, SHEET_TREAT, f"own[{i}].qty_t", code, _t(int(t["qty_kg"])))
    return own


def _entrusted_gaps(f: str, *, registered: bool, licence: str | None, province: str | None, method: str,
                    receiver_name: str) -> list[dict[str, str]]:
    """What a 委托外单位 line cannot fill: the licence, the province, the method, the receiver's name."""
    gaps = []
    if licence is None:
        why = ("接收单位未在 nofei 登记" if not registered else
               "接收单位登记的许可证不覆盖该代码" + ("及方式" if method else "") + "（或不在有效期内）")
        gaps.append(_gap(f"{f}.licence", "许可证编号/豁免单位编号/出口核准通知单编号", why))
    if province is None:
        gaps.append(_gap(f"{f}.province", "省（区、市）", "接收单位统一社会信用代码无法识别行政区划"))
    if not method:
        gaps.append(_gap(f"{f}.method", "方式", "转出行未填写拟利用处置方式"))
    if not receiver_name:
        gaps.append(_gap(f"{f}.receiver_name", "单位名称", "接收单位未登记，转出行也未填写名称"))
    return gaps


def _entrusted(code: str, src: _Sources, receivers: _Receivers, period: Period,
               gaps: list[dict[str, str]]) -> list[dict[str, Any]]:
    """委托外单位利用/处置: the code's transfers out summed per (receiver, planned method)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in src.of(src.entries.transfers_out, code):
        groups[(t["counterpart"], t.get("planned_method") or "")].append(t)
    entrusted: list[dict[str, Any]] = []
    for i, ((rc, method), lines) in enumerate(sorted(groups.items())):
        r = receivers.units.get(rc)
        rname = r.name if r is not None else next((x["counterpart_name"] for x in lines if x["counterpart_name"]), "")
        lic = receivers.licence(r, code, method, period)
        prov = province_of(rc)
        f = f"entrusted[{i}]"
        gaps.extend(_entrusted_gaps(f, registered=r is not None, licence=lic, province=prov, method=method,
                                    receiver_name=rname))
        for x in lines:
            src.ref(x, SHEET_OUT, f"{f}.qty_t", code, _t(int(x["qty_kg"])))
        entrusted.append({"receiver": rc, "receiver_name": rname, "province": prov, "licence": lic,
                          "method": method or None, "qty_t": _t(sum(int(x["qty_kg"]) for x in lines))})
    return entrusted


def _totals(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    """The 合计 line: each column summed over the codes."""
    def total(key: str) -> Decimal:
        return sum((r[key] for r in rows), Decimal("0.000"))

    return {"generated_t": total("generated_t"),
            "own_t": sum((o["qty_t"] for r in rows for o in r["own"]), Decimal("0.000")),
            "entrusted_t": sum((x["qty_t"] for r in rows for x in r["entrusted"]), Decimal("0.000")),
            "stock_open_t": total("stock_open_t"), "stock_close_t": total("stock_close_t")}


def build_declaration(*, uow: UnitOfWork, actor: Actor, credit_code: str, period: Period,
                      tier: dict[str, Any] | None = None) -> dict[str, Any]:
    """The C.1/C.2/C.3 table of a unit for ``period`` (a unit the caller may see; 404 otherwise).

    ``tier`` (``ledgers.declarations.unit_tier``'s answer, passed in by the api layer) goes into the unit block."""
    session = uow.session
    unit = visible_unit(uow, actor, credit_code)
    cat = uow.catalogue
    months = period.months()
    e = repo.period_entries(session, int(unit.id or 0), months)
    src = _Sources(e, {r["id"]: r for r in e.ledgers})
    # receivers: registry name, province and the permit covering the code (and method) in the period
    found = unit_rows_by_code(session, {t["counterpart"] for t in e.transfers_out})
    receivers = _Receivers(found, repo.permits_by_unit(session, [int(r.id or 0) for r in found.values()]))
    prev = previous_month_close(session, int(unit.id or 0), months[0])

    rows: list[dict[str, Any]] = []
    identity: dict[str, dict[str, str | None]] = {}
    for code in _codes(e):
        gaps: list[dict[str, str]] = []
        stocks = src.of(e.stocks, code)
        names = _names(code, cat.codes.get(code), stocks, gaps)
        st = sorted(stocks, key=lambda s: s["month"])
        identity[code] = _identity(code, st, src, gaps)
        generated = _generated(code, st, src)
        open_kg = _stock_open(code, st, months, prev, src, gaps)
        close_kg = _stock_close(code, st, months, src, gaps)
        own = _own(code, src)
        entrusted = _entrusted(code, src, receivers, period, gaps)
        rows.append({"code": code, **names, "generated_t": _t(generated), "own": own, "entrusted": entrusted,
                     "stock_open_t": _t(open_kg), "stock_close_t": _t(close_kg), "gaps": gaps})
    present = [r["month"] for r in e.ledgers]
    missing = [m for m in months if m not in present]
    return {
        "unit": unit.credit_code, "unit_name": unit.name, "district": unit.district,
        "district_name": cat.region_name(unit.district),
        "period": period.key, "period_kind": period.kind, "period_label": period.label_zh,
        "table": period.table, "title": f"危险废物{KIND_ZH[period.kind]}申报报告",
        "deadline": period.deadline(), "months": months,
        "ledgers": [{"month": r["month"], "ledger_id": r["id"], "version": r["version"]} for r in e.ledgers],
        "missing_months": missing, "complete": not missing,
        "tier": tier["tier"] if tier else None, "tier_zh": tier["tier_zh"] if tier else None,
        "rows": rows, "identity": identity, "totals": _totals(rows), "trace": src.trace,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
