"""Trace waste forward to its final fates and backward to its producers (issue 5 §5).

The graph of one (year, waste code): nodes are units, edges the year's manifests of that code (received
quantity once received, shipped quantity while in transit), and each node's own fates from its ledgers:
``U`` and ``D`` (利用处置 rows by method class), ``S`` (stock growth over the year) — indicators.md §1. What
leaves a node that has no ledger of the code, or that nothing accounts for, is ``X`` (unresolved).

Mass is followed with the flow model's well-mixed assumption (indicators.md §2): at a collector, a share of
what arrives goes each way in proportion to the node's outflows, ``P = weight / O``. Propagation stops when
the mass left is under half a kilogram, so loops terminate; a closed loop with no exit is cut after a fixed
number of passes and reported. The aggregated graph is cached per (database, year, code) and rebuilt when a
manifest event or a ledger version is added (two index look-ups), so a warm trace does no aggregation.

Every result passes ``trace_view.visible_trace``: the caller sees only what it may read (issue 17 item 8).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import col

from nofei.access import Actor
from nofei.domain.units import normalise_credit_code
from nofei.errors import InputRejected, NotFound
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage.repo import find_unit_row
from nofei.storage.tables import (
    LedgerRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    StockEntryRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

from .manifests import _current, _districts, _lines, readable
from .trace_view import visible_trace

EPS_KG = 0.5
MAX_VISITS = 20_000
# Hops listed per code and direction, largest mass first; the rest is summed in ``hops_omitted``. A backward
# trace through a collector reaches every producer that fed it (B3: ~2,000), which no one reads as a list
# and which made the answer slow; callers raise it with ``max_hops`` (API: ``?max_hops=``, up to MAX_HOPS_LIMIT).
MAX_HOPS = 200
MAX_HOPS_LIMIT = 100_000
FATES = ("U", "D", "S", "X")


@dataclass
class CodeGraph:
    """One (year, code): edges between units and each unit's own fates, in kg."""

    out: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: defaultdict(dict))  # a -> b -> [kg, n, no]
    into: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # b -> a -> kg
    fates: dict[str, dict[str, int]] = field(default_factory=dict)  # unit -> {U, D, S, G, drawn}

    def outflow(self, n: str) -> tuple[dict[str, float], dict[str, float]]:
        """Shares of what leaves ``n``: to units and to fates (X when the node accounts for nothing)."""
        edges = {b: v[0] for b, v in self.out.get(n, {}).items() if v[0] > 0}
        own = self.fates.get(n)
        fates = {k: own[k] for k in ("U", "D", "S") if own and own.get(k, 0) > 0}
        total = sum(edges.values()) + sum(fates.values())
        if total <= 0:
            return {}, {"X": 1.0}
        return {b: w / total for b, w in edges.items()}, {k: w / total for k, w in fates.items()}

    def inflow(self, n: str) -> tuple[dict[str, float], float]:
        """Shares of what reached ``n``: from each upstream unit, and generated (or drawn from old stock) at ``n``."""
        edges = {a: w for a, w in self.into.get(n, {}).items() if w > 0}
        own = self.fates.get(n) or {}
        here = own.get("G", 0) + own.get("drawn", 0)
        total = sum(edges.values()) + here
        if total <= 0:
            return {}, 1.0  # nothing known upstream: the unit itself is the origin
        return {a: w / total for a, w in edges.items()}, here / total


_CACHE: dict[tuple[str, int, str], tuple[tuple[Any, ...] | None, CodeGraph]] = {}
_CACHE_MAX = 64


def _stamp(uow: UnitOfWork) -> tuple[Any, ...]:
    s = uow.session
    return (s.execute(select(func.max(col(ManifestEventRow.id)))).scalar(), s.execute(select(func.max(col(LedgerRow.id)))).scalar())


