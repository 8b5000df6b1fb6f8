"""Use cases of the indicator figures: the indicators, their lineage, fate tables, stream totals
and unit balances (issue 4; formulas in ``nofei.flows.indicators`` after indicators.md).

All are reads: one unit of work, no writes, no audit entries. They also run inside a unit of work
the caller already opened (the annual report calls them that way). Access (nofei.access):
admins and regulators see the regions of their district (630100 = all); enterprises see the
city-wide published indicators and the fates and balances of their own units; anything else is
403 (regions) or 404 (a unit the caller may not see, so ids cannot be probed).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from nofei.access import Actor
from nofei.catalogue import CITY, STREAMS, Catalogue
from nofei.errors import InputRejected, NotFound, PermissionDenied
from nofei.flows.fate import FateResult
from nofei.flows.indicators import (
    BY_KEY,
    FILM_CODES,
    NEEDED_STREAMS,
    compute,
    covered_institutions,
    key_view,
    stream_view,
)
from nofei.flows.model import StreamYearData
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import flowdata
from nofei.storage.cache import StampedCache
from nofei.storage.repo import unit_row
from nofei.storage.uow import UnitOfWork


def _bad(field: str, code: str, zh: str, en: str, value: Any) -> InputRejected:
    return InputRejected(f"{zh} ({en})", problems=[Problem(code=code, message=zh, message_en=en, field=field,
                                                            value=value)])


def region_district(cat: Catalogue, region: str) -> str:
    """The district a region lies in: a park's district, or the region itself (a district, or the city)."""
    return cat.parks[region].district if region in cat.parks else region


def check_region(uow: UnitOfWork, actor: Actor, region: str) -> str:
    """422 for an unknown region, 403 when the caller may not see it; returns the region's district."""
    cat = uow.catalogue
    if not cat.is_region(region):
        raise _bad("region", "unknown_region", f"未知的区域代码 {region}", f"unknown region {region}", region)
    district = region_district(cat, region)
    if not actor.can_view_region(region, district):
        raise PermissionDenied("无权查看该区域的数据 (this region is not visible to the caller)")
    return district


def check_stream(stream: str) -> str:
    if stream not in STREAMS:
        raise _bad("stream", "unknown_stream", f"未知的废物类别 {stream}", f"unknown stream {stream}", stream)
    return stream


def check_year(year: int) -> int:
    if not 1990 <= year <= 2100:
        raise _bad("year", "bad_year", "年份超出范围", "year out of range", year)
    return year


def _streams(uow: UnitOfWork, year: int) -> dict[str, tuple[StreamYearData, FateResult]]:
    out = {}
    for s in NEEDED_STREAMS:
        m = flowdata.stream_year(uow.session, s, year, catalogue=uow.catalogue)
        out[s] = (m.data, m.fate)  # the indicators need no graph: it is composed only when read
    return out


# The computed figures per (year, region, the other inputs), on the one process cache kind
# (``nofei.storage.cache``). The flow model's objects are replaced, never changed, when a write reaches them
# (``flowdata.year_flows``, stamped by ``flow_change``), so their identities are the as-of stamp of the
# figures; the entry holds the objects themselves, so an id cannot be reused while it is kept. One entry per
# key: a recomputation replaces it, so no superseded model is kept alive here. After a write only the streams
# it touched are recomputed (their per-region views are memoised on the fates, ``stream_view``).
_FIGURES: StampedCache[tuple[tuple[Any, ...], list[Any], Any]] = StampedCache("indicator figures", 256)
_RECENT: deque[tuple[Any, ...]] = deque(maxlen=8)  # the keys read last: recomputed after a write-through
_RECENT_LOCK = threading.Lock()


