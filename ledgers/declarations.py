"""HJ 1259 tiers and the declaration calendar: use cases on the ledgers (issue 14).

- ``unit_tier``: the tier of a unit for a year with its reason and figures, a regulator's override first;
- ``override_tier`` / ``clear_tier_override``: the city's EPB adjusts a tier (4.2.2), with a reason, audited;
- ``unit_calendar``: the declarations a unit owes for a year, their deadlines and whether they are late;
- ``declaration_status``: per district, every hazardous-waste unit's declarations (the regulator's grid).

The rules are in ``nofei.domain.declarations``, the SQL in ``nofei.storage.declarations``.
A 经营许可证 is read from the unit's HW permits in the registry, or from its registration as a licensed unit
(``unit_type = licensed``) when no permit row is entered.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from nofei.access import Actor
from nofei.catalogue import CITY, Catalogue
from nofei.domain.calendar import CST
from nofei.domain.declarations import (
    STATUS_ZH,
    TIER_ZH,
    TIERS,
    WINDOW_YEARS,
    TierDecision,
    decide_tier,
    declarations_due,
)
from nofei.domain.declarations import (
    declaration_status as status_of,
)
from nofei.domain.units import normalise_credit_code
from nofei.errors import InputRejected, NotFound, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import kg_to_tonnes
from nofei.storage import declarations as repo
from nofei.storage.repo import find_unit_row
from nofei.storage.tables import TierOverrideRow, UnitRow
from nofei.storage.uow import UnitOfWork


def today_cst() -> date:
    return datetime.now(UTC).astimezone(CST).date()


def _visible_unit(uow: UnitOfWork, actor: Actor, credit_code: str) -> UnitRow:
    """The unit if the caller may see it; 404 otherwise (ids cannot be probed)."""
    row = find_unit_row(uow.session, normalise_credit_code(credit_code))
    if row is None or not actor.can_view_unit(row.credit_code, row.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    return row


LICENSED_TYPE = "登记为持证经营单位"


def _check_year(year: int) -> None:
    if not 2000 <= year <= 2100:
        raise InputRejected("年份超出范围", problems=[Problem("bad_year", "年份超出范围", "year out of range",
                                                         field="year", value=year)])


def _decisions(uow: UnitOfWork, year: int, rows: list[UnitRow]) -> dict[int, TierDecision]:
    """Computed tiers of the hazardous-waste units among ``rows`` (units with HW ledgers or an HW licence)."""
    ids = [int(r.id or 0) for r in rows]
    figs = repo.year_figures(uow.session, range(year - WINDOW_YEARS, year + 1), ids)
    lic = repo.licences(uow.session, year, ids)
    for r in rows:  # registered as a 持证经营单位 (issue 18's unit_type) counts as licensed even without a permit row
        if getattr(r, "unit_type", None) == "licensed" and not lic.get(int(r.id or 0)):
            lic[int(r.id or 0)] = [LICENSED_TYPE]
    out = {}
    for uid in ids:
        if uid in figs or uid in lic:
            out[uid] = decide_tier(year, figs.get(uid, {}).values(), licences=lic.get(uid, ()))
    return out


def _figures(d: TierDecision) -> dict[str, Any]:
    return {
        "annual_t": str(kg_to_tonnes(d.annual_kg)),
        "basis": d.basis,
        "rule": d.rule,
        "years": [{"year": f.year, "generated_t": str(kg_to_tonnes(f.generated_kg)), "months": f.months,
                   "own_methods": list(f.own_methods)} for f in d.years],
        "own_methods": list(d.own_methods),
        "licences": list(d.licences),
        "thresholds_t": {"key": "100", "simplified": "10"},
    }


def _override_dict(o: TierOverrideRow) -> dict[str, Any]:
    return {"tier": o.tier, "tier_zh": TIER_ZH.get(o.tier or "", ""), "reason": o.reason, "by": o.actor,
            "at": o.created_at}


def tier_answer(row: UnitRow, year: int, d: TierDecision | None, o: TierOverrideRow | None) -> dict[str, Any] | None:
    """``{tier, tier_zh, reason, figures}``: the override when there is one, else the rule's answer."""
    if d is None and o is None:
        return None
    figures = _figures(d) if d is not None else {"annual_t": "0", "basis": "none", "rule": None, "years": [],
                                                 "own_methods": [], "licences": []}
    figures["computed"] = {"tier": d.tier, "tier_zh": d.tier_zh, "reason": d.reason} if d is not None else None
    figures["override"] = _override_dict(o) if o is not None else None
    if o is not None and o.tier:
        tier = o.tier
        base = f"（规则结果：{d.reason}）" if d is not None else ""
        reason = f"{TIER_ZH[tier]}：市级生态环境主管部门调整（HJ 1259—2022 4.2.2）：{o.reason}{base}"
    else:
        assert d is not None
        tier, reason = d.tier, d.reason
    return {"unit": row.credit_code, "unit_name": row.name, "district": row.district, "year": year,
            "tier": tier, "tier_zh": TIER_ZH[tier], "reason": reason, "figures": figures}


