"""The one flow model: the yearly flow graph of one stream (indicators.md §1) as a networkx ``DiGraph``.

Nodes are ``(credit_code, waste_code)`` tuples plus the absorbing fates ``"U"``, ``"D"``, ``"S"``,
``"X"``. Node attributes hold the §1 symbols in kg (``generated``, ``received``, ``own_u``,
``own_d``, ``open``, ``close``, ``stored``, ``drawn``, ``outflow``), the unit's ``district``,
``park``, ``roles`` and ``name``, and the ids of the ledger versions behind the node (``ledgers``).

Every edge carries ``kg`` (exact integer kilograms of the flow: what the shipper's ledgers declared,
Σ 转出, exactly as indicators.md §1 weighs it), ``weight`` (tonnes, a float for networkx algorithms and
drawing), ``rows`` (the 转出 rows behind it) and what the manifests of the year attest on the same
(shipper, receiver, code): ``shipped``, ``received``, ``rejected``, ``in_transit``, ``returned`` (kg)
and ``manifests`` (their numbers). A manifest that moved waste no ledger has declared yet is an edge
of ``kg`` 0 carrying only its attestation; a refused load (rejected) delivers nothing to the refusing
receiver, and its return (the follow-on manifest back to the shipper) is attested on the shipper's
own edge ``(i, c) → (i, c)``. An edge to ``X`` carries ``receivers`` ``{credit_code: kg}`` so a trace
or an anomaly can name the unregistered or silent receiver, and ``attested`` for their manifests.

Everything that reads flows reads this graph: fate attribution (``nofei.flows.fate.attribute`` derives
its sparse matrices from it once), the indicators, the Sankey and node-link JSON, the manifest and unit
traces, lineage, the unresolved-mass findings and the three-way reconciliation (each attestation keeps the
manifests' sides they are folded from, ``fold``, which ``nofei.flows.counterparts`` holds against the ledgers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from nofei.domain.manifests import STATUSES
from nofei.flows.counterparts import ManifestSides
from nofei.flows.model import FATES, NodeKey, StreamYearData

ATTESTED = ("shipped", "received", "rejected", "in_transit", "returned", "manifest_count")
MAX_NUMBERS = 20  # manifest numbers named per edge; ``manifest_count`` says how many there are


@dataclass(slots=True)
class Attestation:
    """What the current manifests of a year attest on one (shipper, receiver, code), in kg.

    ``received`` counts what the receiver confirmed (0 for a rejected manifest), ``rejected`` what it
    refused, ``in_transit`` what is on the way, ``returned`` what came back to the shipper on a follow-on
    manifest of a rejection (such a manifest's receiver is the shipper itself)."""

    shipper: str
    receiver: str
    code: str
    shipped: int = 0
    received: int = 0
    rejected: int = 0
    in_transit: int = 0
    returned: int = 0
    manifest_count: int = 0
    manifests: list[str] = field(default_factory=list)  # some of their numbers (at most MAX_NUMBERS)

    @property
    def delivered(self) -> int:
        """What reached (or is on its way to) the receiver: never the refused part."""
        return self.received + self.in_transit

    def add(self, status: str, quantity: int, received: int | None, rejected: int | None, number: str,
            *, follow_on: bool, count: int = 1) -> None:
        """Fold manifest lines of one status (current versions, not merely ``submitted``) into the attestation;
        ``count`` manifests, ``number`` one of them."""
        self.manifest_count += count
        self.shipped += quantity
        if status == "in_transit":
            if follow_on and self.receiver == self.shipper:
                self.returned += quantity
            else:
                self.in_transit += quantity
        else:
            got = received or 0
            if follow_on and self.receiver == self.shipper:
                self.returned += got
            else:
                self.received += got
            self.rejected += rejected or 0
        if number not in self.manifests and len(self.manifests) < MAX_NUMBERS:
            self.manifests.append(number)

    def as_attrs(self) -> dict[str, Any]:
        return {"shipped": self.shipped, "received": self.received, "rejected": self.rejected,
                "in_transit": self.in_transit, "returned": self.returned, "manifest_count": self.manifest_count,
                "manifests": list(self.manifests)}


def _group_sum(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact integer sums of ``values`` per group: ``bincount`` (float64) when every partial sum stays below 2^53,
    so each is an exactly represented integer; else ``add.at`` in int64."""
    if int(np.abs(values).sum(dtype=np.float64)) < 1 << 52:
        return np.bincount(group, weights=values, minlength=n).astype(np.int64)
    acc = np.zeros(n, dtype=np.int64)
    np.add.at(acc, group, values)
    return acc


def fold(m: ManifestSides) -> list[Attestation]:
    """The attestations of the manifests that moved (past ``submitted``), one per (shipper, receiver, code): each
    the sum of its manifests' sides, as ``Attestation.add`` folds one, naming the first ``MAX_NUMBERS`` numbers in
    number order. Array sums: a year's million manifests fold in about a second."""
    idx = np.flatnonzero(m.status != STATUSES.index("submitted"))
    if len(idx) == 0:
        return []
    edge = (m.shipper[idx].astype(np.int64) << 36) | (m.receiver[idx].astype(np.int64) << 12) | m.code[idx]
    uniq, inv = np.unique(edge, return_inverse=True)
    transit = m.status[idx] == STATUSES.index("in_transit")
    back = m.is_return[idx]
    qty, rec, rej = m.quantity[idx], m.received[idx], m.rejected[idx]
    zero = np.zeros_like(qty)
    parts = {"shipped": qty, "in_transit": np.where(transit & ~back, qty, zero),
             "returned": np.where(back, np.where(transit, qty, rec), zero),
             "received": np.where(~transit & ~back, rec, zero), "rejected": np.where(transit, zero, rej)}
    sums = {name: _group_sum(inv, v, len(uniq)) for name, v in parts.items()}
    count = np.bincount(inv, minlength=len(uniq))
    order = np.argsort(inv, kind="stable")  # rows of an edge together, in key (number) order
    starts = np.concatenate(([0], np.cumsum(count)[:-1]))
    number = m.number
    out = []
    for e in range(len(uniq)):
        rows = idx[order[starts[e]:starts[e] + count[e]]]
        first = m.side(int(rows[0]))
        a = Attestation(first.shipper, first.receiver, first.code, manifest_count=int(count[e]),
                        manifests=[f"{int(n):014d}" for n in number[rows[:MAX_NUMBERS]]],
                        **{k: int(v[e]) for k, v in sums.items()})
        out.append(a)
    return out


_ZERO_ATTESTED = {k: 0 for k in ATTESTED}


def _edge(kg: int, rows: int = 0) -> dict[str, Any]:
    d: dict[str, Any] = {"kg": kg, "declared": kg, "weight": kg / 1000, "rows": rows}
    d.update(_ZERO_ATTESTED)
    d["manifests"] = []
    return d


def build_flow_graph(data: StreamYearData, manifests: Iterable[Attestation] = ()) -> nx.DiGraph:
    """One node per (unit, code) that reported the stream in the year, the four fates, weighted edges.

    A transfer of code *c* from *i* to *j* joins (*i*, *c*) to (*j*, *c*) when *j* reported code *c*
    in the year, and goes to ``X`` otherwise (unregistered receiver, or no ledger of that code).
    ``manifests`` are the year's attestations of the stream's codes (see ``Attestation``).
    """
    g: nx.DiGraph = nx.DiGraph(stream=data.stream, year=data.year)
    for f in FATES:
        g.add_node(f, fate=True)
    nodes = data.nodes
    edges: list[tuple[Any, Any, dict[str, Any]]] = []
    attrs: list[tuple[Any, dict[str, Any]]] = []
    for key, n in nodes.items():
        u = data.unit(n.unit)
        stored = n.stored
        attrs.append((key, {"fate": False, "unit": n.unit, "code": n.code, "generated": n.generated,
                            "received": n.received, "own_u": n.own_u, "own_d": n.own_d, "open": n.open,
                            "close": n.close, "stored": stored, "drawn": n.drawn,
                            "outflow": n.own_u + n.own_d + sum(n.transfers.values()) + stored,
                            "district": u.district, "park": u.park, "roles": u.roles, "name": u.name,
                            "ledgers": data.ledgers.get(n.unit, set())}))
        for fate, kg in (("U", n.own_u), ("D", n.own_d), ("S", stored)):
            if kg > 0:
                edges.append((key, fate, _edge(kg)))
        lost: dict[str, int] = {}
        for recv, kg in n.transfers.items():
            if kg <= 0:
                continue
            target = (recv, n.code)
            if target in nodes:
                edges.append((key, target, _edge(kg, n.transfer_rows.get(recv, 0))))
            else:
                lost[recv] = lost.get(recv, 0) + kg
        if lost:
            total = sum(lost.values())
            x = _edge(total, sum(n.transfer_rows.get(r, 0) for r in lost))
            x["receivers"] = lost
            x["attested"] = {}
            edges.append((key, "X", x))
    g.add_nodes_from(attrs)
    g.add_edges_from(edges)
    for a in manifests:
        attest(g, a)
    return g


def attest(g: nx.DiGraph, a: Attestation) -> None:
    """Put one attestation on its edge (creating a ``kg`` 0 edge when no ledger declared the move)."""
    src: NodeKey = (a.shipper, a.code)
    if src not in g:
        g.graph.setdefault("unplaced", []).append(a)  # the shipper reported no ledger of the code
        return
    dst: NodeKey = (a.receiver, a.code)
    if dst in g:
        if not g.has_edge(src, dst):
            g.add_edge(src, dst, **_edge(0))
        e = g.edges[src, dst]
    else:
        if not g.has_edge(src, "X"):
            x = _edge(0)
            x["receivers"], x["attested"] = {}, {}
            g.add_edge(src, "X", **x)
        e = g.edges[src, "X"]
        e["attested"][a.receiver] = a.as_attrs()
    for k, v in a.as_attrs().items():
        if k == "manifests":
            e["manifests"] = [*e["manifests"], *(m for m in v if m not in e["manifests"])][:MAX_NUMBERS]
        else:
            e[k] += v
    if a.rejected > 0 and a.receiver != a.shipper:
        _refuse(g, src, dst if dst in g else "X", a.receiver, a.rejected)


def _refuse(g: nx.DiGraph, src: NodeKey, dst: Any, receiver: str, rejected: int) -> None:
    """A refused load delivers nothing: what the shipper's ledger declared to the refusing receiver, up to
    the refused mass, goes back to the shipper's own node instead (a self-loop, so the node's outflow ``O``
    and its ledger balance are unchanged and the well-mixed shares send it on with the rest of its stock)."""
    e = g.edges[src, dst]
    if dst == "X":
        declared = e["receivers"].get(receiver, 0)
        r = min(declared, rejected)
        if r <= 0:
            return
        e["receivers"][receiver] = declared - r
    else:
        r = min(e["kg"], rejected)
        if r <= 0:
            return
    e["kg"] -= r
    e["weight"] = e["kg"] / 1000
    if not g.has_edge(src, src):
        g.add_edge(src, src, **_edge(0))
    back = g.edges[src, src]
    back["kg"] += r
    back["weight"] = back["kg"] / 1000


def is_fate(n: Any) -> bool:
    return isinstance(n, str)


def flow_edges(g: nx.DiGraph, n: Any) -> Iterable[tuple[Any, Any, dict[str, Any]]]:
    """The edges out of ``n`` that carry flow (``kg`` > 0)."""
    return ((a, b, d) for a, b, d in g.out_edges(n, data=True) if d["kg"] > 0)


def node_id(key: Any) -> str:
    """A stable text id for JSON: ``credit_code|code`` for a node, the letter for a fate."""
    return key if isinstance(key, str) else f"{key[0]}|{key[1]}"


def node_link(g: nx.DiGraph) -> dict[str, Any]:
    """``nx.node_link_data`` of the graph with text ids (JSON-ready: sets become sorted lists)."""
    h = nx.relabel_nodes(g, {k: node_id(k) for k in g.nodes}, copy=True)
    for _n, d in h.nodes(data=True):
        if isinstance(d.get("ledgers"), set):
            d["ledgers"] = sorted(d["ledgers"])
        if isinstance(d.get("roles"), tuple):
            d["roles"] = list(d["roles"])
    h.graph.pop("unplaced", None)
    return nx.node_link_data(h, edges="links")