def load_graph(uow: UnitOfWork, year: int, code: str, *, cache: bool = True) -> CodeGraph:
    """The aggregated graph of (year, code): one GROUP BY over the manifests, one over the ledgers."""
    key = (str(uow.session.get_bind().engine.url), year, code)
    stamp = _stamp(uow) if cache else None
    hit = _CACHE.get(key) if cache else None
    if hit is not None and hit[0] == stamp:
        return hit[1]
    g = CodeGraph()
    S = UnitRow  # noqa: N806
    moved = case((col(ManifestRow.status) == "in_transit", col(ManifestLineRow.quantity_kg)),
                 else_=func.coalesce(col(ManifestLineRow.received_kg), 0))
    stmt = (select(col(S.credit_code), col(ManifestRow.receiver_code), func.sum(moved), func.count(), func.min(col(ManifestRow.number)))
            .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id)).join(S, col(S.id) == col(ManifestRow.shipper_id))
            .where(col(ManifestRow.is_current).is_(True), col(ManifestRow.status) != "submitted",
                   col(ManifestLineRow.waste_code) == code, col(ManifestRow.planned_date) >= date(year, 1, 1),
                   col(ManifestRow.planned_date) <= date(year, 12, 31))
            .group_by(col(S.credit_code), col(ManifestRow.receiver_code)))
    for a, b, kg, n, first in uow.session.execute(stmt):
        g.out[a][b] = [int(kg or 0), int(n), first]
        g.into[b][a] = int(kg or 0)
    cur = (col(LedgerRow.is_current).is_(True), col(LedgerRow.year) == year)
    span: dict[str, tuple[str, str]] = {}  # unit -> (first, last) month with a stock row
    for cc, open_, close_, gen in uow.session.execute(
            select(col(UnitRow.credit_code), func.min(col(LedgerRow.month)), func.max(col(LedgerRow.month)),
                   func.sum(col(StockEntryRow.generated_kg)))
            .join(LedgerRow, col(LedgerRow.id) == col(StockEntryRow.ledger_id)).join(UnitRow, col(UnitRow.id) == col(LedgerRow.unit_id))
            .where(*cur, col(StockEntryRow.code) == code).group_by(col(UnitRow.credit_code))):
        g.fates[cc] = {"U": 0, "D": 0, "S": 0, "G": int(gen or 0), "drawn": 0}
        span[cc] = (open_, close_)
    if g.fates:
        for cc, month, o, c in uow.session.execute(
                select(col(UnitRow.credit_code), col(LedgerRow.month), col(StockEntryRow.open_kg), col(StockEntryRow.close_kg))
                .join(LedgerRow, col(LedgerRow.id) == col(StockEntryRow.ledger_id)).join(UnitRow, col(UnitRow.id) == col(LedgerRow.unit_id))
                .where(*cur, col(StockEntryRow.code) == code)):
            f = g.fates[cc]
            if month == span[cc][0]:
                f["_open"] = int(o)
            if month == span[cc][1]:
                f["_close"] = int(c)
        for f in g.fates.values():
            d = f.pop("_close", 0) - f.pop("_open", 0)
            f["S"], f["drawn"] = max(0, d), max(0, -d)
        for cc, method, kg in uow.session.execute(
                select(col(UnitRow.credit_code), col(TreatmentEntryRow.method), func.sum(col(TreatmentEntryRow.qty_kg)))
                .join(LedgerRow, col(LedgerRow.id) == col(TreatmentEntryRow.ledger_id)).join(UnitRow, col(UnitRow.id) == col(LedgerRow.unit_id))
                .where(*cur, col(TreatmentEntryRow.code) == code).group_by(col(UnitRow.credit_code), col(TreatmentEntryRow.method))):
            k = "U" if uow.catalogue.method_class(method) == "utilisation" else "D"
            g.fates[cc][k] += int(kg or 0)
        # transfers reported in ledgers without a manifest still leave the node: they dilute the shares
        for a, b, kg in uow.session.execute(
                select(col(UnitRow.credit_code), col(TransferEntryRow.counterpart), func.sum(col(TransferEntryRow.qty_kg)))
                .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id)).join(UnitRow, col(UnitRow.id) == col(LedgerRow.unit_id))
                .where(*cur, col(TransferEntryRow.code) == code, col(TransferEntryRow.direction) == "out",
                       col(TransferEntryRow.manifest_no).is_(None))
                .group_by(col(UnitRow.credit_code), col(TransferEntryRow.counterpart))):
            e = g.out[a].setdefault(b, [0, 0, None])
            e[0] += int(kg or 0)
            g.into[b][a] = g.into[b].get(a, 0) + int(kg or 0)
    if cache:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (stamp, g)
    return g


