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
from collections.abc import Callable
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


NODE_FIGURES = ("generated", "received", "own_u", "own_d", "open", "close", "stored", "drawn", "outflow")
ELSEWHERE = (("elsewhere:in", "区域外来源 (from elsewhere)"), ("elsewhere:out", "区域外去向 (to elsewhere)"))


def _graph_nodes(graph: Any, shown: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The region's nodes with their recorded figures (t), then the four fates."""
    nodes: list[dict[str, Any]] = []
    for k in sorted(shown):
        a = graph.nodes[k]
        nodes.append({"id": node_id(k), "kind": "node", "unit": k[0], "code": k[1], "name": a["name"],
                      "district": a["district"], "park": a["park"], "role": primary_role(a["roles"]),
                      **{f"{f}_t": kg_to_t_float(a[f]) for f in NODE_FIGURES}})
    for f in FATES:
        nodes.append({"id": f, "kind": "fate", "name": FATE_NAMES_ZH[f]})
    return nodes


def _graph_links(graph: Any, shown: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Recorded kg per edge touching the region; the far end outside it becomes ``elsewhere:in``/``:out``."""
    links: dict[tuple[str, str], int] = defaultdict(int)
    for a, b, attrs in graph.edges(data=True):
        if a in shown:
            tgt = node_id(b) if (isinstance(b, str) or b in shown) else "elsewhere:out"
            links[(node_id(a), tgt)] += attrs["kg"]
        elif b in shown:
            links[("elsewhere:in", node_id(b))] += attrs["kg"]
    return links


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
        nodes = _graph_nodes(graph, shown)
        links = _graph_links(graph, shown)
        used = {x for pair in links for x in pair}
        nodes += [{"id": e, "kind": "elsewhere", "name": label} for e, label in ELSEWHERE if e in used]
        return {"year": year, "stream": stream, "region": region, "directed": True,
                "nodes": nodes,
                "links": [{"source": s, "target": t, "value_t": kg_to_t_float(v)} for (s, t), v in sorted(links.items())],
                "sankey": _sankey(uow, data, graph, fate, shown),
                "loops": [[node_id(k) for k in loop] for loop in fate.loops]}


def sankey(*, uow: UnitOfWork, actor: Actor, year: int, stream: str, region: str = CITY) -> dict[str, Any]:
    """Only the Sankey part of ``flows`` (used by the annual report)."""
    return flows(uow=uow, actor=actor, year=year, stream=stream, region=region)["sankey"]


class _Groups:
    """The Sankey's groups: a shown node's (district, primary role), or ``elsewhere``."""

    def __init__(self, data: Any, shown: set[tuple[str, str]]) -> None:
        self.data, self.shown = data, shown

    def __call__(self, k: tuple[str, str]) -> str:
        if k not in self.shown:
            return "elsewhere"
        u = self.data.unit(k[0])
        return f"{u.district}:{primary_role(u.roles)}"

    def band(self, g: str, b: Any) -> tuple[str, str] | None:
        """The (source, target) groups of an edge from group ``g`` to ``b``; None for what is not drawn
        (a group to itself, or elsewhere to elsewhere or to X)."""
        if isinstance(b, str) and b != "X":  # into a fate U/D/S
            return (g, b) if g != "elsewhere" else None
        tg = "X" if b == "X" else self(b)
        if g == "elsewhere" and tg in ("elsewhere", "X"):
            return None
        src = "elsewhere:in" if g == "elsewhere" else g
        dst = "elsewhere:out" if tg == "elsewhere" else tg
        return (src, dst) if src != dst else None


def _modelled_flow(graph: Any, fate: Any, groups: _Groups) -> dict[tuple[str, str], float]:
    """Kg between groups: each node's G and drawn stock enter it; its throughput leaves along its edges in
    proportion to their kg (a trapped node's all goes to X)."""
    n = len(fate.keys)
    x = fate.throughput(fate.attributable.astype(np.float64)) if n else np.zeros(0)
    trapped = set(fate.trapped)
    flow: dict[tuple[str, str], float] = defaultdict(float)
    for i, k in enumerate(fate.keys):
        nd = graph.nodes[k]
        g = groups(k)
        if g != "elsewhere":
            for source, figure in (("source:generated", "generated"), ("source:stock", "drawn")):
                if nd[figure]:
                    flow[(source, g)] += nd[figure]
        if k in trapped:
            if g != "elsewhere":
                flow[(g, "X")] += float(x[i])
            continue
        o = nd["outflow"]
        if o <= 0 or x[i] <= 0:
            continue
        share = float(x[i]) / o
        for _a, b, e in flow_edges(graph, k):
            pair = groups.band(g, b)
            if pair is not None:
                flow[pair] += share * e["kg"]
    return flow


def _sankey_node(nid: str, region_name: Callable[[str], str]) -> dict[str, Any]:
    """A Sankey node by its id: a fate, elsewhere, a source (this year's G, earlier stock) or a group."""
    if nid in FATES:
        return {"id": nid, "label": FATE_NAMES_ZH[nid], "kind": "fate"}
    if nid.startswith("elsewhere"):
        return {"id": nid, "label": "区域外 (elsewhere)", "kind": "elsewhere"}
    if nid.startswith("source:"):
        return {"id": nid, "label": "本年产生" if nid.endswith("generated") else "往年贮存", "kind": "source"}
    dcode, role = nid.split(":")
    return {"id": nid, "label": f"{region_name(dcode)}·{ROLE_ZH.get(role, role)}", "kind": "group",
            "district": dcode, "role": role}


def _sankey(uow: UnitOfWork, data: Any, graph: Any, fate: Any, shown: set[tuple[str, str]]) -> dict[str, Any]:
    """Groups of the graph's nodes (district, role) and the modelled mass on the graph's flow edges."""
    flow = _modelled_flow(graph, fate, _Groups(data, shown))
    names: dict[str, dict[str, Any]] = {}
    for pair in flow:
        for nid in pair:
            if nid not in names:
                names[nid] = _sankey_node(nid, uow.catalogue.region_name)
    links = [{"source": s, "target": t, "value": round(v / 1000, 3)} for (s, t), v in sorted(flow.items()) if v > 0.5]
    return {"nodes": list(names.values()), "links": links}