def tiers_of(uow: UnitOfWork, year: int, rows: list[UnitRow]) -> dict[int, dict[str, Any]]:
    """Tier answers of the hazardous-waste units among ``rows`` (no access check: callers filter first)."""
    ds = _decisions(uow, year, rows)
    ov = repo.current_overrides(uow.session, year, [int(r.id or 0) for r in rows])
    out = {}
    for r in rows:
        a = tier_answer(r, year, ds.get(int(r.id or 0)), ov.get(int(r.id or 0)))
        if a is not None:
            out[int(r.id or 0)] = a
    return out


def unit_tier(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int) -> dict[str, Any]:
    """The HJ 1259 tier of a unit for ``year`` (404 for a unit without hazardous waste or not visible)."""
    _check_year(year)
    with uow:
        row = _visible_unit(uow, actor, credit_code)
        got = tiers_of(uow, year, [row]).get(int(row.id or 0))
        if got is None:
            raise NotFound(f"单位 {row.credit_code} 在 {year - WINDOW_YEARS}–{year} 年没有危险废物台账，也无经营许可证，"
                           "不属于危险废物产生或经营单位 (no hazardous waste)", code="no_hazardous_waste")
        return got


def _may_override(actor: Actor, row: UnitRow) -> None:
    if actor.role not in ("regulator", "admin"):
        raise PermissionDenied("仅监管部门可调整管理类别 (regulators only)")


def override_tier(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int, tier: str,
                  reason: str) -> dict[str, Any]:
    """The city's EPB sets a unit's tier for a year (HJ 1259 4.2.2); the reason is required; audited."""
    _check_year(year)
    with uow:
        row = _visible_unit(uow, actor, credit_code)
        _may_override(actor, row)
        problems = []
        if tier not in TIERS:
            problems.append(Problem("unknown_tier", "管理类别应为 key、simplified 或 registration",
                                    "tier must be key, simplified or registration", field="tier", value=tier))
        if not (reason or "").strip():
            problems.append(Problem("missing_reason", "调整管理类别须说明理由", "a reason is required", field="reason"))
        if problems:
            raise InputRejected("管理类别调整有误 (invalid override)", problems=problems)
        before = tiers_of(uow, year, [row]).get(int(row.id or 0))
        repo.add_override(uow.session, unit_id=int(row.id or 0), year=year, tier=tier, reason=reason.strip(),
                          actor=actor.label)
        uow.audit(actor, "tier.override", f"unit:{row.credit_code}", district=row.district,
                  detail={"year": year, "tier": tier, "reason": reason.strip(),
                          "before": before["tier"] if before else None})
        out = tiers_of(uow, year, [row])[int(row.id or 0)]
        uow.commit()
        return out


def clear_tier_override(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int, reason: str = "") -> None:
    """Withdraw the override of (unit, year): the rule's tier applies again; audited."""
    _check_year(year)
    with uow:
        row = _visible_unit(uow, actor, credit_code)
        _may_override(actor, row)
        cur = repo.current_overrides(uow.session, year, [int(row.id or 0)]).get(int(row.id or 0))
        if cur is None:
            raise NotFound(f"{row.credit_code} 在 {year} 年没有管理类别调整 (no override)", code="no_override")
        repo.add_override(uow.session, unit_id=int(row.id or 0), year=year, tier=None,
                          reason=(reason or "撤销调整").strip(), actor=actor.label)
        uow.audit(actor, "tier.override_clear", f"unit:{row.credit_code}", district=row.district,
                  detail={"year": year, "was": cur.tier})
        uow.commit()


# --- the calendar ------------------------------------------------------------------------------
def _items(tier: str, year: int, uploads: dict[str, date], today: date) -> list[dict[str, Any]]:
    out = []
    for p in declarations_due(tier, year):  # type: ignore[arg-type]
        st = status_of(p, uploads, today)
        missing = [m for m in p.months() if m not in uploads]
        out.append({"period": p.key, "label": p.label_zh, "table": p.table, "kind": p.kind,
                    "deadline": p.deadline(), "status": st, "status_zh": STATUS_ZH[st],
                    "late": st in ("late", "late_ready"), "missing_months": missing})
    return out