@dataclass
class Flow:
    """The result of one propagation: mass per edge and per terminal, and the hop depth of each node."""

    edges: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    ends: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # (unit, fate|origin)
    depth: dict[str, int] = field(default_factory=dict)
    cut_kg: float = 0.0
    residual_kg: float = 0.0  # crumbs under EPS_KG per node, left unpropagated


def propagate(start: dict[str, float], step: Any, terminal: Any) -> Flow:
    """Push mass from ``start`` along ``step(n) -> (unit shares, terminal shares)`` until under EPS_KG is left.

    Loops terminate: each pass through a loop with an exit carries less mass; a closed loop is cut after
    MAX_VISITS node visits and what remains is reported in ``cut_kg``."""
    fl = Flow()
    pending: dict[str, float] = defaultdict(float)
    q: deque[str] = deque()
    for n, x in start.items():
        pending[n] += x
        fl.depth.setdefault(n, 0)
        q.append(n)
    visits = 0
    while q:
        n = q.popleft()
        x = pending.pop(n, 0.0)
        if x <= 0:
            continue
        visits += 1
        if visits > MAX_VISITS:
            fl.cut_kg += x + sum(pending.values())
            pending.clear()
            break
        units, ends = step(n)
        for k, p in ends.items():
            fl.ends[(n, terminal(k))] += x * p
        for b, p in units.items():
            m = x * p
            fl.edges[(n, b)] += m
            fl.depth.setdefault(b, fl.depth[n] + 1)
            queued = pending.get(b, 0.0) >= EPS_KG
            pending[b] += m
            if not queued and pending[b] >= EPS_KG:
                q.append(b)
    fl.residual_kg += sum(pending.values())
    return fl


def _node(cc: str, code: str) -> str:
    return f"{cc}|{code}"


def _kept(fl: Flow, max_hops: int) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """The ``max_hops`` heaviest edges, and the count and mass of the others (cut off largest first)."""
    if len(fl.edges) <= max_hops:
        return dict(fl.edges), {"count": 0, "mass_t": 0.0}
    ranked = sorted(fl.edges.items(), key=lambda kv: (-kv[1], kv[0]))
    rest = ranked[max_hops:]
    return dict(ranked[:max_hops]), {"count": len(rest), "mass_t": round(sum(m for _e, m in rest) / 1000, 3)}


def _hops(g: CodeGraph, fl: Flow, edges: dict[tuple[str, str], float], code: str, total: float, *,
          backward: bool) -> list[dict[str, Any]]:
    out = []
    for (a, b), m in sorted(edges.items(), key=lambda kv: (fl.depth.get(kv[0][0], 0), -kv[1])):
        src, dst = (b, a) if backward else (a, b)
        e = g.out.get(src, {}).get(dst, [0, 0, None])
        out.append({"from": src, "to": dst, "waste_code": code, "depth": fl.depth.get(a, 0) + 1,
                    "mass_t": round(m / 1000, 3), "share": round(m / total, 6) if total else 0.0,
                    "edge_t": kg_to_t_float(e[0]), "manifest_count": e[1], "example_manifest": e[2]})
    return out


def _trace_code(g: CodeGraph, code: str, start: dict[str, float], direction: str,
                max_hops: int = MAX_HOPS) -> dict[str, Any]:
    total = sum(start.values())
    if direction == "forward":
        fl = propagate(start, g.outflow, lambda k: k)
        edges, omitted = _kept(fl, max_hops)
        fates = {k: 0.0 for k in FATES}
        ends = []
        for (n, k), m in fl.ends.items():
            fates[k] += m
            ends.append({"unit": n, "fate": k, "mass_t": round(m / 1000, 3), "share": round(m / total, 6) if total else 0})
        fates["X"] += fl.cut_kg
        return {"waste_code": code, "start_t": round(total / 1000, 3),
                "hops": _hops(g, fl, edges, code, total, backward=False), "hops_omitted": omitted,
                "fates": {k: round(v / 1000, 3) for k, v in fates.items()},
                "terminals": sorted(ends, key=lambda e: -e["mass_t"]), "closed_loop": fl.cut_kg > 0,
                "_flow": fl, "_edges": edges}

    def step(n: str) -> tuple[dict[str, float], dict[str, float]]:
        ups, here = g.inflow(n)
        return ups, ({"origin": here} if here > 0 else {})

    fl = propagate(start, step, lambda k: "origin")
    edges, omitted = _kept(fl, max_hops)
    producers: dict[str, float] = defaultdict(float)
    for (n, _k), m in fl.ends.items():
        producers[n] += m
    return {"waste_code": code, "start_t": round(total / 1000, 3),
            "hops": _hops(g, fl, edges, code, total, backward=True), "hops_omitted": omitted,
            "producers": sorted(({"unit": u, "mass_t": round(m / 1000, 3), "share": round(m / total, 6) if total else 0}
                                 for u, m in producers.items()), key=lambda p: -p["mass_t"]),
            "closed_loop": fl.cut_kg > 0, "_flow": fl, "_edges": edges}


