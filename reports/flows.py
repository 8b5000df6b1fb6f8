"""GET /flows: the node-link JSON of a stream's yearly graph for a region, and a Sankey-ready
aggregation by district and unit role (issue 4, item 4).

The node-link part shows the ledgers as recorded (edge ``value_t`` = Σ 转出 / own treatment /
stock added). The Sankey part shows the *modelled* flows of the fate attribution: with every
producer's ``A = G + drawn`` entering, the throughput ``x = A + Qᵀx`` passes node *i* and leaves
along each edge as ``x_i · P_ij`` (indicators.md §2). Inflow equals outflow at every node by
construction, so every shown group balances; flows to or from units outside the region go to
``elsewhere:out`` / come from ``elsewhere:in`` (two nodes, so the Sankey stays acyclic), and a
group's flows to itself are left out on both sides (which keeps the balance).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.errors import PermissionDenied
from nofei.flows.graph import flow_edges, node_id
from nofei.flows.indicators import region_units
from nofei.flows.model import FATE_NAMES_ZH, FATES
from nofei.quantity import kg_to_t_float
from nofei.storage import flowdata
from nofei.storage.uow import UnitOfWork
from reports.indicators import check_region, check_stream, check_year

ROLE_PRIORITY = ("disposer", "utiliser", "collector", "carrier", "producer")
ROLE_ZH = {"disposer": "处置单位", "utiliser": "利用单位", "collector": "收集单位", "carrier": "运输单位",
           "producer": "产生单位"}


def primary_role(roles: tuple[str, ...] | list[str]) -> str:
    """The most downstream of a unit's registered roles (a collector that also produces is a collector)."""
    for r in ROLE_PRIORITY:
        if r in roles:
            return r
    return "producer"


def flows(*, uow: UnitOfWork, actor: Actor, year: int, stream: str, region: str = CITY) -> dict[str, Any]:
    """Node-link JSON and Sankey of one stream for a region (admins and regulators; enterprises 403)."""
    check_year(year)
    check_stream(stream)
    if actor.role == "enterprise":
        raise PermissionDenied("企业用户无权查看全市物质流 (flows are for regulators)")
    with uow:
        check_region(uow, actor, region)
        data, graph, fate = flowdata.stream_year(uow.session, stream, year, catalogue=uow.catalogue)
        units = region_units(data, region)
        shown = {k for k in data.nodes if region == CITY or k[0] in units}
        nodes: list[dict[str, Any]] = []
        for k in sorted(shown):
            a = graph.nodes[k]
            nodes.append({"id": node_id(k), "kind": "node", "unit": k[0], "code": k[1], "name": a["name"],
                          "district": a["district"], "park": a["park"], "role": primary_role(a["roles"]),
                          **{f"{f}_t": kg_to_t_float(a[f]) for f in ("generated", "received", "own_u", "own_d",
                                                                      "open", "close", "stored", "drawn", "outflow")}})
        for f in FATES:
            nodes.append({"id": f, "kind": "fate", "name": FATE_NAMES_ZH[f]})
        links: dict[tuple[str, str], int] = defaultdict(int)
        for a, b, attrs in graph.edges(data=True):
            if a in shown:
                tgt = node_id(b) if (isinstance(b, str) or b in shown) else "elsewhere:out"
                links[(node_id(a), tgt)] += attrs["kg"]
            elif b in shown:
                links[("elsewhere:in", node_id(b))] += attrs["kg"]
        used = {x for pair in links for x in pair}
        for e, label in (("elsewhere:in", "区域外来源 (from elsewhere)"), ("elsewhere:out", "区域外去向 (to elsewhere)")):
            if e in used:
                nodes.append({"id": e, "kind": "elsewhere", "name": label})
        return {"year": year, "stream": stream, "region": region, "directed": True,
                "nodes": nodes,
                "links": [{"source": s, "target": t, "value_t": kg_to_t_float(v)} for (s, t), v in sorted(links.items())],
                "sankey": _sankey(uow, data, graph, fate, shown),
                "loops": [[node_id(k) for k in loop] for loop in fate.loops]}


def sankey(*, uow: UnitOfWork, actor: Actor, year: int, stream: str, region: str = CITY) -> dict[str, Any]:
    """Only the Sankey part of ``flows`` (used by the annual report)."""
    return flows(uow=uow, actor=actor, year=year, stream=stream, region=region)["sankey"]


def _sankey(uow: UnitOfWork, data: Any, graph: Any, fate: Any, shown: set[tuple[str, str]]) -> dict[str, Any]:
    """Groups of the graph's nodes (district, role) and the modelled mass on the graph's flow edges."""
    cat = uow.catalogue
    n = len(fate.keys)
    x = fate.throughput(fate.attributable.astype(np.float64)) if n else np.zeros(0)
    trapped = set(fate.trapped)

    def group(k: tuple[str, str]) -> str:
        if k not in shown:
            return "elsewhere"
        u = data.unit(k[0])
        return f"{u.district}:{primary_role(u.roles)}"

    flow: dict[tuple[str, str], float] = defaultdict(float)
    for i, k in enumerate(fate.keys):
        nd = graph.nodes[k]
        g = group(k)
        if g != "elsewhere":
            if nd["generated"]:
                flow[("source:generated", g)] += nd["generated"]
            if nd["drawn"]:
                flow[("source:stock", g)] += nd["drawn"]
        if k in trapped:
            if g != "elsewhere":
                flow[(g, "X")] += float(x[i])
            continue
        o = nd["outflow"]
        if o <= 0 or x[i] <= 0:
            continue
        share = float(x[i]) / o
        for _a, b, e in flow_edges(graph, k):
            kg = e["kg"]
            if isinstance(b, str) and b != "X":
                if g != "elsewhere":
                    flow[(g, b)] += share * kg
                continue
            tg = "X" if b == "X" else group(b)
            if g == "elsewhere" and tg in ("elsewhere", "X"):
                continue
            src = "elsewhere:in" if g == "elsewhere" else g
            dst = "elsewhere:out" if tg == "elsewhere" else tg
            if src != dst:
                flow[(src, dst)] += share * kg
    names: dict[str, dict[str, Any]] = {}
    for s, t in flow:
        for nid in (s, t):
            if nid in names:
                continue
            if nid in FATES:
                names[nid] = {"id": nid, "label": FATE_NAMES_ZH[nid], "kind": "fate"}
            elif nid.startswith("elsewhere"):
                names[nid] = {"id": nid, "label": "区域外 (elsewhere)", "kind": "elsewhere"}
            elif nid.startswith("source:"):
                names[nid] = {"id": nid, "label": "本年产生" if nid.endswith("generated") else "往年贮存",
                              "kind": "source"}
            else:
                dcode, role = nid.split(":")
                names[nid] = {"id": nid, "label": f"{cat.region_name(dcode)}·{ROLE_ZH.get(role, role)}",
                              "kind": "group", "district": dcode, "role": role}
    links = [{"source": s, "target": t, "value": round(v / 1000, 3)} for (s, t), v in sorted(flow.items()) if v > 0.5]
    return {"nodes": list(names.values()), "links": links}
