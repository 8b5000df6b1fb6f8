"""One waste code's flow model split along the weakly connected components of its graph (issue 12).

A transfer or a manifest joins nodes of one code, and in a city's flows most of them never meet: the graph of a
code (``nofei.flows.graph``, the fates ``U``/``D``/``S``/``X`` left out of connectivity) falls apart into
weakly connected components, and a node's fates depend only on its own component. So a code's model is kept
as **parts**: a component of ``SMALL`` nodes or more is a part of its own, the smaller ones share one of
``BUCKETS`` parts by a stable hash of their first node (a city's many lone producers would otherwise cost one
graph and one chain each). Each part has its data, attestations, networkx graph and fates; the code's graph
and fates are the parts' composed. The partition is a function of the data alone, so a model refreshed part by
part is the model built from scratch, part for part.

After a write ``CodeModel.refreshed`` rebuilds only the parts whose components changed: those holding a node of
a reloaded unit, a node whose out-edges may point elsewhere now (a sender to a unit that started or stopped
reporting the code: its transfer goes to that unit's node or to ``X``; ``senders`` is the reverse index), or an
end of an attestation that changed, plus every component such a node now reaches (components merge and split).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from nofei.flows.fate import FateResult, attribute, concat
from nofei.flows.graph import Attestation, build_flow_graph
from nofei.flows.model import NodeFlows, NodeKey, StreamYearData

SMALL = 32  # nodes: a component this large is a part of its own
BUCKETS = 64  # parts shared by the smaller components of a code

PartKey = tuple[int, str, str]  # (0, unit, code) of a component's first node, or (1, bucket, "") for small ones


def part_key(members: tuple[NodeKey, ...]) -> PartKey:
    """The part a component (its nodes, sorted) belongs to: its own when it has ``SMALL`` nodes or more, else the
    bucket its first node hashes to (crc32: the same in every process)."""
    first = members[0]
    if len(members) >= SMALL:
        return (0, first[0], first[1])
    return (1, f"{zlib.crc32(f'{first[0]}|{first[1]}'.encode()) % BUCKETS:02d}", "")


def edge_count(nd: NodeFlows) -> int:
    """The node's transfers that carry flow (``_exact_limit`` counts them over the stream)."""
    return sum(1 for kg in nd.transfers.values() if kg > 0)


class _Attested:
    """A code's attestations indexed for the refresh: by shipper (with their position in the year's list, so a
    part keeps the list's order) and the shippers to each receiver."""

    def __init__(self, items: list[Attestation]) -> None:
        self.items = items
        self.by_shipper: dict[str, list[tuple[int, Attestation]]] = {}
        self.to: dict[str, set[str]] = {}
        for i, a in enumerate(items):
            self.by_shipper.setdefault(a.shipper, []).append((i, a))
            self.to.setdefault(a.receiver, set()).add(a.shipper)

    def of(self, shippers: Iterable[str]) -> list[Attestation]:
        """The attestations of these shippers, in the year's order."""
        got = [x for s in shippers for x in self.by_shipper.get(s, ())]
        got.sort(key=lambda x: x[0])
        return [a for _i, a in got]


class Part:
    """Whole components of one code built together: their data (nodes sorted), the attestations shipped from
    them, their networkx graph and the fates attributed on it. Never changed once built."""

    __slots__ = ("key", "data", "attested", "graph", "fate")

    def __init__(self, key: PartKey, data: StreamYearData, attested: list[Attestation], exact_limit: int) -> None:
        self.key = key
        self.data = data
        self.attested = attested
        self.graph: nx.DiGraph = build_flow_graph(data, attested)
        self.fate: FateResult = attribute(self.graph, exact_limit=exact_limit)