def _shown(t: dict[str, Any]) -> set[str]:
    """Units drawn in the subgraph: the ends of the listed hops and the start."""
    fl: Flow = t["_flow"]
    return {u for e in t["_edges"] for u in e} | {n for n, d in fl.depth.items() if d == 0}


def _node_link(parts: list[tuple[str, dict[str, Any]]], names: dict[str, str]) -> dict[str, Any]:
    """networkx-style node-link JSON of the traced subgraph (units and fates as nodes)."""
    nodes: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []
    for direction, t in parts:
        code = t["waste_code"]
        fl: Flow = t["_flow"]
        for (a, b), m in t["_edges"].items():
            src, dst = (b, a) if direction == "backward" else (a, b)
            for u in (src, dst):
                nodes.setdefault(_node(u, code), {"id": _node(u, code), "kind": "unit", "unit": u, "waste_code": code,
                                                  "name": names.get(u)})
            links.append({"source": _node(src, code), "target": _node(dst, code), "mass_t": round(m / 1000, 3),
                          "direction": direction})
        shown = _shown(t)
        for (n, k), m in fl.ends.items():
            if n not in shown:
                continue  # an end of a hop left out (max_hops): counted in hops_omitted
            nodes.setdefault(_node(n, code), {"id": _node(n, code), "kind": "unit", "unit": n, "waste_code": code,
                                              "name": names.get(n)})
            fid = f"{k}|{code}" if k != "origin" else f"origin|{n}|{code}"
            nodes.setdefault(fid, {"id": fid, "kind": "fate" if k != "origin" else "origin", "fate": k,
                                   "waste_code": code})
            src, dst = (fid, _node(n, code)) if k == "origin" else (_node(n, code), fid)
            links.append({"source": src, "target": dst, "mass_t": round(m / 1000, 3), "direction": direction})
    return {"directed": True, "multigraph": False, "graph": {}, "nodes": list(nodes.values()), "links": links}