def _calendar(uow: UnitOfWork, year: int, rows: list[UnitRow], today: date) -> list[dict[str, Any]]:
    tiers = tiers_of(uow, year, rows)
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    ups = repo.first_uploads(uow.session, list(tiers), months)
    out = []
    for r in rows:
        t = tiers.get(int(r.id or 0))
        if t is None:
            continue
        uploads = {m: d for (uid, m), d in ups.items() if uid == r.id}
        items = _items(t["tier"], year, uploads, today)
        upcoming = [i for i in items if i["status"] in ("not_due", "open")]
        out.append({"unit": r.credit_code, "unit_name": r.name, "district": r.district, "year": year,
                    "tier": t["tier"], "tier_zh": t["tier_zh"], "reason": t["reason"], "items": items,
                    "next": upcoming[:3], "late": [i for i in items if i["status"] == "late"],
                    "late_count": sum(1 for i in items if i["status"] == "late")})
    return out


def unit_calendar(*, uow: UnitOfWork, actor: Actor, credit_code: str, year: int,
                  today: date | None = None) -> dict[str, Any]:
    """The declarations ``credit_code`` owes for ``year`` with deadlines and status (``today``: China time)."""
    _check_year(year)
    with uow:
        row = _visible_unit(uow, actor, credit_code)
        cal = _calendar(uow, year, [row], today or today_cst())
        if not cal:
            unit_tier(uow=uow, actor=actor, credit_code=credit_code, year=year)  # raises no_hazardous_waste
        return {**cal[0], "today": today or today_cst()}


def _status_region(cat: Catalogue, actor: Actor, district: str | None) -> str | None:
    """The district or park the grid shows (None: the city): the one asked for, if known and visible to the
    actor (never to an enterprise), else a district regulator's own."""
    if district and district != CITY:
        if not cat.is_region(district):
            raise InputRejected("未知的区县代码", problems=[Problem("unknown_district", "未知的区县代码",
                                                              "unknown district", field="district", value=district)])
        parent = cat.parks[district].district if district in cat.parks else district
        if not actor.can_view_region(district, parent) or actor.role == "enterprise":
            raise PermissionDenied("无权查看该区县 (not your district)")
        return district
    return actor.district if actor.role == "regulator" and actor.district != CITY else None


def _by_district(cat: Catalogue, cal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The units' calendars grouped by district, with the late declarations and late units counted."""
    groups: dict[str, dict[str, Any]] = {}
    for c in cal:
        g = groups.setdefault(c["district"], {"district": c["district"], "district_name": cat.region_name(c["district"]),
                                              "units": [], "late_units": 0, "late": 0})
        g["units"].append(c)
        g["late"] += c["late_count"]
        g["late_units"] += 1 if c["late_count"] else 0
    return [groups[k] for k in sorted(groups)]


def declaration_status(*, uow: UnitOfWork, actor: Actor, year: int, district: str | None = None,
                       today: date | None = None) -> dict[str, Any]:
    """Every hazardous-waste unit the caller may see (of ``district``, when given) with its declarations,
    grouped by district, late ones counted: the regulator sees who is late without asking."""
    _check_year(year)
    with uow:
        cat = uow.catalogue
        d = _status_region(cat, actor, district)
        rows = repo.units(uow.session, district=d, codes=sorted(actor.units) if actor.role == "enterprise" else None)
        rows = [r for r in rows if actor.can_view_unit(r.credit_code, r.district)]
        groups = _by_district(cat, _calendar(uow, year, rows, today or today_cst()))
        return {"year": year, "today": today or today_cst(), "region": d or CITY,
                "region_name": cat.region_name(d or CITY), "districts": groups,
                "late_units": sum(g["late_units"] for g in groups),
                "units": sum(len(g["units"]) for g in groups)}


def tiers_by_code(*, uow: UnitOfWork, actor: Actor, year: int, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Tier answers of the visible hazardous-waste units among ``codes`` (the unit directory's column)."""
    _check_year(year)
    with uow:
        rows = [r for r in repo.units(uow.session, codes=codes) if actor.can_view_unit(r.credit_code, r.district)]
        return {a["unit"]: a for a in tiers_of(uow, year, rows).values()}
