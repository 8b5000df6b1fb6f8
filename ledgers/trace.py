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
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from nofei.access import Actor
from nofei.domain.units import normalise_credit_code
from nofei.errors import InputRejected, NotFound
from nofei.flows.fate import FateResult
from nofei.flows.graph import flow_edges, is_fate
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import flowdata
from nofei.storage import manifests as manifest_repo
from nofei.storage import trace as trace_repo
from nofei.storage.repo import find_unit_row
from nofei.storage.tables import ManifestRow
from nofei.storage.uow import UnitOfWork

from .manifests.common import readable_current, shipper_of
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


@dataclass(slots=True)
class _Walk:
    """What a traversal gathers: hops (unit → unit, kg), ends ((unit, fate or origin) → kg), first depths."""

    start: dict[str, float]
    edges: dict[tuple[str, str], float] = field(default_factory=dict)
    ends: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    entries: dict[Any, float] = field(default_factory=lambda: defaultdict(float))
    depth: dict[str, int] = field(default_factory=dict)
    closed: bool = False

    def hop(self, a: str, b: str, mass: float) -> None:
        self.edges[(a, b)] = self.edges.get((a, b), 0.0) + mass

    def result(self, m: _Model, max_hops: int, *, backward: bool) -> tuple[dict[str, Any], float]:
        """The fields both directions share (``_edges`` … are the private parts the node-link graph uses)."""
        total = sum(self.start.values())
        kept, omitted = _kept(self.edges, max_hops)
        return {"waste_code": m.code, "start_t": round(total / 1000, 3),
                "hops": _hops(m, kept, self.depth, total, backward=backward), "hops_omitted": omitted,
                "closed_loop": self.closed, "_edges": kept, "_ends": self.ends, "_start": set(self.start)}, total


def _transitions(g: nx.DiGraph, nodes: list[Any], trapped: set[Any]) -> dict[Any, dict[Any, float]]:
    """``P``: the share of each node's outflow ``O`` on each of its edges (none out of a trapped node)."""
    p: dict[Any, dict[Any, float]] = {}
    for n in nodes:
        o = g.nodes[n]["outflow"]
        if n in trapped or o <= 0:
            continue
        p[n] = {b: d["kg"] / o for _a, b, d in flow_edges(g, n)}
    return p


def _to_unresolved(w: _Walk, g: nx.DiGraph, n: Any, mass: float, depth: int) -> None:
    """A hop to receivers that reported no ledger of the code (the edge to ``X``), then ``X`` there."""
    recv = {r: kg for r, kg in g.edges[n, "X"].get("receivers", {}).items() if kg > 0}
    tot = sum(recv.values())
    for r, kg in recv.items():
        w.hop(n[0], r, mass * kg / tot)
        w.ends[(r, "X")] += mass * kg / tot
        w.depth.setdefault(r, depth + 1)
    if not recv:
        w.ends[(n[0], "X")] += mass


def _spread(w: _Walk, g: nx.DiGraph, n: Any, xn: float, outs: dict[Any, float], depth: int) -> None:
    """The mass ``xn`` passing node ``n`` along its edges: hops, fates, or ``X`` at a silent receiver."""
    for b, share in outs.items():
        mass = xn * share
        if mass <= _SHOWN_KG:
            continue
        if b == "X":
            _to_unresolved(w, g, n, mass, depth)
        elif is_fate(b):
            w.ends[(n[0], b)] += mass
        elif b != n:  # a load returned to its shipper stays in the node: no hop
            w.hop(n[0], b[0], mass)


def _forward_entries(m: _Model, w: _Walk, fates: dict[str, float]) -> list[str]:
    """Place the start masses on their nodes; a unit without a ledger of the code is ``X`` there, awaiting it."""
    pending = set()
    for u, kg in w.start.items():
        k = m.key(u)
        if k is None or m.fate is None:
            w.ends[(u, "X")] += kg  # the unit reported no ledger of the code: unresolved (indicators.md §1) ...
            fates["X"] += kg
            pending.add(u)  # ... until its ledger comes: shown as awaiting it, not as a loss
        else:
            w.entries[k] += kg
    return sorted(pending)


