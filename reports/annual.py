"""The annual 无废城市 report: one dict that the JSON, Excel and HTML views all render.

No indicator arithmetic lives here: figures come from ``reports.indicators`` (indicators.md, built
by the flows feature) through the small adapter below; this module only gathers, orders and labels
them, and adds what a report needs besides: trends over the years present, per-district comparison,
and data completeness (which registered units did not report which months). Anomalies come from
``ledgers`` and are passed in by the api layer (``reports`` may not import ``ledgers``).
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from nofei.access import Actor
from nofei.catalogue import CITY, STREAM_NAMES_ZH, STREAMS
from nofei.domain.completeness import months_owed
from nofei.domain.regions import in_region
from nofei.errors import InputRejected, PermissionDenied
from nofei.flows.indicators import BY_KEY, INDICATORS
from nofei.problems import Problem
from nofei.storage.tables import LedgerRow, UnitRow
from nofei.storage.uow import UnitOfWork
from reports.publication import publication

log = logging.getLogger("nofei.reports")

# Names of the indicators (indicators.md §3), used only to label them when the indicator
# module is not available; values then stay null with a note, never invented here.
INDICATOR_NAMES: dict[str, tuple[str, str]] = {d.key: (d.name, d.unit) for d in INDICATORS}
SCOPE_ZH = {"national_star": "国家必选指标 ★", "national": "国家指标（可选）", "local": "本地/项目指标"}


def scope_zh(key: str) -> str:
    """Which indicators are national ★ and which are local (indicators.md §3, official-check.md §1)."""
    d = BY_KEY.get(key)
    if d is None:
        return ""
    return SCOPE_ZH["national_star"] if d.national else SCOPE_ZH[d.scope]


FATES = ("generated", "utilised", "disposed", "stored", "unresolved")
FATE_NAMES_ZH = {"generated": "产生量", "utilised": "利用量", "disposed": "处置量", "stored": "贮存量",
                 "unresolved": "去向不明"}
UNAVAILABLE_NOTE = "指标计算模块不可用 (indicator engine unavailable)"


# --- adapter to the flows feature (reports.indicators) ------------------------------------
def _engine() -> ModuleType | None:
    """``reports.indicators`` when it is installed; the report degrades to labelled nulls otherwise."""
    try:
        return importlib.import_module("reports.indicators")
    except ModuleNotFoundError as e:
        if e.name != "reports.indicators":
            raise
        return None


def _f(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def indicators_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str) -> list[dict[str, Any]]:
    """The indicators of (year, region) from the flows feature, in indicators.md order."""
    eng = _engine()
    if eng is None or not hasattr(eng, "compute_indicators"):
        return [{"key": k, "name": n, "value": None, "unit": u, "numerator": None, "denominator": None,
                 "target": None, "meets_target": None, "units_count": 0, "ledgers_count": 0,
                 "note": UNAVAILABLE_NOTE, "scope_zh": scope_zh(k)} for k, (n, u) in INDICATOR_NAMES.items()]
    res = eng.compute_indicators(uow=uow, actor=actor, year=year, region=region)
    items = list(res["indicators"] if isinstance(res, dict) else res)
    order = {k: i for i, k in enumerate(INDICATOR_NAMES)}
    out = []
    for it in sorted(items, key=lambda d: order.get(d.get("key"), 99)):
        d = dict(it)
        for k in ("value", "numerator", "denominator", "target"):
            d[k] = _f(d.get(k))
        d.setdefault("name", INDICATOR_NAMES.get(d["key"], (d["key"], ""))[0])
        d["scope_zh"] = scope_zh(d["key"])
        out.append(d)
    return out


def stream_totals_for(*, uow: UnitOfWork, actor: Actor, year: int,
                      region: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Fate-attributed tonnes (indicators.md §2) per stream for the region, and per district and stream
    inside it: generated, utilised, disposed, stored, unresolved."""
    eng = _engine()
    if eng is None or not hasattr(eng, "stream_totals"):
        return {}, {}
    res = eng.stream_totals(uow=uow, actor=actor, year=year, region=region)
    streams = {str(s): {f: _f(_pick(v, f)) or 0.0 for f in FATES} for s, v in (res.get("streams") or {}).items()}
    districts = {str(d): {str(s): {f: _f(_pick(v, f)) or 0.0 for f in FATES} for s, v in per.items()}
                 for d, per in (res.get("districts") or {}).items()}
    return streams, districts


_ALIASES = {
    "generated": ("generated_t", "generated", "G", "G_t"),
    "utilised": ("utilised_t", "utilised", "U", "U_t"),
    "disposed": ("disposed_t", "disposed", "D", "D_t"),
    "stored": ("stored_t", "stored", "S", "S_t"),
    "unresolved": ("unresolved_t", "unresolved", "X", "X_t"),
}