class CodeModel:
    """One waste code of a stream's year: its nodes, their components and the parts built from them.

    ``comp_of`` names each node's component by its first node, ``members`` lists each component's nodes
    (sorted), ``senders`` the units with a transfer to each receiver. The code's ``data``, ``graph`` and ``fate``
    are composed from the parts when first read (the stream composes the parts directly)."""

    def __init__(self, code: str, base: StreamYearData, nodes: dict[NodeKey, NodeFlows], attested: list[Attestation],
                 exact_limit: int, *, _state: tuple[Any, ...] | None = None) -> None:
        self.code = code
        self.base = base  # the stream's data: units, ledgers and manifest counts the parts' data refer to
        self.nodes = nodes
        self.attested = attested
        self.exact_limit = exact_limit
        self.index: _Attested
        self.senders: dict[str, set[str]]
        self.edges: int
        self.comp_of: dict[NodeKey, NodeKey]
        self.members: dict[NodeKey, tuple[NodeKey, ...]]
        self.parts: dict[PartKey, Part]
        if _state is None:
            self.index, self.senders = _Attested(attested), _senders(nodes)
            self.edges = sum(edge_count(nd) for nd in nodes.values())
            self.comp_of, self.members, self.parts = {}, {}, {}
            comps = _components(nodes, self._out, nodes)
            self._index_components(comps)
            for key, keys in _group(comps).items():
                self.parts[key] = self._part(key, keys)
        else:
            self.index, self.senders, self.edges, self.comp_of, self.members, self.parts = _state
        self._graph: nx.DiGraph | None = None
        self._fate: FateResult | None = None

    # --- the code as one graph, for whoever reads it ---------------------------------------
    def ordered_parts(self) -> list[Part]:
        return [self.parts[k] for k in sorted(self.parts)]

    @property
    def data(self) -> StreamYearData:
        b = self.base
        return StreamYearData(b.stream, b.year, dict(sorted(self.nodes.items())), b.units, b.ledgers, b.manifest_rows)

    @property
    def graph(self) -> nx.DiGraph:
        if self._graph is None:
            self._graph = compose(self.base, self.ordered_parts())
        return self._graph

    @property
    def fate(self) -> FateResult:
        if self._fate is None:
            self._fate = concat([p.fate for p in self.ordered_parts()])
        return self._fate

    def __iter__(self) -> Iterator[Any]:  # (graph, fate), as the code models once were
        return iter((self.graph, self.fate))

    # --- building ----------------------------------------------------------------------------
    def _out(self, n: NodeKey, nodes: Mapping[NodeKey, Any]) -> Iterator[NodeKey]:
        """The nodes ``n`` has an edge to (a transfer that carries flow, or an attestation), within ``nodes``."""
        code = n[1]
        for recv, kg in self.nodes[n].transfers.items():
            if kg > 0 and (recv, code) in nodes:
                yield (recv, code)
        for _i, a in self.index.by_shipper.get(n[0], ()):
            if (a.receiver, code) in nodes:
                yield (a.receiver, code)

    def _index_components(self, comps: list[tuple[NodeKey, ...]]) -> None:
        for members in comps:
            first = members[0]
            self.members[first] = members
            for n in members:
                self.comp_of[n] = first

    def _part(self, key: PartKey, keys: Iterable[NodeKey]) -> Part:
        b = self.base
        ordered = sorted(keys)
        data = StreamYearData(b.stream, b.year, {k: self.nodes[k] for k in ordered}, b.units, b.ledgers,
                              b.manifest_rows)
        return Part(key, data, self.index.of(dict.fromkeys(k[0] for k in ordered)), self.exact_limit)

    # --- after a write -----------------------------------------------------------------------
    def refreshed(self, base: StreamYearData, units: set[str], attested: list[Attestation],
                  changed: set[tuple[str, str]]) -> CodeModel:
        """This code after a write: ``base`` the stream's new data, ``units`` the reloaded units (their nodes of the
        code come from ``base``), ``attested`` the code's attestations now, ``changed`` the (shipper, receiver)
        whose attestation differs. Only the parts of the components that changed are rebuilt."""
        code = self.code
        old_nodes = self.nodes
        nodes, toggled = _new_nodes(old_nodes, base.nodes, code, units)
        index = self.index if not changed else _Attested(attested)
        senders = _senders_after(self.senders, old_nodes, nodes, code, units)
        edges = self.edges - sum(edge_count(old_nodes[(u, code)]) for u in units if (u, code) in old_nodes) \
            + sum(edge_count(nodes[(u, code)]) for u in units if (u, code) in nodes)
        seeds = {(u, code) for u in units} | {(x, code) for pair in changed for x in pair}
        for r in toggled:  # a transfer (or attestation) to r goes to r's node or to X: its senders' edges change
            who = set(self.senders.get(r, ())) | senders.get(r, set()) | self.index.to.get(r, set()) | \
                index.to.get(r, set())
            seeds.update((s, code) for s in who)
        seeds = {n for n in seeds if n in old_nodes or n in nodes}
        new = CodeModel(code, base, nodes, attested, self.exact_limit,
                        _state=(index, senders, edges, dict(self.comp_of), dict(self.members), dict(self.parts)))
        new._rebuild(self, seeds)
        return new

    def _rebuild(self, old: CodeModel, seeds: set[NodeKey]) -> None:
        """The components that hold or now reach a seed found again, and their parts rebuilt (``self`` is the new
        model holding copies of ``old``'s indexes)."""
        nodes = self.nodes
        gone: set[NodeKey] = set()  # old components taken apart
        region: set[NodeKey] = set()
        stack: list[NodeKey] = []

        def take(n: NodeKey) -> None:
            first = old.comp_of.get(n)
            if first is not None and first not in gone:
                gone.add(first)
                for m in old.members[first]:
                    if m in nodes and m not in region:
                        region.add(m)
                        stack.append(m)
            if n in nodes and n not in region:
                region.add(n)
                stack.append(n)

        for n in seeds:
            take(n)
        while stack:
            for t in self._out(stack.pop(), nodes):
                if t not in region:
                    take(t)
        comps = _components(region, self._out, region)
        touched_parts: dict[PartKey, set[NodeKey]] = {}
        for first in gone:
            members = old.members[first]
            touched_parts.setdefault(part_key(members), set())
            del self.members[first]
            for m in members:
                if self.comp_of.get(m) == first:
                    del self.comp_of[m]
        self._index_components(comps)
        for members in comps:
            touched_parts.setdefault(part_key(members), set()).update(members)
        for key, add in touched_parts.items():
            p = old.parts.get(key)
            keep = [k for k in p.data.nodes if old.comp_of[k] not in gone] if p is not None else []
            keys = [*keep, *add]
            if keys:
                self.parts[key] = self._part(key, keys)
            else:
                self.parts.pop(key, None)