def _add_fates(fate: FateResult, entries: dict[Any, float], fates: dict[str, float]) -> None:
    """The fates of the entering masses: exactly the fate attribution's shares ``Σ m_n B_n``."""
    for k, kg in entries.items():
        for f, v in fate.shares(fate.index[k]).items():
            fates[f] += kg * v


def _pass_on(w: _Walk, m: _Model, fate: FateResult) -> None:
    """The throughput ``x = m + Pᵀx`` on the nodes reachable from the entries, spread along their edges; a
    trapped node (a loop with no exit) keeps what reaches it, as ``X``."""
    g = m.graph
    trapped = set(fate.trapped)
    in_loop = {k for loop in fate.loops for k in loop}
    reach = _depths(g, list(w.entries), backward=False)
    nodes = list(reach)
    p = _transitions(g, nodes, trapped)
    x = _solve(nodes, w.entries, {a: {b: s for b, s in outs.items() if not is_fate(b)} for a, outs in p.items()})
    for n in nodes:
        if x[n] <= _SHOWN_KG:
            continue
        if n in trapped:
            w.ends[(n[0], "X")] += x[n]
            w.closed = w.closed or n in in_loop
            continue
        _spread(w, g, n, x[n], p.get(n, {}), reach[n])
    w.depth.update({n[0]: d for n, d in reach.items() if n[0] not in w.depth})


def _share(v: float, total: float) -> float:
    return round(v / total, 6) if total else 0


def _forward(m: _Model, start: dict[str, float], max_hops: int) -> dict[str, Any]:
    """Forward from units with masses (kg): fates ``Σ m_n B_n`` (the fate attribution's shares) and the hops of
    the throughput ``x = m + Pᵀx`` on the nodes reachable from the start."""
    w = _Walk(start, depth={u: 0 for u in start})
    fates = dict.fromkeys(FATES, 0.0)
    pending = _forward_entries(m, w, fates)
    if w.entries and m.fate is not None:
        _add_fates(m.fate, w.entries, fates)
        _pass_on(w, m, m.fate)
    out, total = w.result(m, max_hops, backward=False)
    terminals: list[dict[str, Any]] = [{"unit": u, "fate": f, "mass_t": round(v / 1000, 3), "share": _share(v, total)}
                                       for (u, f), v in w.ends.items() if v > _SHOWN_KG]
    out.update({"fates": {k: round(v / 1000, 3) for k, v in fates.items()},
                "terminals": sorted(terminals, key=lambda e: -e["mass_t"]), "awaiting_ledger": pending})
    return _ordered(out, FORWARD_KEYS)


FORWARD_KEYS = ("waste_code", "start_t", "hops", "hops_omitted", "fates", "terminals", "awaiting_ledger",
                "closed_loop", "_edges", "_ends", "_start")
BACKWARD_KEYS = ("waste_code", "start_t", "hops", "hops_omitted", "producers", "closed_loop", "_edges", "_ends",
                 "_start")


def _ordered(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: d[k] for k in keys}


def _backward_entries(m: _Model, w: _Walk, producers: dict[str, float]) -> None:
    """Place the start masses: on the unit's node, or (outside the graph) on the nodes whose edge to ``X`` sent
    it the waste; a unit nothing is known to have sent anything is its own origin."""
    for u, kg in w.start.items():
        k = m.key(u)
        senders = m.unresolved_senders(u) if k is None else {}
        tot = sum(senders.values())
        if k is not None:
            w.entries[k] += kg
        elif tot <= 0:
            producers[u] += kg  # nothing known upstream: the unit itself is the origin
        else:  # a unit outside the graph: what the graph sent it (its part of the senders' edges to X)
            for snd, sent in senders.items():
                w.entries[snd] += kg * sent / tot
                w.hop(u, snd[0], kg * sent / tot)


def _upstream(g: nx.DiGraph, nodes: list[Any]) -> tuple[dict[Any, float], dict[Any, dict[Any, float]]]:
    """Per node, the share that is its own (``G + drawn``) and the shares that came from each upstream node in
    proportion to its declared flow into it (the well-mixed assumption on the reversed graph)."""
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
        p[n] = {u: v / tot for u, v in ups.items()}
    return here, p


