"""Trace waste forward to its final fates and backward to its producers (issue 5 §5), on the one flow model.

A trace reads the yearly flow graph of the code's stream (``nofei.flows.graph``, cached by
``nofei.storage.flowdata``) and its fate attribution: no graph or propagation of its own.

- **Forward** from the nodes a mass enters (the manifest's receiver with what it confirmed, the shipper's own
  node with a load returned to it; a unit's own node): the fates are ``Σ m_n · B_n`` — exactly the fate shares
  of the indicators — and each hop carries the throughput ``x = m + Qᵀx`` times ``P`` (one sparse solve on
  the nodes reachable from the start, found by a networkx traversal). Mass entering a unit that reported no
  ledger of the code is ``X`` at that unit (indicators.md §1).
- **Backward** from a node: the same well-mixed assumption run on the reversed graph — what reached a node came
  from each upstream node in proportion to its declared flow into it, and from the node itself in proportion to
  its own generation and stock drawn (``G + drawn``). One sparse solve on the node's ancestors.

Every result passes ``trace_view.visible_trace``: the caller sees only what it may read (issue 17 item 8).
A closed loop with no exit (or no origin) is reported (``closed_loop``), never a hang: its nodes are absorbing,
into ``X`` forward (as in the fate attribution) and as origins backward.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve
from sqlalchemy import select
from sqlmodel import col

from nofei.access import Actor
from nofei.domain.units import normalise_credit_code
from nofei.errors import InputRejected, NotFound
from nofei.flows.fate import FateResult
from nofei.flows.graph import flow_edges, is_fate
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import flowdata
from nofei.storage.manifests import lines_of
from nofei.storage.repo import find_unit_row
from nofei.storage.tables import LedgerRow, ManifestLineRow, ManifestRow, StockEntryRow, UnitRow
from nofei.storage.uow import UnitOfWork

from .manifests.common import current as _current
from .manifests.common import readable
from .manifests.common import shipper_of as _shipper
from .trace_view import visible_trace

# Hops listed per code and direction, largest mass first; the rest is summed in ``hops_omitted``. A backward
# trace through a collector reaches every producer that fed it (B3: ~2,000), which no one reads as a list
# and which made the answer slow; callers raise it with ``max_hops`` (API: ``?max_hops=``, up to MAX_HOPS_LIMIT).
MAX_HOPS = 200
MAX_HOPS_LIMIT = 100_000
FATES = ("U", "D", "S", "X")
_SHOWN_KG = 0.0005  # hops and ends lighter than half a gram are not listed (float crumbs of the solve)


class _Model:
    """One (year, code): the stream's flow graph and fate attribution, and the code's nodes."""

    def __init__(self, uow: UnitOfWork, year: int, code: str) -> None:
        self.code = code
        stream = uow.catalogue.stream_of(code)
        self.graph: nx.DiGraph
        self.fate: FateResult | None
        if stream is None:
            self.graph, self.fate = nx.DiGraph(), None
        else:
            _data, self.graph, self.fate = flowdata.stream_year(uow.session, stream, year, catalogue=uow.catalogue)

    def key(self, unit: str) -> tuple[str, str] | None:
        k = (unit, self.code)
        return k if k in self.graph else None

    def unresolved_senders(self, unit: str) -> dict[Any, int]:
        """Nodes of the code whose edge to ``X`` carries flow to ``unit`` (kg), for a unit outside the graph."""
        if "X" not in self.graph:
            return {}
        return {s: d["receivers"][unit] for s, _x, d in self.graph.in_edges("X", data=True)
                if s[1] == self.code and d.get("receivers", {}).get(unit, 0) > 0}


def _depths(g: nx.DiGraph, starts: list[Any], *, backward: bool) -> dict[Any, int]:
    view = g.reverse(copy=False) if backward else g
    seen: dict[Any, int] = {}
    for s in starts:
        for n, d in nx.single_source_shortest_path_length(view, s).items():
            if not is_fate(n) and (n not in seen or d < seen[n]):
                seen[n] = d
    return seen


def _solve(nodes: list[Any], entries: dict[Any, float], p: dict[Any, dict[Any, float]]) -> dict[Any, float]:
    """``x = m + Pᵀx`` on ``nodes``: the mass passing each node (one sparse solve)."""
    idx = {n: i for i, n in enumerate(nodes)}
    rows, cols, vals = [], [], []
    for a, outs in p.items():
        for b, w in outs.items():
            if a in idx and b in idx:
                rows.append(idx[b])
                cols.append(idx[a])
                vals.append(w)
    n = len(nodes)
    m = sparse.identity(n, format="csc") - sparse.csc_matrix((vals, (rows, cols)), shape=(n, n))
    rhs = np.zeros(n)
    for k, v in entries.items():
        rhs[idx[k]] += v
    x = np.atleast_1d(spsolve(m, rhs)) if n else np.zeros(0)
    return {nd: float(x[i]) for nd, i in idx.items()}


def _kept(edges: dict[tuple[str, str], float], max_hops: int) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """The ``max_hops`` heaviest edges, and the count and mass of the others (cut off largest first)."""
    if len(edges) <= max_hops:
        return dict(edges), {"count": 0, "mass_t": 0.0}
    ranked = sorted(edges.items(), key=lambda kv: (-kv[1], kv[0]))
    rest = ranked[max_hops:]
    return dict(ranked[:max_hops]), {"count": len(rest), "mass_t": round(sum(m for _e, m in rest) / 1000, 3)}


def _hops(m: _Model, edges: dict[tuple[str, str], float], depth: dict[str, int], total: float, *,
          backward: bool) -> list[dict[str, Any]]:
    out = []
    for (a, b), mass in sorted(edges.items(), key=lambda kv: (depth.get(kv[0][0], 0), -kv[1])):
        src, dst = (b, a) if backward else (a, b)
        s, t = (src, m.code), (dst, m.code)
        if m.graph.has_edge(s, t):
            e = m.graph.edges[s, t]
            kg, count, nos = e["kg"], e["manifest_count"], e["manifests"]
        else:  # to a receiver outside the graph: its part of the edge to X
            e = m.graph.edges[s, "X"]
            att = e["attested"].get(dst, {})
            kg, count, nos = e["receivers"].get(dst, 0), att.get("manifest_count", 0), att.get("manifests", [])
        out.append({"from": src, "to": dst, "waste_code": m.code, "depth": depth.get(a, 0) + 1,
                    "mass_t": round(mass / 1000, 3), "share": round(mass / total, 6) if total else 0.0,
                    "edge_t": kg_to_t_float(kg), "manifest_count": count,
                    "example_manifest": nos[0] if nos else None})
    return out


def _forward(m: _Model, start: dict[str, float], max_hops: int) -> dict[str, Any]:
    """Forward from units with masses (kg): fates ``Σ m_n B_n`` and the hops of the throughput."""
    g, fate, code = m.graph, m.fate, m.code
    total = sum(start.values())
    fates = dict.fromkeys(FATES, 0.0)
    ends: dict[tuple[str, str], float] = defaultdict(float)
    edges: dict[tuple[str, str], float] = {}
    entries: dict[Any, float] = defaultdict(float)
    pending: set[str] = set()
    for u, kg in start.items():
        k = m.key(u)
        if k is None or fate is None:
            ends[(u, "X")] += kg  # the unit reported no ledger of the code: unresolved (indicators.md §1) ...
            fates["X"] += kg
            pending.add(u)  # ... until its ledger comes: shown as awaiting it, not as a loss
        else:
            entries[k] += kg
    depth: dict[str, int] = {u: 0 for u in start}
    closed = False
    if entries and fate is not None:
        trapped = set(fate.trapped)
        in_loop = {k for loop in fate.loops for k in loop}
        for k, kg in entries.items():  # the fates: exactly the fate attribution's shares
            for f, v in fate.shares(fate.index[k]).items():
                fates[f] += kg * v
        reach = _depths(g, list(entries), backward=False)
        nodes = list(reach)
        p: dict[Any, dict[Any, float]] = {}
        for n in nodes:
            o = g.nodes[n]["outflow"]
            if n in trapped or o <= 0:
                continue
            p[n] = {b: d["kg"] / o for _a, b, d in flow_edges(g, n)}
        x = _solve(nodes, entries, {a: {b: w for b, w in outs.items() if not is_fate(b)} for a, outs in p.items()})
        for n in nodes:
            xn = x[n]
            if xn <= _SHOWN_KG:
                continue
            if n in trapped:
                ends[(n[0], "X")] += xn
                closed = closed or n in in_loop
                continue
            for b, w in p.get(n, {}).items():
                mass = xn * w
                if mass <= _SHOWN_KG:
                    continue
                if b == "X":  # to a receiver that reported no ledger of the code: the hop, then X there
                    d = g.edges[n, "X"]
                    recv = {r: kg for r, kg in d.get("receivers", {}).items() if kg > 0}
                    tot = sum(recv.values())
                    for r, kg in recv.items():
                        edges[(n[0], r)] = edges.get((n[0], r), 0.0) + mass * kg / tot
                        ends[(r, "X")] += mass * kg / tot
                        depth.setdefault(r, reach[n] + 1)
                    if not recv:
                        ends[(n[0], "X")] += mass
                elif is_fate(b):
                    ends[(n[0], b)] += mass
                elif b != n:  # a load returned to its shipper stays in the node: no hop
                    edges[(n[0], b[0])] = edges.get((n[0], b[0]), 0.0) + mass
        depth.update({n[0]: d for n, d in reach.items() if n[0] not in depth})
    kept, omitted = _kept(edges, max_hops)
    return {"waste_code": code, "start_t": round(total / 1000, 3),
            "hops": _hops(m, kept, depth, total, backward=False), "hops_omitted": omitted,
            "fates": {k: round(v / 1000, 3) for k, v in fates.items()},
            "terminals": sorted(({"unit": u, "fate": f, "mass_t": round(v / 1000, 3),
                                  "share": round(v / total, 6) if total else 0} for (u, f), v in ends.items()
                                 if v > _SHOWN_KG), key=lambda e: -e["mass_t"]),
            "awaiting_ledger": sorted(pending),
            "closed_loop": closed, "_edges": kept, "_ends": ends, "_start": set(start)}


def _backward(m: _Model, start: dict[str, float], max_hops: int) -> dict[str, Any]:
    """Backward from units with masses (kg): the producers, by the well-mixed shares of the reversed graph."""
    g, code = m.graph, m.code
    total = sum(start.values())
    producers: dict[str, float] = defaultdict(float)
    edges: dict[tuple[str, str], float] = {}
    entries: dict[Any, float] = defaultdict(float)
    for u, kg in start.items():
        k = m.key(u)
        senders = m.unresolved_senders(u) if k is None else {}
        tot = sum(senders.values())
        if k is not None:
            entries[k] += kg
        elif tot <= 0:
            producers[u] += kg  # nothing known upstream: the unit itself is the origin
        else:  # a unit outside the graph: what the graph sent it (its part of the senders' edges to X)
            for snd, sent in senders.items():
                entries[snd] += kg * sent / tot
                edges[(u, snd[0])] = edges.get((u, snd[0]), 0.0) + kg * sent / tot
    depth: dict[str, int] = {u: 0 for u in start}
    closed = False
    if entries:
        reach = _depths(g, list(entries), backward=True)
        nodes = list(reach)
        here: dict[Any, float] = {}
        p: dict[Any, dict[Any, float]] = {}
        for n in nodes:
            a = g.nodes[n]
            ups = {u: d["kg"] for u, _b, d in g.in_edges(n, data=True) if d["kg"] > 0 and not is_fate(u) and u != n}
            own = a["generated"] + a["drawn"]
            tot = own + sum(ups.values())
            if tot <= 0:
                here[n] = 1.0
                continue
            here[n] = own / tot
            p[n] = {u: w / tot for u, w in ups.items()}
        # a loop that nothing outside feeds has no origin: its nodes become origins (reported as closed_loop)
        rev: dict[Any, list[Any]] = defaultdict(list)
        for n, ups in p.items():
            for up in ups:
                rev[up].append(n)
        todo = [n for n, h in here.items() if h > 0]
        fed = set(todo)
        while todo:
            for n in rev.get(todo.pop(), ()):
                if n not in fed:
                    fed.add(n)
                    todo.append(n)
        for n in nodes:
            if n not in fed:
                here[n], p[n] = 1.0, {}
                closed = True
        y = _solve(nodes, entries, p)
        for n in nodes:
            yn = y[n]
            if yn <= _SHOWN_KG:
                continue
            if here[n] > 0:
                producers[n[0]] += yn * here[n]
            for u, w in p.get(n, {}).items():
                mass = yn * w
                if mass > _SHOWN_KG:
                    edges[(n[0], u[0])] = edges.get((n[0], u[0]), 0.0) + mass
        depth.update({n[0]: d for n, d in reach.items() if n[0] not in depth})
    kept, omitted = _kept(edges, max_hops)
    ends = {(u, "origin"): v for u, v in producers.items() if v > _SHOWN_KG}
    return {"waste_code": code, "start_t": round(total / 1000, 3),
            "hops": _hops(m, kept, depth, total, backward=True), "hops_omitted": omitted,
            "producers": sorted(({"unit": u, "mass_t": round(v / 1000, 3), "share": round(v / total, 6) if total else 0}
                                 for (u, _o), v in ends.items()), key=lambda e: -e["mass_t"]),
            "closed_loop": closed, "_edges": kept, "_ends": ends, "_start": set(start)}


def _node(cc: str, code: str) -> str:
    return f"{cc}|{code}"


def _shown(t: dict[str, Any]) -> set[str]:
    """Units drawn in the subgraph: the ends of the listed hops and the start."""
    return {u for e in t["_edges"] for u in e} | set(t["_start"])


def _node_link(parts: list[tuple[str, dict[str, Any]]], names: dict[str, str]) -> dict[str, Any]:
    """networkx-style node-link JSON of the traced subgraph (units and fates as nodes)."""
    nodes: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []
    for direction, t in parts:
        code = t["waste_code"]
        for (a, b), m in t["_edges"].items():
            src, dst = (b, a) if direction == "backward" else (a, b)
            for u in (src, dst):
                nodes.setdefault(_node(u, code), {"id": _node(u, code), "kind": "unit", "unit": u, "waste_code": code,
                                                  "name": names.get(u)})
            links.append({"source": _node(src, code), "target": _node(dst, code), "mass_t": round(m / 1000, 3),
                          "direction": direction})
        shown = _shown(t)
        waiting = set(t.get("awaiting_ledger", ()))
        for (n, k), m in t["_ends"].items():
            if n not in shown:
                continue  # an end of a hop left out (max_hops): counted in hops_omitted
            nodes.setdefault(_node(n, code), {"id": _node(n, code), "kind": "unit", "unit": n, "waste_code": code,
                                              "name": names.get(n)})
            if k == "X" and n in waiting:  # the manifest's receiver has not reported the code yet
                fid, kind = f"pending|{n}|{code}", "pending"
            elif k == "origin":
                fid, kind = f"origin|{n}|{code}", "origin"
            else:
                fid, kind = f"{k}|{code}", "fate"
            nodes.setdefault(fid, {"id": fid, "kind": kind, "fate": k, "waste_code": code})
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
        for k in ("_edges", "_ends", "_start"):
            t.pop(k, None)
    return out


def trace_manifest(*, uow: UnitOfWork, actor: Actor, number: str, cache: bool = True,
                   max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """Forward from what the manifest delivered to final fates, backward from the shipper to producers, per waste
    code of the manifest, with proportional shares at collectors. A refused load delivers nothing to the receiver:
    what a rejection sent back to the shipper enters the shipper's node (its follow-on manifest is shown as the hop
    back). At most ``max_hops`` hops per code and direction are listed (heaviest first); ``hops_omitted`` counts
    and weighs the rest. ``cache=False`` rebuilds the year's model first."""
    row = _current(uow, number)
    shipper = _shipper(uow, row)
    if not readable(uow, actor, row):
        raise NotFound(f"联单 {number} 不存在 (no such manifest)", code="unknown_manifest")
    year = row.planned_date.year
    if not cache:
        flowdata.clear_cache()
    follow = [] if row.status not in ("rejected", "partially_received") else list(uow.session.execute(
        select(col(ManifestRow.number), col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code),
               col(ManifestLineRow.quantity_kg))
        .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
        .where(col(ManifestRow.parent_number) == number, col(ManifestRow.is_current).is_(True))))
    per_code: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shipped: dict[str, float] = defaultdict(float)
    first_hops: list[dict[str, Any]] = []
    for ln in lines_of(uow.session, row.id or 0):
        delivered = ln.quantity_kg if row.status == "in_transit" else (ln.received_kg or 0)
        shipped[ln.waste_code] += ln.quantity_kg
        if row.status != "submitted" and delivered > 0:
            per_code[ln.waste_code][row.receiver_code] += delivered
            first_hops.append({"from": shipper.credit_code, "to": row.receiver_code, "waste_code": ln.waste_code,
                               "depth": 0, "mass_t": kg_to_t_float(delivered), "manifest": number})
    for fno, rc, code, kg in follow:  # the refused load, from the refusing receiver back (or on) to rc
        per_code[code][rc] += kg
        first_hops.append({"from": row.receiver_code, "to": rc, "waste_code": code, "depth": 0,
                           "mass_t": kg_to_t_float(kg), "manifest": fno})
    parts: list[tuple[str, dict[str, Any]]] = []
    forward, backward = [], []
    for code in sorted(shipped):
        m = _Model(uow, year, code)
        f = _forward(m, dict(per_code.get(code, {})), max_hops)
        b = _backward(m, {shipper.credit_code: shipped[code]}, max_hops)
        parts += [("forward", f), ("backward", b)]
        forward.append(f)
        backward.append(b)
    out = {"number": number, "year": year, "status": row.status, "shipper": shipper.credit_code,
           "receiver": row.receiver_code, "manifest_hops": first_hops, "forward": forward, "backward": backward}
    return visible_trace(uow.session, actor, _finish(uow, parts, out))