def _pick(d: Any, name: str) -> Any:
    for k in _ALIASES.get(name, (name,)):
        if isinstance(d, dict) and k in d:
            return d[k]
    return None


def fate_rows_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str) -> list[dict[str, Any]]:
    """Per producer (and code) and stream: attributed tonnes and their fates U/D/S/X."""
    eng = _engine()
    if eng is None or not hasattr(eng, "fate_table"):
        return []
    out: list[dict[str, Any]] = []
    for stream in STREAMS:
        res = eng.fate_table(uow=uow, actor=actor, year=year, stream=stream, region=region)
        rows = (res.get("producers") or res.get("rows") or res.get("items") or []) if isinstance(res, dict) else res
        for r in rows:
            out.append({
                "stream": r.get("stream", stream),
                "unit": r.get("unit") or r.get("credit_code") or r.get("producer"),
                "unit_name": r.get("unit_name") or r.get("name") or "",
                "district": r.get("district") or "",
                "code": r.get("code") or r.get("waste_code") or "",
                "attributed_t": _f(r.get("attributed_t") or r.get("A_t") or r.get("attributed")) or 0.0,
                "utilised_t": _f(_pick(r, "utilised")) or 0.0,
                "disposed_t": _f(_pick(r, "disposed")) or 0.0,
                "stored_t": _f(_pick(r, "stored")) or 0.0,
                "unresolved_t": _f(_pick(r, "unresolved")) or 0.0,
            })
    return out


def sankey_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str, stream: str) -> dict[str, Any]:
    """Sankey-ready aggregation of one stream (nodes by district and role, fates, an 'elsewhere' node)."""
    eng = _engine()
    fn = None
    for mod in (eng, _optional("reports.flows")):
        for name in ("sankey", "sankey_flows", "flows_sankey"):
            if mod is not None and hasattr(mod, name):
                fn = getattr(mod, name)
                break
        if fn:
            break
    if fn is None:
        return {"nodes": [], "links": []}
    res = fn(uow=uow, actor=actor, year=year, stream=stream, region=region)
    if isinstance(res, dict) and "sankey" in res:
        res = res["sankey"]
    nodes = [{"id": str(n.get("id")), "label": n.get("label") or n.get("name") or str(n.get("id")),
              "kind": n.get("kind") or n.get("fate") or ""} for n in res.get("nodes", [])]
    links = [{"source": str(x.get("source")), "target": str(x.get("target")),
              "value": _f(x.get("value_t", x.get("value", x.get("tonnes", x.get("weight"))))) or 0.0}
             for x in res.get("links", [])]
    return {"nodes": nodes, "links": links}


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        return None


# --- what this module computes itself: regions, years, completeness ------------------------
def check_region(uow: UnitOfWork, actor: Actor, region: str) -> str | None:
    """Validate the region and the caller's right to see it; returns the region's district."""
    cat = uow.catalogue
    if not cat.is_region(region):
        raise InputRejected("未知的区域代码 (unknown region)", problems=[
            Problem(code="unknown_region", message=f"未知的区域代码 {region}", message_en=f"unknown region {region}",
                    field="region", value=region)])
    region_district = cat.parks[region].district if region in cat.parks else region
    if not actor.can_view_region(region, region_district):
        raise PermissionDenied("无权查看该区域的报告 (region not visible to this caller)")
    return region_district




def years_present(uow: UnitOfWork) -> list[int]:
    """The years with at least one current ledger (the trend axis)."""
    rows = uow.session.execute(select(col(LedgerRow.year)).where(col(LedgerRow.is_current) == True).distinct())  # noqa: E712
    return sorted(int(r[0]) for r in rows)


def completeness(*, uow: UnitOfWork, actor: Actor, year: int, region: str,
                 today: date | None = None) -> list[dict[str, Any]]:
    """Per registered unit of the region: the months of ``year`` owed, reported and missing.

    A unit owes each month from its ``reports_from`` whose deadline (the 15th of the next month) has passed
    by ``today`` (``nofei.domain.completeness``); only units the caller may see are listed."""
    today = today or date.today()
    units = uow.session.execute(select(UnitRow)).scalars().all()
    reported: dict[int, set[str]] = defaultdict(set)
    q = select(col(LedgerRow.unit_id), col(LedgerRow.month)).where(col(LedgerRow.year) == year, col(LedgerRow.is_current) == True)  # noqa: E712
    for uid, month in uow.session.execute(q):
        reported[uid].add(month)
    out = []
    for u in sorted(units, key=lambda r: (r.district, r.credit_code)):
        if not in_region(region, u.district, u.park) or not actor.can_view_unit(u.credit_code, u.district):
            continue
        expected = months_owed(year, u.reports_from, today)
        got = sorted(reported.get(u.id or 0, set()))
        missing = [m for m in expected if m not in reported.get(u.id or 0, set())]
        out.append({"unit": u.credit_code, "unit_name": u.name, "district": u.district,
                    "district_name": uow.catalogue.region_name(u.district), "reports_from": u.reports_from,
                    "reported_months": got, "missing_months": missing,
                    "expected": len(expected), "reported": len([m for m in expected if m in got])})
    return out