def _names(uow: UnitOfWork, parts: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    ccs = {u for _d, t in parts for u in _shown(t)}
    ccs_l = sorted(ccs)[:5000]
    return dict(uow.session.execute(select(col(UnitRow.credit_code), col(UnitRow.name))
                                    .where(col(UnitRow.credit_code).in_(ccs_l))).all()) if ccs_l else {}


def _finish(uow: UnitOfWork, parts: list[tuple[str, dict[str, Any]]], out: dict[str, Any]) -> dict[str, Any]:
    out["graph"] = _node_link(parts, _names(uow, parts))
    for _d, t in parts:
        t.pop("_flow", None)
        t.pop("_edges", None)
    return out


def trace_manifest(*, uow: UnitOfWork, actor: Actor, number: str, cache: bool = True,
                   max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """Forward from the receiver (and any follow-on's receiver) to final fates, backward from the shipper to
    producers, per waste code of the manifest, with proportional shares at collectors. At most ``max_hops``
    hops per code and direction are listed (heaviest first); ``hops_omitted`` counts and weighs the rest."""
    row = _current(uow, number)
    _d1, _d2, shipper, receiver = _districts(uow, row)
    if not readable(uow, actor, row):
        raise NotFound(f"联单 {number} 不存在 (no such manifest)", code="unknown_manifest")
    year = row.planned_date.year
    follow = [] if row.status not in ("rejected", "partially_received") else list(uow.session.execute(
        select(col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code), col(ManifestLineRow.quantity_kg))
        .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
        .where(col(ManifestRow.parent_number) == number, col(ManifestRow.is_current).is_(True))))
    per_code: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shipped: dict[str, float] = defaultdict(float)
    first_hops: list[dict[str, Any]] = []
    for ln in _lines(uow, row.id or 0):
        moved = ln.quantity_kg if row.status == "in_transit" else (ln.received_kg or 0)
        shipped[ln.waste_code] += ln.quantity_kg
        if row.status != "submitted" and moved > 0:
            per_code[ln.waste_code][row.receiver_code] += moved
            first_hops.append({"from": shipper.credit_code, "to": row.receiver_code, "waste_code": ln.waste_code,
                               "depth": 0, "mass_t": kg_to_t_float(moved), "manifest": number})
    for rc, code, kg in follow:
        per_code[code][rc] += kg
        first_hops.append({"from": shipper.credit_code, "to": rc, "waste_code": code, "depth": 0,
                           "mass_t": kg_to_t_float(kg), "manifest": "follow-on"})
    parts: list[tuple[str, dict[str, Any]]] = []
    forward, backward = [], []
    for code in sorted(shipped):
        g = load_graph(uow, year, code, cache=cache)
        f = _trace_code(g, code, dict(per_code.get(code, {})), "forward", max_hops)
        b = _trace_code(g, code, {shipper.credit_code: shipped[code]}, "backward", max_hops)
        parts += [("forward", f), ("backward", b)]
        forward.append(f)
        backward.append(b)
    out = {"number": number, "year": year, "status": row.status, "shipper": shipper.credit_code,
           "receiver": row.receiver_code, "manifest_hops": first_hops, "forward": forward, "backward": backward}
    return visible_trace(uow.session, actor, _finish(uow, parts, out))


def trace_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str, direction: str = "forward", year: int,
               waste_code: str | None = None, cache: bool = True, max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """From a unit: forward, everything that left it in the year (per code) to final fates; backward, everything
    that reached it, to the producers."""
    cc = normalise_credit_code(credit_code)
    u = find_unit_row(uow.session, cc)
    if u is None or not actor.can_view_unit(u.credit_code, u.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    if direction not in ("forward", "backward"):
        raise InputRejected("direction 须为 forward 或 backward", problems=[
            Problem("bad_direction", "direction 须为 forward 或 backward", "forward or backward", field="direction",
                    value=direction)])
    codes: set[str] = set()
    if waste_code:
        chk = uow.catalogue.classify(waste_code)
        if chk.error or chk.code is None:
            raise InputRejected("未知的废物代码", problems=[Problem("unknown_code", "未知的废物代码", "unknown waste code",
                                                                   field="waste_code", value=waste_code)])
        codes = {chk.code}
    else:
        y0, y1 = date(year, 1, 1), date(year, 12, 31)
        side = col(ManifestRow.shipper_id) == u.id if direction == "forward" else col(ManifestRow.receiver_code) == cc
        codes |= set(uow.session.execute(
            select(col(ManifestLineRow.waste_code)).join(ManifestRow, col(ManifestRow.id) == col(ManifestLineRow.manifest_id))
            .where(side, col(ManifestRow.is_current).is_(True), col(ManifestRow.planned_date) >= y0,
                   col(ManifestRow.planned_date) <= y1).distinct()).scalars())
        codes |= set(uow.session.execute(
            select(col(StockEntryRow.code)).join(LedgerRow, col(LedgerRow.id) == col(StockEntryRow.ledger_id))
            .where(col(LedgerRow.unit_id) == u.id, col(LedgerRow.year) == year, col(LedgerRow.is_current).is_(True),
                   col(StockEntryRow.stream).in_(("hazardous", "medical")))).scalars())
    parts: list[tuple[str, dict[str, Any]]] = []
    traces = []
    for code in sorted(codes):
        g = load_graph(uow, year, code, cache=cache)
        own = g.fates.get(cc) or {}
        if direction == "forward":
            mass = sum(v[0] for v in g.out.get(cc, {}).values()) + sum(own.get(k, 0) for k in ("U", "D", "S"))
        else:
            mass = sum(g.into.get(cc, {}).values()) + own.get("G", 0) + own.get("drawn", 0)
        if mass <= 0:
            continue
        t = _trace_code(g, code, {cc: float(mass)}, direction, max_hops)
        parts.append((direction, t))
        traces.append(t)
    return visible_trace(uow.session, actor,
                         _finish(uow, parts, {"unit": cc, "year": year, "direction": direction, "traces": traces}))