def _stamp(held: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(id(x) for x in held)


def _figures(uow: UnitOfWork, year: int, region: str) -> tuple[list[Any], dict[str, Any]]:
    streams = _streams(uow, year)
    cat = uow.catalogue
    va = flowdata.value_added(uow.session, year, region)
    med = flowdata.medical_institutions(uow.session, year, region)
    holders = frozenset(flowdata.hw01_permit_holders(uow.session, year))
    held = tuple(x for s in NEEDED_STREAMS for x in streams[s])
    key = (year, region, va, med, holders, cat.targets)
    with _RECENT_LOCK:
        if key in _RECENT:
            _RECENT.remove(key)
        _RECENT.append(key)
    hit = _FIGURES.get(key, _stamp(held))
    if hit is not None:
        return hit[1], streams
    figs = compute(streams, region=region, year=year, catalogue=cat, value_added=va, medical_institutions=med,
                   hw01_holders=holders)
    _FIGURES.put(key, _stamp(held), (held, figs, cat))
    return figs, streams


def _held(value: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(x for s in NEEDED_STREAMS for x in (value[s].data, value[s].fate))


def _rewarm(year: int, old: dict[str, Any], new: dict[str, Any]) -> None:
    """``flowdata.AFTER_REFRESH`` hook: the figures last read for the old model, recomputed for the new one (only
    the touched streams' views are new work), so the reads after a write find them."""
    if any(s not in old or s not in new for s in NEEDED_STREAMS):
        return
    before, after = _stamp(_held(old)), _held(new)
    if before == _stamp(after):
        return
    with _RECENT_LOCK:
        keys = [k for k in _RECENT if k[0] == year]
    streams = {s: (new[s].data, new[s].fate) for s in NEEDED_STREAMS}
    for k in keys:
        e = _FIGURES.entry(k)
        if e is None or e.stamp != before:
            continue
        _y, region, va, med, holders, _targets = k
        figs = compute(streams, region=region, year=year, catalogue=e.value[2], value_added=va,
                       medical_institutions=med, hw01_holders=holders)
        _FIGURES.put(k, _stamp(after), (after, figs, e.value[2]))


flowdata.AFTER_REFRESH.append(_rewarm)


def clear_figures() -> None:
    """Forget the computed figures (tests, benchmarks)."""
    _FIGURES.clear()


# --- GET /indicators ---------------------------------------------------------------------
def compute_indicators(*, uow: UnitOfWork, actor: Actor, year: int, region: str = CITY) -> dict[str, Any]:
    """The indicators of indicators.md §3 for a year and region:
    ``{year, region, indicators: [{key, name, value, unit, numerator, denominator, target,
    meets_target, units_count, ledgers_count, note}]}``."""
    check_year(year)
    with uow:
        check_region(uow, actor, region)
        figs, _ = _figures(uow, year, region)
        return {"year": year, "region": region, "indicators": [f.as_dict() for f in figs]}


# --- GET /indicators/{key}/lineage --------------------------------------------------------
def _contrib(key: str, data: StreamYearData, fate: FateResult, i: int) -> tuple[int, int | None]:
    """Numerator and denominator (kg) of one producer node, per the formula of ``key``."""
    nd = data.nodes[fate.keys[i]]
    a, g, dr = nd.attributable, nd.generated, nd.drawn
    f = fate.node_fates_kg(i)
    p = fate.node_fates_kg(i, dr)
    if key in ("general_industrial_utilisation_rate", "hazardous_utilisation_rate"):
        return f["U"], g + p["U"]
    if key == "hazardous_utilisation_disposal_rate":
        return f["U"] + f["D"], g + p["U"] + p["D"]
    if key == "general_industrial_storage_disposal":
        return f["S"] + f["D"], None
    if key in ("general_industrial_intensity", "industrial_solid_waste_intensity"):
        return g, None
    if key == "medical_central_disposal_rate":
        return fate.central_kg(i, a), a
    if key in FILM_CODES:
        return nd.transferred + nd.own_u + nd.own_d, g
    if key == "kitchen_waste_utilisation_rate":
        return f["U"], g
    raise KeyError(key)


BY_ROWS = ("manifest_execution_rate", "medical_collection_coverage_rate")  # counted in rows or units, not tonnes


class _Lineage:
    """The units behind one figure, each with its share of numerator and denominator and its ledgers."""

    def __init__(self) -> None:
        self.units: dict[str, dict[str, Any]] = {}

    def entry(self, data: StreamYearData, u: str) -> dict[str, Any]:
        if u not in self.units:
            info = data.unit(u)
            self.units[u] = {"credit_code": u, "name": info.name, "district": info.district, "park": info.park,
                             "roles": list(info.roles), "producer": False, "numerator": 0, "denominator": 0,
                             "handled": 0, "realised": {"U": 0, "D": 0, "S": 0, "X": 0}, "ledger_ids": set()}
        return self.units[u]

    def producer(self, data: StreamYearData, u: str, numerator: int, denominator: int) -> None:
        e = self.entry(data, u)
        e["producer"] = True
        e["numerator"] += numerator
        e["denominator"] += denominator
        e["ledger_ids"] |= data.ledgers.get(u, set())

    def ledger_ids(self) -> set[int]:
        return set().union(*(e["ledger_ids"] for e in self.units.values())) if self.units else set()

    def ordered(self) -> list[dict[str, Any]]:
        """Producers first, by numerator (largest first), then the units downstream; by credit code."""
        units = self.units
        return [units[u] for u in sorted(units, key=lambda c: (not units[c]["producer"], -units[c]["numerator"], c))]


def _manifest_lineage(lin: _Lineage, streams: dict[str, tuple[StreamYearData, FateResult]], region: str) -> None:
    """联单执行率: per producer of hazardous or medical waste, its 转出 rows with a well-formed number and all of them."""
    for s in ("hazardous", "medical"):
        data, fate = streams[s]
        view = stream_view(data, fate, region)
        for u, (rows, good) in data.manifest_rows.items():
            if rows and (region == CITY or u in view.region_units):
                lin.producer(data, u, good, rows)


def _coverage_lineage(lin: _Lineage, data: StreamYearData, region: str, holders: set[str]) -> None:
    """收集处置体系覆盖率: each covered medical institution counts one."""
    for u in sorted(covered_institutions(data, region, holders)):
        lin.producer(data, u, 1, 0)


def _lineage_row(e: dict[str, Any], *, by_rows: bool, percent: bool, visible: bool,
                 refs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One unit of the lineage as JSON: tonnes (or rows), what it handled downstream, its ledgers if visible."""
    def amount(v: int) -> int | float:
        return v if by_rows else kg_to_t_float(v)

    row = {k: e[k] for k in ("credit_code", "name", "district", "park", "roles", "producer")}
    row["numerator"] = amount(e["numerator"])
    # an amount (S + D) or a regional denominator (工业增加值) is not shared out per unit
    row["denominator"] = amount(e["denominator"]) if percent else None
    if not by_rows:
        row["handled_t"] = kg_to_t_float(round(e["handled"]))
        row["realised_t"] = {k: kg_to_t_float(round(v)) for k, v in e["realised"].items()}
    row["ledgers"] = [_ref(refs[i]) for i in sorted(e["ledger_ids"]) if i in refs] if visible else []
    row["ledgers_hidden"] = 0 if visible else len(e["ledger_ids"])
    return row


def indicator_lineage(*, uow: UnitOfWork, actor: Actor, key: str, year: int, region: str = CITY) -> dict[str, Any]:
    """From a figure to what made it (indicators.md §4): every unit and ledger version behind it,
    each unit's contribution to numerator and denominator (producers; tonnes, or rows for the
    manifest rate) and, for units downstream, the tonnes of the region's waste they handled and
    where it ended there. Admins and regulators only (enterprises: 403)."""
    if key not in BY_KEY:
        raise NotFound(f"未知的指标 {key} (unknown indicator)", code="unknown_indicator")
    check_year(year)
    if actor.role == "enterprise":
        raise PermissionDenied("企业用户无权查看指标溯源 (lineage is for regulators)")
    with uow:
        check_region(uow, actor, region)
        figs, streams = _figures(uow, year, region)
        fig = next(f for f in figs if f.key == key)
        d = BY_KEY[key]
        lin = _Lineage()
        if key == "manifest_execution_rate":
            _manifest_lineage(lin, streams, region)
        elif key == "medical_collection_coverage_rate":
            _coverage_lineage(lin, streams["medical"][0], region, flowdata.hw01_permit_holders(uow.session, year))
        else:
            for s in d.streams:
                _lineage_stream(key, s, streams, region, lin.entry,
                                flowdata.stream_year(uow.session, s, year, catalogue=uow.catalogue).graph)
        refs = flowdata.ledger_refs(uow.session, lin.ledger_ids())
        out_units = [_lineage_row(e, by_rows=key in BY_ROWS, percent=d.unit == "%",
                                  visible=actor.can_view_unit(e["credit_code"], e["district"]), refs=refs)
                     for e in lin.ordered()]
        res = fig.as_dict()
        res.update({"year": year, "region": region, "formula": d.formula, "streams": list(d.streams),
                    "units": out_units})
        return res


def _lineage_stream(key: str, stream: str, streams: dict[str, tuple[StreamYearData, FateResult]], region: str,
                    entry: Any, graph: Any) -> None:
    """The producers of one stream behind ``key`` (the same nodes as the figure: ``key_view``) and, for the
    fate-based figures, the units downstream that handled their waste."""
    data, fate = streams[stream]
    view = key_view(key, streams, region, stream)
    for i in view.idx.tolist():
        u = fate.keys[i][0]
        e = entry(data, u)
        e["producer"] = True
        num, den = _contrib(key, data, fate, i)
        e["numerator"] += num
        e["denominator"] += den or 0
        e["ledger_ids"] |= data.ledgers.get(u, set())
    if key in ("general_industrial_intensity", "industrial_solid_waste_intensity", *FILM_CODES):
        return
    a = np.zeros(len(fate.keys))
    a[view.idx] = fate.attributable[view.idx]
    x = fate.throughput(a)
    for j in np.nonzero(x > 0.5)[0].tolist():
        k = fate.keys[j]
        nd = graph.nodes[k]
        e = entry(data, k[0])
        e["handled"] += x[j]
        if nd["outflow"]:  # where the handled waste ended there: the node's own edges to the fates in the model
            share = x[j] / nd["outflow"]
            for f in ("U", "D", "S", "X"):
                if graph.has_edge(k, f):
                    e["realised"][f] += share * graph.edges[k, f]["kg"]
        e["ledger_ids"] |= data.ledgers.get(k[0], set())


def _ref(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "uploaded_at": r["uploaded_at"].isoformat() if r.get("uploaded_at") else None}


# --- fate table and stream totals -----------------------------------------------------------
def _t(kg: int) -> float:
    return kg_to_t_float(kg)


def fate_table(*, uow: UnitOfWork, actor: Actor, year: int, stream: str, region: str = CITY) -> dict[str, Any]:
    """Per producer and code: attributed tonnes (A = G + drawn) and where they ended (U/D/S/X),
    with region totals and the unresolved transfers (indicators.md §4 "Fate table").
    Enterprises get only their own units' rows (and the totals of those)."""
    check_year(year)
    check_stream(stream)
    with uow:
        check_region(uow, actor, region)
        data, graph, fate = flowdata.stream_year(uow.session, stream, year, catalogue=uow.catalogue)
        view = stream_view(data, fate, region)
        idx = view.idx
        if actor.role == "enterprise":
            idx = np.array([i for i in idx.tolist() if fate.keys[i][0] in actor.units], dtype=np.int64)
        rows = []
        for i in idx.tolist():
            u, code = fate.keys[i]
            nd = data.nodes[(u, code)]
            info = data.unit(u)
            f = fate.node_fates_kg(i)
            p = fate.node_fates_kg(i, nd.drawn)
            rows.append({"stream": stream, "unit": u, "unit_name": info.name, "district": info.district,
                         "park": info.park, "code": code, "generated_t": _t(nd.generated), "drawn_t": _t(nd.drawn),
                         "attributed_t": _t(nd.attributable), "utilised_t": _t(f["U"]), "disposed_t": _t(f["D"]),
                         "stored_t": _t(f["S"]), "unresolved_t": _t(f["X"]), "utilised_prior_t": _t(p["U"]),
                         "disposed_prior_t": _t(p["D"]),
                         "shares": fate.shares(i)})
        tot = fate.totals(idx)
        unresolved = []
        shown = {fate.keys[i] for i in idx.tolist()}
        for k in sorted(shown):
            if not graph.has_edge(k, "X"):
                continue
            for recv, kg in sorted(graph.edges[k, "X"].get("receivers", {}).items()):
                if kg > 0:
                    unresolved.append({"unit": k[0], "code": k[1], "receiver": recv,
                                       "receiver_registered": recv in data.units, "tonnes": _t(kg)})
        return {"year": year, "stream": stream, "region": region, "method": fate.method,
                "totals": _totals_dict(tot), "producers": rows, "unresolved_transfers": unresolved,
                "loops": [[{"unit": u, "code": c} for u, c in loop] for loop in fate.loops
                          if actor.role != "enterprise"]}


def _totals_dict(t: Any) -> dict[str, Any]:
    return {"generated_t": _t(t.generated), "drawn_t": _t(t.drawn), "attributed_t": _t(t.attributable),
            "utilised_t": _t(t.utilised), "disposed_t": _t(t.disposed), "stored_t": _t(t.stored),
            "unresolved_t": _t(t.unresolved), "utilised_prior_t": _t(t.utilised_prior),
            "disposed_prior_t": _t(t.disposed_prior), "trapped_t": _t(t.trapped), "producers": t.producers}


def stream_totals(*, uow: UnitOfWork, actor: Actor, year: int, region: str = CITY) -> dict[str, Any]:
    """Fate-attributed tonnes per stream for the region (``streams``) and per district inside it
    (``districts``): generated, utilised, disposed, stored, unresolved (indicators.md §2)."""
    check_year(year)
    with uow:
        check_region(uow, actor, region)
        streams = _streams(uow, year)
        cat = uow.catalogue
        districts = [d for d in cat.districts if d != CITY and (region == CITY or d == region_district(cat, region))]
        out: dict[str, Any] = {"year": year, "region": region, "streams": {}, "districts": {}}
        for s, (data, fate) in streams.items():
            out["streams"][s] = _totals_dict(stream_view(data, fate, region).totals)
        for dcode in districts:
            out["districts"][dcode] = {}
            for s, (data, fate) in streams.items():
                units = {cc for cc, u in data.units.items() if u.district == dcode
                         and (region not in cat.parks or u.park == region)}
                out["districts"][dcode][s] = _totals_dict(fate.totals(fate.producers(units)))
        return out


# --- GET /balance ---------------------------------------------------------------------------
def unit_balance(*, uow: UnitOfWork, actor: Actor, year: int, unit: str) -> dict[str, Any]:
    """Per code and month of one unit: open, generated, received, utilised, disposed, transferred,
    close and the residual ``open + generated + received − utilised − disposed − transferred − close``
    (0 for accepted ledgers), plus the year's open and close per code (indicators.md §4)."""
    check_year(year)
    with uow:
        try:
            row = unit_row(uow.session, unit)
        except NotFound:
            row = None
        if row is None or not actor.can_view_unit(row.credit_code, row.district):
            raise NotFound(f"单位 {unit} 不存在 (unit not found)", code="unknown_unit")
        months = flowdata.unit_month_rows(uow.session, int(row.id or 0), year, uow.catalogue)
        codes: dict[str, dict[str, Any]] = {}
        for m in months:
            c = codes.setdefault(m["code"], {"code": m["code"], "stream": m["stream"], "months": []})
            res = m["open"] + m["generated"] + m["received"] - m["utilised"] - m["disposed"] - m["transferred"] - m["close"]
            c["months"].append({"month": m["month"], "ledger_id": m["ledger_id"], "version": m["version"],
                                **{k: _t(m[k]) for k in ("open", "generated", "received", "utilised", "disposed",
                                                         "transferred", "close")},
                                "residual": _t(res)})
        for c in codes.values():
            ms = c["months"]
            c["year_open"] = ms[0]["open"] if ms else 0.0
            c["year_close"] = ms[-1]["close"] if ms else 0.0
            c["stored"] = round(max(0.0, c["year_close"] - c["year_open"]), 3)
            c["drawn"] = round(max(0.0, c["year_open"] - c["year_close"]), 3)
        return {"year": year, "unit": row.credit_code, "name": row.name, "district": row.district,
                "codes": list(codes.values())}