def districts_of(uow: UnitOfWork, region: str) -> list[str]:
    """The districts to compare: all of the city's, or just the region itself."""
    cat = uow.catalogue
    if region == CITY:
        return [c for c, d in cat.districts.items() if c != CITY]
    return [cat.parks[region].district if region in cat.parks else region]


def build_annual_report(*, uow: UnitOfWork, actor: Actor, year: int, region: str = CITY,
                        anomalies: list[dict[str, Any]] | None = None, today: date | None = None,
                        with_trends: bool = True) -> dict[str, Any]:
    """Everything the annual report shows for (year, region), ready for the three renderers.

    Reads only (no audit entry: nothing is written). 403 when the caller may not see the region."""
    with uow:
        return _build(uow=uow, actor=actor, year=year, region=region, anomalies=anomalies, today=today,
                      with_trends=with_trends)


def _build(*, uow: UnitOfWork, actor: Actor, year: int, region: str, anomalies: list[dict[str, Any]] | None,
           today: date | None, with_trends: bool) -> dict[str, Any]:
    check_region(uow, actor, region)
    cat = uow.catalogue
    years = sorted(set(years_present(uow)) | {year})
    comp = completeness(uow=uow, actor=actor, year=year, region=region, today=today)
    districts = districts_of(uow, region)
    indicators = indicators_for(uow=uow, actor=actor, year=year, region=region)
    trends: dict[str, list[dict[str, Any]]] = {i["key"]: [] for i in indicators}
    if with_trends:
        for y in years:
            vals = indicators if y == year else indicators_for(uow=uow, actor=actor, year=y, region=region)
            for it in vals:
                trends.setdefault(it["key"], []).append({"year": y, "value": it["value"]})
    region_totals, district_totals = stream_totals_for(uow=uow, actor=actor, year=year, region=region)
    tonnage = []
    for st in STREAMS:
        if st in region_totals:
            tonnage.append({"stream": st, "stream_name": STREAM_NAMES_ZH[st], "district": region, "level": "region",
                            "district_name": f"合计（{cat.region_name(region)}）",
                            **{f"{f}_t": region_totals[st][f] for f in FATES}})
        for d in districts:
            t = district_totals.get(d, {}).get(st)
            if t is None or not any(t.values()):
                continue  # a district with nothing of this stream adds only noise
            tonnage.append({"stream": st, "stream_name": STREAM_NAMES_ZH[st], "district": d, "level": "district",
                            "district_name": cat.region_name(d), **{f"{f}_t": t[f] for f in FATES}})
    district_cmp = []
    if region == CITY:
        for d in districts:
            if actor.can_view_region(d, d):
                vals = indicators_for(uow=uow, actor=actor, year=year, region=d)
                district_cmp.append({"district": d, "district_name": cat.region_name(d),
                                     "values": {i["key"]: i["value"] for i in vals}})
    fate = fate_rows_for(uow=uow, actor=actor, year=year, region=region)
    sankeys = {s: sankey_for(uow=uow, actor=actor, year=year, region=region, stream=s) for s in STREAMS}
    anomalies_out = [dict(a) for a in (anomalies or [])]
    met = [i for i in indicators if i.get("meets_target") is True]
    with_target = [i for i in indicators if i.get("target") is not None and i.get("value") is not None]
    return {
        "year": year,
        "region": region,
        "region_name": cat.region_name(region),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": "ok" if _engine() is not None else "unavailable",
        "summary": {"indicators_meeting_target": len(met), "indicators_with_target": len(with_target),
                    "units_registered": len(comp),
                    "units_owing": sum(1 for c in comp if c["expected"]),
                    "units_complete": sum(1 for c in comp if c["expected"] and not c["missing_months"]),
                    "months_expected": sum(c["expected"] for c in comp),
                    "months_missing": sum(len(c["missing_months"]) for c in comp),
                    "anomalies": len(anomalies_out)},
        "indicators": indicators,
        "years": years,
        "trends": trends,
        "tonnage": tonnage,
        "districts": district_cmp,
        "fate": fate,
        "sankey": sankeys,
        "anomalies": anomalies_out,
        "completeness": comp,
        "publication": publication(tonnage, year=year, region=region, region_name=cat.region_name(region)),
    }