def _components(keys: Iterable[NodeKey], out: Any, within: Mapping[NodeKey, Any] | set[NodeKey],
                ) -> list[tuple[NodeKey, ...]]:
    """The weakly connected components of the nodes ``keys`` under the edges ``out(n, within)`` (all of which stay
    within ``keys``), each as its sorted nodes."""
    parent: dict[NodeKey, NodeKey] = {k: k for k in keys}

    def find(x: NodeKey) -> NodeKey:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in list(parent):
        for t in out(n, within):
            a, b = find(n), find(t)
            if a != b:
                parent[a] = b
    groups: dict[NodeKey, list[NodeKey]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return [tuple(sorted(g)) for g in groups.values()]


def _group(comps: list[tuple[NodeKey, ...]]) -> dict[PartKey, list[NodeKey]]:
    out: dict[PartKey, list[NodeKey]] = {}
    for members in comps:
        out.setdefault(part_key(members), []).extend(members)
    return out


def _senders(nodes: Mapping[NodeKey, NodeFlows]) -> dict[str, set[str]]:
    """Per receiver, the units with a transfer of the code to it (any quantity)."""
    out: dict[str, set[str]] = {}
    for (u, _c), nd in nodes.items():
        for r in nd.transfers:
            got = out.get(r)
            if got is None:
                out[r] = {u}
            else:
                got.add(u)
    return out


def _senders_after(old: dict[str, set[str]], old_nodes: Mapping[NodeKey, NodeFlows],
                   nodes: Mapping[NodeKey, NodeFlows], code: str, units: set[str]) -> dict[str, set[str]]:
    """``old`` with the reloaded units' transfers replaced (copied where changed: the old model stays valid)."""
    if not units:
        return old
    out = dict(old)
    copied: set[str] = set()

    def entry(r: str) -> set[str]:
        if r not in copied:
            copied.add(r)
            out[r] = set(out.get(r, ()))
        return out[r]

    for u in units:
        before = old_nodes.get((u, code))
        after = nodes.get((u, code))
        for r in before.transfers if before is not None else ():
            entry(r).discard(u)
        for r in after.transfers if after is not None else ():
            entry(r).add(u)
    for r in copied:
        if not out[r]:
            del out[r]
    return out


def _new_nodes(old: dict[NodeKey, NodeFlows], fresh: Mapping[NodeKey, NodeFlows], code: str, units: set[str],
               ) -> tuple[dict[NodeKey, NodeFlows], set[str]]:
    """The code's nodes with the reloaded units' taken from ``fresh``, and the units that gained or lost theirs."""
    if not units:
        return old, set()
    nodes = dict(old)
    toggled: set[str] = set()
    for u in units:
        k = (u, code)
        had = nodes.pop(k, None) is not None
        nd = fresh.get(k)
        if nd is not None:
            nodes[k] = nd
        if had != (nd is not None):
            toggled.add(u)
    return nodes, toggled


def compose(base: StreamYearData, parts: Iterable[Part]) -> nx.DiGraph:
    """One graph of the parts' nodes and edges (with the four fates, as ``build_flow_graph`` makes them)."""
    g = build_flow_graph(StreamYearData(base.stream, base.year, {}, base.units, base.ledgers, base.manifest_rows))
    for p in parts:
        g.add_nodes_from(p.graph.nodes(data=True))
        g.add_edges_from(p.graph.edges(data=True))
    return g


def code_models(data: StreamYearData, attested: list[Attestation], exact_limit: int) -> dict[str, CodeModel]:
    """Every code's model of a stream's data, built whole (nodes grouped by code in one pass)."""
    by_code: dict[str, dict[NodeKey, NodeFlows]] = {}
    for k, nd in data.nodes.items():
        got = by_code.get(k[1])
        if got is None:
            got = by_code[k[1]] = {}
        got[k] = nd
    att: dict[str, list[Attestation]] = {}
    for a in attested:
        att.setdefault(a.code, []).append(a)
    return {c: CodeModel(c, data, by_code[c], att.get(c, []), exact_limit) for c in sorted(by_code)}
