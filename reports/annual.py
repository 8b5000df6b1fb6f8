"""The annual 无废城市 report: one dict that the JSON, Excel and HTML views all render.

No indicator arithmetic lives here: figures come from ``reports.indicators`` and ``reports.flows``
(the one flow model; indicators.md); this module only gathers, orders and labels them, and adds what
a report needs besides: trends over the years present, per-district comparison, and data
completeness (which registered units did not report which months). Anomalies come from ``ledgers``
and are passed in by the api layer (``reports`` may not import ``ledgers``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from nofei.access import Actor
from nofei.catalogue import CITY, STREAM_NAMES_ZH, STREAMS, Catalogue
from nofei.domain.completeness import months_owed
from nofei.domain.regions import in_region
from nofei.errors import InputRejected, PermissionDenied
from nofei.flows.indicators import BY_KEY, INDICATOR_KEYS
from nofei.problems import Problem
from nofei.storage import reportdata
from nofei.storage.uow import UnitOfWork
from reports import flows, indicators
from reports.publication import FIGURES, publication

SCOPE_ZH = {"national_star": "国家必选指标 ★", "national": "国家指标（可选）", "local": "本地/项目指标"}


def scope_zh(key: str) -> str:
    """Which indicators are national ★ and which are local (indicators.md §3, official-check.md §1)."""
    d = BY_KEY.get(key)
    if d is None:
        return ""
    return SCOPE_ZH["national_star"] if d.national else SCOPE_ZH[d.scope]


# The figures of a region's total per stream: what arose and where it went (indicators.md §2).
FATES = FIGURES
FATE_NAMES_ZH = {"generated": "产生量", "utilised": "利用量", "disposed": "处置量", "stored": "贮存量",
                 "unresolved": "去向不明"}
FATE_ROW_KEYS = ("stream", "unit", "unit_name", "district", "code", "attributed_t", "utilised_t", "disposed_t",
                 "stored_t", "unresolved_t")  # the fate table's columns the report shows
_ORDER = {k: i for i, k in enumerate(INDICATOR_KEYS)}


# --- the figures, from reports.indicators and reports.flows ------------------------------------
def indicators_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str) -> list[dict[str, Any]]:
    """The indicators of (year, region), in indicators.md order, each with its national/local scope."""
    res = indicators.compute_indicators(uow=uow, actor=actor, year=year, region=region)
    return [{**it, "scope_zh": scope_zh(it["key"])}
            for it in sorted(res["indicators"], key=lambda d: _ORDER.get(d["key"], 99))]


def _fates(totals: dict[str, Any]) -> dict[str, float]:
    return {f: totals[f"{f}_t"] for f in FATES}


def stream_totals_for(*, uow: UnitOfWork, actor: Actor, year: int,
                      region: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Fate-attributed tonnes (indicators.md §2) per stream for the region, and per district and stream
    inside it: generated, utilised, disposed, stored, unresolved."""
    res = indicators.stream_totals(uow=uow, actor=actor, year=year, region=region)
    streams = {s: _fates(v) for s, v in res["streams"].items()}
    districts = {d: {s: _fates(v) for s, v in per.items()} for d, per in res["districts"].items()}
    return streams, districts


def fate_rows_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str) -> list[dict[str, Any]]:
    """Per producer (and code) and stream: attributed tonnes and their fates U/D/S/X."""
    return [{k: r[k] for k in FATE_ROW_KEYS} for stream in STREAMS
            for r in indicators.fate_table(uow=uow, actor=actor, year=year, stream=stream, region=region)["producers"]]


def sankey_for(*, uow: UnitOfWork, actor: Actor, year: int, region: str, stream: str) -> dict[str, Any]:
    """Sankey-ready aggregation of one stream (nodes by district and role, fates, an 'elsewhere' node)."""
    res = flows.sankey(uow=uow, actor=actor, year=year, stream=stream, region=region)
    return {"nodes": [{"id": n["id"], "label": n["label"], "kind": n["kind"]} for n in res["nodes"]],
            "links": [{"source": x["source"], "target": x["target"], "value": x["value"]} for x in res["links"]]}


# --- what this module computes itself: regions, years, completeness ------------------------
def check_region(uow: UnitOfWork, actor: Actor, region: str) -> str:
    """Validate the region and the caller's right to see it; returns the region's district."""
    cat = uow.catalogue
    if not cat.is_region(region):
        raise InputRejected("未知的区域代码 (unknown region)", problems=[
            Problem(code="unknown_region", message=f"未知的区域代码 {region}", message_en=f"unknown region {region}",
                    field="region", value=region)])
    district = indicators.region_district(cat, region)
    if not actor.can_view_region(region, district):
        raise PermissionDenied("无权查看该区域的报告 (region not visible to this caller)")
    return district


def years_present(uow: UnitOfWork) -> list[int]:
    """The years with at least one current ledger (the trend axis)."""
    return reportdata.years_with_ledgers(uow.session)