def trace_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str, direction: str = "forward", year: int,
               waste_code: str | None = None, cache: bool = True, max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """From a unit: forward, everything that left its node in the year (per code, its outflow ``O``) to final
    fates; backward, everything that reached it (its inflow and own ``G + drawn``), to the producers."""
    cc = normalise_credit_code(credit_code)
    u = find_unit_row(uow.session, cc)
    if u is None or not actor.can_view_unit(u.credit_code, u.district):
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    if direction not in ("forward", "backward"):
        raise InputRejected("direction 须为 forward 或 backward", problems=[
            Problem("bad_direction", "direction 须为 forward 或 backward", "forward or backward", field="direction",
                    value=direction)])
    if not cache:
        flowdata.clear_cache()
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
        m = _Model(uow, year, code)
        k = m.key(cc)
        if k is None:
            mass = sum(m.unresolved_senders(cc).values()) if direction == "backward" else 0
            if mass > 0:
                t = _backward(m, {cc: float(mass)}, max_hops)
                parts.append((direction, t))
                traces.append(t)
            continue
        a = m.graph.nodes[k]
        if direction == "forward":
            mass = a["outflow"]
        else:
            mass = a["generated"] + a["drawn"] + sum(d["kg"] for s, _b, d in m.graph.in_edges(k, data=True)
                                                     if not is_fate(s) and s != k)
        if mass <= 0:
            continue
        t = (_forward if direction == "forward" else _backward)(m, {cc: float(mass)}, max_hops)
        parts.append((direction, t))
        traces.append(t)
    return visible_trace(uow.session, actor,
                         _finish(uow, parts, {"unit": cc, "year": year, "direction": direction, "traces": traces}))
