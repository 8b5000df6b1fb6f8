"""The yearly flow graph of one stream (indicators.md §1) as a networkx ``DiGraph``.

Nodes are ``(credit_code, waste_code)`` tuples plus the absorbing fates ``"U"``, ``"D"``, ``"S"``,
``"X"``. Node attributes hold the §1 symbols in kg (``generated``, ``received``, ``own_u``,
``own_d``, ``open``, ``close``, ``stored``, ``drawn``, ``outflow``) and the unit's ``district``,
``park`` and ``roles``. Every edge carries ``kg`` (exact integer kilograms) and ``weight`` (tonnes,
a float for networkx algorithms and drawing); an edge to ``X`` also carries ``receivers``
``{credit_code: kg}`` so a trace can name the unregistered or silent receiver.

networkx is the model of who sends what to whom (traces, node-link JSON); the numeric work in
``nofei.flows.fate`` runs on sparse matrices built from the same data.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from nofei.flows.model import FATES, StreamYearData


def build_flow_graph(data: StreamYearData) -> nx.DiGraph:
    """One node per (unit, code) that reported the stream in the year, the four fates, weighted edges.

    A transfer of code *c* from *i* to *j* joins (*i*, *c*) to (*j*, *c*) when *j* reported code *c*
    in the year, and goes to ``X`` otherwise (unregistered receiver, or no ledger of that code).
    """
    g: nx.DiGraph = nx.DiGraph(stream=data.stream, year=data.year)
    for f in FATES:
        g.add_node(f, fate=True)
    nodes = data.nodes
    for key, n in nodes.items():
        u = data.unit(n.unit)
        g.add_node(key, fate=False, unit=n.unit, code=n.code, generated=n.generated, received=n.received,
                   own_u=n.own_u, own_d=n.own_d, open=n.open, close=n.close, stored=n.stored, drawn=n.drawn,
                   outflow=n.outflow, district=u.district, park=u.park, roles=u.roles, name=u.name)
    edges: list[tuple[Any, Any, dict[str, Any]]] = []
    for key, n in nodes.items():
        for fate, kg in (("U", n.own_u), ("D", n.own_d), ("S", n.stored)):
            if kg > 0:
                edges.append((key, fate, {"kg": kg, "weight": kg / 1000}))
        lost: dict[str, int] = {}
        for recv, kg in n.transfers.items():
            if kg <= 0:
                continue
            target = (recv, n.code)
            if target in nodes:
                edges.append((key, target, {"kg": kg, "weight": kg / 1000}))
            else:
                lost[recv] = lost.get(recv, 0) + kg
        if lost:
            total = sum(lost.values())
            edges.append((key, "X", {"kg": total, "weight": total / 1000, "receivers": lost}))
    g.add_edges_from(edges)
    return g


def node_id(key: Any) -> str:
    """A stable text id for JSON: ``credit_code|code`` for a node, the letter for a fate."""
    return key if isinstance(key, str) else f"{key[0]}|{key[1]}"