def completeness(*, uow: UnitOfWork, actor: Actor, year: int, region: str,
                 today: date | None = None) -> list[dict[str, Any]]:
    """Per registered unit of the region: the months of ``year`` owed, reported and missing.

    A unit owes each month from its ``reports_from`` whose deadline (the 15th of the next month) has passed
    by ``today`` (``nofei.domain.completeness``); only units the caller may see are listed."""
    today = today or date.today()
    reported = reportdata.reported_months(uow.session, year)
    out = []
    for u in reportdata.reporting_units(uow.session):
        if not in_region(region, u.district, u.park) or not actor.can_view_unit(u.credit_code, u.district):
            continue
        expected = months_owed(year, u.reports_from, today)
        got = sorted(reported.get(u.id, set()))
        missing = [m for m in expected if m not in got]
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
    return [indicators.region_district(cat, region)]


def build_annual_report(*, uow: UnitOfWork, actor: Actor, year: int, region: str = CITY,
                        anomalies: list[dict[str, Any]] | None = None, today: date | None = None,
                        with_trends: bool = True) -> dict[str, Any]:
    """Everything the annual report shows for (year, region), ready for the three renderers.

    Reads only (no audit entry: nothing is written). 403 when the caller may not see the region."""
    with uow:
        return _build(uow=uow, actor=actor, year=year, region=region, anomalies=anomalies, today=today,
                      with_trends=with_trends)


def _trends(*, uow: UnitOfWork, actor: Actor, years: list[int], year: int, region: str,
            indicators_now: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per indicator, its value in each year present (the report's own year is not computed twice)."""
    trends: dict[str, list[dict[str, Any]]] = {i["key"]: [] for i in indicators_now}
    for y in years:
        vals = indicators_now if y == year else indicators_for(uow=uow, actor=actor, year=y, region=region)
        for it in vals:
            trends.setdefault(it["key"], []).append({"year": y, "value": it["value"]})
    return trends


def _tonnage(cat: Catalogue, region: str, districts: list[str], region_totals: dict[str, dict[str, float]],
             district_totals: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """Per stream: the region's total, then each district that has something of the stream."""
    def line(st: str, district: str, level: str, name: str, t: dict[str, float]) -> dict[str, Any]:
        return {"stream": st, "stream_name": STREAM_NAMES_ZH[st], "district": district, "level": level,
                "district_name": name, **{f"{f}_t": t[f] for f in FATES}}

    tonnage = []
    for st in STREAMS:
        if st in region_totals:
            tonnage.append(line(st, region, "region", f"合计（{cat.region_name(region)}）", region_totals[st]))
        for d in districts:
            t = district_totals.get(d, {}).get(st)
            if t is not None and any(t.values()):  # a district with nothing of this stream adds only noise
                tonnage.append(line(st, d, "district", cat.region_name(d), t))
    return tonnage


def _district_comparison(*, uow: UnitOfWork, actor: Actor, year: int, region: str,
                         districts: list[str]) -> list[dict[str, Any]]:
    """For the city's report: each district's indicator values that the caller may see."""
    if region != CITY:
        return []
    out = []
    for d in districts:
        if actor.can_view_region(d, d):
            vals = indicators_for(uow=uow, actor=actor, year=year, region=d)
            out.append({"district": d, "district_name": uow.catalogue.region_name(d),
                        "values": {i["key"]: i["value"] for i in vals}})
    return out


def _summary(inds: list[dict[str, Any]], comp: list[dict[str, Any]], anomalies: list[dict[str, Any]]) -> dict[str, int]:
    """The report's headline counts: targets met, units and months owed and missing, anomalies."""
    return {"indicators_meeting_target": sum(1 for i in inds if i.get("meets_target") is True),
            "indicators_with_target": sum(1 for i in inds if i.get("target") is not None and i.get("value") is not None),
            "units_registered": len(comp),
            "units_owing": sum(1 for c in comp if c["expected"]),
            "units_complete": sum(1 for c in comp if c["expected"] and not c["missing_months"]),
            "months_expected": sum(c["expected"] for c in comp),
            "months_missing": sum(len(c["missing_months"]) for c in comp),
            "anomalies": len(anomalies)}


def _build(*, uow: UnitOfWork, actor: Actor, year: int, region: str, anomalies: list[dict[str, Any]] | None,
           today: date | None, with_trends: bool) -> dict[str, Any]:
    check_region(uow, actor, region)
    cat = uow.catalogue
    years = sorted(set(years_present(uow)) | {year})
    comp = completeness(uow=uow, actor=actor, year=year, region=region, today=today)
    districts = districts_of(uow, region)
    inds = indicators_for(uow=uow, actor=actor, year=year, region=region)
    trends = (_trends(uow=uow, actor=actor, years=years, year=year, region=region, indicators_now=inds)
              if with_trends else {i["key"]: [] for i in inds})
    region_totals, district_totals = stream_totals_for(uow=uow, actor=actor, year=year, region=region)
    tonnage = _tonnage(cat, region, districts, region_totals, district_totals)
    district_cmp = _district_comparison(uow=uow, actor=actor, year=year, region=region, districts=districts)
    fate = fate_rows_for(uow=uow, actor=actor, year=year, region=region)
    sankeys = {s: sankey_for(uow=uow, actor=actor, year=year, region=region, stream=s) for s in STREAMS}
    anomalies_out = [dict(a) for a in (anomalies or [])]
    return {
        "year": year,
        "region": region,
        "region_name": cat.region_name(region),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": "ok",  # kept in the JSON (a contract); the figures are always computed now
        "summary": _summary(inds, comp, anomalies_out),
        "indicators": inds,
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