def _unfed(here: dict[Any, float], p: dict[Any, dict[Any, float]]) -> set[Any]:
    """Nodes no origin feeds (a loop that nothing outside feeds): they become origins (``closed_loop``)."""
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
    return set(here) - fed


def _trace_back(w: _Walk, m: _Model, producers: dict[str, float]) -> None:
    """``y = m + Pᵀy`` on the reversed graph from the entries: each node's own share goes to its producers, the
    rest up its edges (nodes no origin feeds become origins: ``closed_loop``)."""
    g = m.graph
    reach = _depths(g, list(w.entries), backward=True)
    nodes = list(reach)
    here, p = _upstream(g, nodes)
    unfed = _unfed(here, p)
    for n in nodes:
        if n in unfed:
            here[n], p[n] = 1.0, {}
            w.closed = True
    y = _solve(nodes, w.entries, p)
    for n in nodes:
        if y[n] <= _SHOWN_KG:
            continue
        if here[n] > 0:
            producers[n[0]] += y[n] * here[n]
        for u, share in p.get(n, {}).items():
            if y[n] * share > _SHOWN_KG:
                w.hop(n[0], u[0], y[n] * share)
    w.depth.update({n[0]: d for n, d in reach.items() if n[0] not in w.depth})


def _backward(m: _Model, start: dict[str, float], max_hops: int) -> dict[str, Any]:
    """Backward from units with masses (kg): the producers, by the well-mixed shares of the reversed graph."""
    w = _Walk(start, depth={u: 0 for u in start})
    producers: dict[str, float] = defaultdict(float)
    _backward_entries(m, w, producers)
    if w.entries:
        _trace_back(w, m, producers)
    w.ends = {(u, "origin"): v for u, v in producers.items() if v > _SHOWN_KG}
    out, total = w.result(m, max_hops, backward=True)
    out["producers"] = sorted(({"unit": u, "mass_t": round(v / 1000, 3), "share": _share(v, total)}
                               for (u, _o), v in w.ends.items()), key=lambda e: -e["mass_t"])
    return _ordered(out, BACKWARD_KEYS)


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
    return trace_repo.unit_names(uow.session, sorted(ccs)[:5000])


def _finish(uow: UnitOfWork, parts: list[tuple[str, dict[str, Any]]], out: dict[str, Any]) -> dict[str, Any]:
    out["graph"] = _node_link(parts, _names(uow, parts))
    for _d, t in parts:
        for k in ("_edges", "_ends", "_start"):
            t.pop(k, None)
    return out


def _delivered(uow: UnitOfWork, row: ManifestRow, shipper: str
               ) -> tuple[dict[str, dict[str, float]], dict[str, float], list[dict[str, Any]]]:
    """Per code: what the manifest delivered (to the receiver; a refused load's follow-ons to where they go),
    what it shipped, and the manifest hops themselves. A refused load delivers nothing to the receiver."""
    per_code: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shipped: dict[str, float] = defaultdict(float)
    first_hops: list[dict[str, Any]] = []
    follow = [] if row.status not in ("rejected", "partially_received") else trace_repo.follow_on_lines(
        uow.session, row.number)
    for ln in manifest_repo.lines_of(uow.session, row.id or 0):
        delivered = ln.quantity_kg if row.status == "in_transit" else (ln.received_kg or 0)
        shipped[ln.waste_code] += ln.quantity_kg
        if row.status != "submitted" and delivered > 0:
            per_code[ln.waste_code][row.receiver_code] += delivered
            first_hops.append({"from": shipper, "to": row.receiver_code, "waste_code": ln.waste_code,
                               "depth": 0, "mass_t": kg_to_t_float(delivered), "manifest": row.number})
    for f in follow:  # the refused load, from the refusing receiver back (or on) to its receiver
        per_code[f.waste_code][f.receiver_code] += f.quantity_kg
        first_hops.append({"from": row.receiver_code, "to": f.receiver_code, "waste_code": f.waste_code, "depth": 0,
                           "mass_t": kg_to_t_float(f.quantity_kg), "manifest": f.number})
    return per_code, shipped, first_hops


def trace_manifest(*, uow: UnitOfWork, actor: Actor, number: str, cache: bool = True,
                   max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """Forward from what the manifest delivered to final fates, backward from the shipper to producers, per waste
    code of the manifest, with proportional shares at collectors. A refused load delivers nothing to the receiver:
    what a rejection sent back to the shipper enters the shipper's node (its follow-on manifest is shown as the hop
    back). At most ``max_hops`` hops per code and direction are listed (heaviest first); ``hops_omitted`` counts
    and weighs the rest. ``cache=False`` rebuilds the year's model first."""
    with uow:
        row = readable_current(uow, actor, number)
        shipper = shipper_of(uow, row).credit_code
        year = row.planned_date.year
        if not cache:
            flowdata.clear_cache()
        per_code, shipped, first_hops = _delivered(uow, row, shipper)
        parts: list[tuple[str, dict[str, Any]]] = []
        forward, backward = [], []
        for code in sorted(shipped):
            m = _Model(uow, year, code)
            f = _forward(m, dict(per_code.get(code, {})), max_hops)
            b = _backward(m, {shipper: shipped[code]}, max_hops)
            parts += [("forward", f), ("backward", b)]
            forward.append(f)
            backward.append(b)
        out = {"number": number, "year": year, "status": row.status, "shipper": shipper,
               "receiver": row.receiver_code, "manifest_hops": first_hops, "forward": forward, "backward": backward}
        return visible_trace(uow, actor, _finish(uow, parts, out))


def _codes_asked(uow: UnitOfWork, waste_code: str) -> set[str]:
    chk = uow.catalogue.classify(waste_code)
    if chk.error or chk.code is None:
        raise InputRejected("未知的废物代码", problems=[Problem("unknown_code", "未知的废物代码", "unknown waste code",
                                                               field="waste_code", value=waste_code)])
    return {chk.code}


def _unit_mass(m: _Model, cc: str, direction: str) -> tuple[float, bool]:
    """The mass traced from a unit's node (forward its outflow ``O``; backward its inflow and own ``G + drawn``)
    and whether it is in the graph; outside it, backward, what the graph sent it."""
    k = m.key(cc)
    if k is None:
        return (float(sum(m.unresolved_senders(cc).values())) if direction == "backward" else 0.0), False
    a = m.graph.nodes[k]
    if direction == "forward":
        return float(a["outflow"]), True
    return float(a["generated"] + a["drawn"] + sum(d["kg"] for s, _b, d in m.graph.in_edges(k, data=True)
                                                   if not is_fate(s) and s != k)), True


def trace_unit(*, uow: UnitOfWork, actor: Actor, credit_code: str, direction: str = "forward", year: int,
               waste_code: str | None = None, cache: bool = True, max_hops: int = MAX_HOPS) -> dict[str, Any]:
    """From a unit: forward, everything that left its node in the year (per code, its outflow ``O``) to final
    fates; backward, everything that reached it (its inflow and own ``G + drawn``), to the producers."""
    with uow:
        cc = normalise_credit_code(credit_code)
        u = find_unit_row(uow.session, cc)
        if u is None or not actor.can_view_unit(u.credit_code, u.district):
            raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
        if direction not in ("forward", "backward"):
            raise InputRejected("direction 须为 forward 或 backward", problems=[
                Problem("bad_direction", "direction 须为 forward 或 backward", "forward or backward",
                        field="direction", value=direction)])
        if not cache:
            flowdata.clear_cache()
        codes = _codes_asked(uow, waste_code) if waste_code else trace_repo.unit_codes_of_year(
            uow.session, u.id or 0, cc, year, shipped=direction == "forward")
        parts: list[tuple[str, dict[str, Any]]] = []
        for code in sorted(codes):
            m = _Model(uow, year, code)
            mass, placed = _unit_mass(m, cc, direction)
            if mass <= 0:
                continue
            walk = _forward if direction == "forward" and placed else _backward
            parts.append((direction, walk(m, {cc: mass}, max_hops)))
        out = {"unit": cc, "year": year, "direction": direction, "traces": [t for _d, t in parts]}
        return visible_trace(uow, actor, _finish(uow, parts, out))
