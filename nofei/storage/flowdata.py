"""Load the one flow model of a year from the database and keep it live (issue 12).

The inputs come from the stock and treatment rows and the per-ledger edge summaries (``flow_edge``,
``nofei.storage.flowstore``), never from the million transfer rows; Python folds them into
``nofei.flows.model.StreamYearData`` and the graph (``nofei.flows.graph``) with the manifests'
attestations, and the fates are derived from the graph. Only the current version of each accepted
ledger counts (``ledger.is_current``).

``year_flows`` caches ``(data, graph, fate)`` per stream for (database, year, C1 class); see there how
a write refreshes only what it touched.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeGuard

import networkx as nx
from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.orm import Session

from nofei.catalogue import STREAMS, Catalogue
from nofei.flows import counterparts
from nofei.flows.components import CodeModel, Part, code_models, compose, edge_count
from nofei.flows.counterparts import ManifestSides
from nofei.flows.fate import EXACT_LIMIT, attribute, concat
from nofei.flows.graph import Attestation, fold
from nofei.flows.model import NodeFlows, NodeKey, StreamYearBuilder, StreamYearData, UnitInfo, manifest_exempt
from nofei.storage import flowstore, sides
from nofei.storage.cache import StampedCache
from nofei.storage.engine import is_postgres
from nofei.storage.tables import (
    LedgerRow,
    ManifestLineRow,
    ManifestRow,
    StockEntryRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
    table_of,
)

CACHE_SIZE = 6  # years

L = table_of(LedgerRow)
ST = table_of(StockEntryRow)
TR = table_of(TreatmentEntryRow)
TX = table_of(TransferEntryRow)
UN = table_of(UnitRow)
MF = table_of(ManifestRow)
ML = table_of(ManifestLineRow)


def _id_list(session: Session, col: Any) -> Any:
    """The distinct ids of a group: an integer array on PostgreSQL, one comma-separated text on SQLite."""
    if is_postgres(session):
        return func.array_agg(func.distinct(col))
    return func.group_concat(func.distinct(col))


def _ids(v: Any) -> list[int]:
    return [int(x) for x in v] if isinstance(v, list | tuple) else [int(x) for x in str(v).split(",")]


def _bytewise(session: Session, expr: Any) -> Any:
    """``expr`` compared byte by byte ("YYYY-MM|kg" keys need no locale rules; PostgreSQL's default collation
    made the min/max of the stock fold several times slower)."""
    return expr.collate("C") if is_postgres(session) else expr


def load_units(session: Session) -> dict[str, UnitInfo]:
    rows = session.execute(select(UN.c.credit_code, UN.c.name, UN.c.district, UN.c.park, UN.c.roles, UN.c.unit_type,
                                  UN.c.small_clinic))
    return {r.credit_code: UnitInfo(r.credit_code, r.name, r.district, r.park, tuple(r.roles or ()),
                                    r.unit_type or "industrial", bool(r.small_clinic)) for r in rows}


def _node_of(nodes: dict[NodeKey, NodeFlows], unit: str, code: str) -> NodeFlows:
    """The node (unit, code), added empty when the year has none yet."""
    nd = nodes.get((unit, code))
    if nd is None:
        nd = nodes[(unit, code)] = NodeFlows(unit, code)
    return nd


class _YearLoad:
    """``load_year``'s state while it folds the rows of one year (or of some units of it) into every stream's
    ``StreamYearBuilder``: one method per kind of row (stocks, treatments, edge summaries)."""

    def __init__(self, session: Session, year: int, catalogue: Catalogue, units: dict[str, UnitInfo],
                 unit_ids: list[int] | None) -> None:
        self.session, self.year, self.catalogue, self.units, self.unit_ids = session, year, catalogue, units, unit_ids
        uq = select(UN.c.id, UN.c.credit_code)
        cur = and_(L.c.year == year, L.c.is_current.is_(True))
        if unit_ids is not None:  # the rows read below are those units' own
            uq = uq.where(UN.c.id.in_(unit_ids))
            cur = and_(cur, L.c.unit_id.in_(unit_ids))
        self.code_of: dict[int, str] = {r.id: r.credit_code for r in session.execute(uq)}
        self.current = cur
        self.builders = {s: StreamYearBuilder(s, year, units) for s in STREAMS}

    def stocks(self) -> bool:
        """Per (unit, code): Σ generated, and the opening stock of the earliest month and the closing stock of the
        latest ("YYYY-MM|kg" strings order by month), folded in SQL: one row per node instead of one per month.
        Whether there was any stock row of a known stream (without, the year is empty)."""
        session = self.session
        first = func.min(_bytewise(session, L.c.month + literal("|") + cast(ST.c.open_kg, String)))
        last = func.max(_bytewise(session, L.c.month + literal("|") + cast(ST.c.close_kg, String)))
        q = (select(L.c.unit_id, ST.c.stream, ST.c.code, func.sum(ST.c.generated_kg), first, last,
                    _id_list(session, ST.c.ledger_id))
             .select_from(ST.join(L, ST.c.ledger_id == L.c.id)).where(self.current)
             .group_by(L.c.unit_id, ST.c.stream, ST.c.code))
        found = False
        for uid, stream, code, g, f, la, ids in session.execute(q).all():
            b = self.builders.get(stream)
            if b is None:
                continue
            found = True
            fm, fo = f.split("|")
            lm, lc = la.split("|")
            u = self.code_of[uid]
            b.stock(u, fm, code, int(fo), int(g), int(lc) if fm == lm else 0)
            if lm != fm:
                b.stock(u, lm, code, 0, 0, int(lc))
            # the ledger versions behind the unit's nodes of the stream: those with stock rows of it
            b.data.ledgers.setdefault(u, set()).update(_ids(ids))
        return found

    def treatments(self) -> None:
        """Σ treated per (unit, code, method), as utilised or disposed by the method's class."""
        q = (select(L.c.unit_id, TR.c.stream, TR.c.code, TR.c.method, func.sum(TR.c.qty_kg))
             .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(self.current)
             .group_by(L.c.unit_id, TR.c.stream, TR.c.code, TR.c.method))
        for trow in self.session.execute(q).all():
            if trow[1] in self.builders:
                self.builders[trow[1]].treatment(self.code_of[trow[0]], trow[2],
                                                 self.catalogue.method_class(trow[3]) == "utilisation", int(trow[4]))

    def edges(self) -> None:
        """flow_year_edge holds one row per (unit, direction, stream, code, counterpart): folded into the nodes as
        StreamYearBuilder.transfer_out / transfer_in would, without a call per row."""
        exempt = _Exemptions(self.catalogue.for_year(self.year), self.units)
        nodes_of = {st: b.data.nodes for st, b in self.builders.items()}
        mrows_of = {st: b.data.manifest_rows for st, b in self.builders.items()}
        code_of = self.code_of
        for xuid, direction, stream, code, counterpart, qty, n, good in flowstore.edge_rows(
                self.session, self.year, self.unit_ids).all():
            nodes = nodes_of.get(stream)
            if nodes is None:
                continue
            u = code_of[xuid]
            nd = nodes.get((u, code)) or _node_of(nodes, u, code)
            if direction != "out":
                nd.received += int(qty)
                continue
            rows, ok = (0, 0) if exempt.of(u, code) else (int(n), int(good or 0))
            nd.transfers[counterpart] = nd.transfers.get(counterpart, 0) + int(qty)
            nd.transfer_rows[counterpart] = nd.transfer_rows.get(counterpart, 0) + rows
            m = mrows_of[stream].get(u)
            if m is None:
                m = mrows_of[stream][u] = [0, 0]
            m[0] += rows
            m[1] += ok

    def built(self, *, sort: bool) -> dict[str, StreamYearData]:
        """Every stream's data; with ``sort`` its nodes sorted by key (so a partial reload merges exactly)."""
        datas: dict[str, StreamYearData] = {s: b.build() for s, b in self.builders.items()}
        if sort:
            for d in datas.values():
                d.nodes = dict(sorted(d.nodes.items()))
        return datas


class _Exemptions:
    """Whether a unit's 转出 rows of a code need manifests (the 豁免清单): it depends on the code and on whether
    the unit is a small clinic only, so it is decided once per (code, small clinic)."""

    def __init__(self, catalogue: Catalogue, units: dict[str, UnitInfo]) -> None:
        self.catalogue, self.units = catalogue, units
        self.known: dict[tuple[str, bool], bool] = {}

    def of(self, unit: str, code: str) -> bool:
        info = self.units.get(unit)
        key = (code, bool(info and info.small_clinic))
        ex = self.known.get(key)
        if ex is None:
            ex = self.known[key] = manifest_exempt(self.catalogue, code, info)
        return ex


def load_year(session: Session, year: int, catalogue: Catalogue,
              units: dict[str, UnitInfo] | None = None, *, unit_ids: list[int] | None = None,
              ) -> dict[str, StreamYearData]:
    """Aggregate the current ledgers of ``year`` into the inputs of every stream's graph (indicators.md §1).

    Stocks and treatments from their tables, transfers from the per-ledger edge summaries (``flow_edge``,
    written with each version: ~10x fewer rows than ``transfer_entry``). ``unit_ids`` limits the load to
    some units (the live model reloads only the units a write touched). Nodes come out sorted by key; a
    partial reload merged into a year (``_merge``) gives the same nodes in another order, and the same model (each
    part sorts its own).
    """
    load = _YearLoad(session, year, catalogue, units if units is not None else load_units(session), unit_ids)
    if not load.stocks():
        return load.built(sort=False)
    load.treatments()
    load.edges()
    return load.built(sort=True)


def load_manifests(session: Session, year: int, catalogue: Catalogue, *,
                   previous: tuple[ManifestSides, dict[str, list[Attestation]]] | None = None,
                   shipper_ids: list[int] | None = None) -> tuple[ManifestSides, dict[str, list[Attestation]]]:
    """The current manifests of ``year`` (by planned date): their sides (``nofei.storage.sides``), and what those
    that moved attest per stream and (shipper, receiver, code), folded from the sides (``graph.fold``) — so the
    reconciliation reads the same manifests the graph's edges sum. With ``previous`` and ``shipper_ids`` only those
    shippers' manifests are read again (a manifest step names its shipper); the rest is kept."""
    out: dict[str, list[Attestation]] = {s: [] for s in STREAMS}
    if previous is not None and shipper_ids is not None:
        old, old_attested = previous
        ccs = {str(c) for c in session.execute(select(UN.c.credit_code).where(UN.c.id.in_(shipper_ids))).scalars()}
        new = sides.manifest_sides(session, year, shipper_ids=shipper_ids, units=old.units.extend())
        m = counterparts.replace_shippers(old, ccs, new)
        for s, items in old_attested.items():
            out[s] = [a for a in items if a.shipper not in ccs]
        folded = fold(new)
    else:
        m = sides.manifest_sides(session, year)
        folded = fold(m)
    for a in folded:
        stream = catalogue.stream_of(a.code)
        if stream in out:
            out[stream].append(a)
    return m, out


def load_attestations(session: Session, year: int, catalogue: Catalogue) -> dict[str, list[Attestation]]:
    """What the current manifests of ``year`` attest, per stream (``load_manifests``)."""
    return load_manifests(session, year, catalogue)[1]


def load_stream_year(session: Session, stream: str, year: int, catalogue: Catalogue,
                     units: dict[str, UnitInfo] | None = None) -> StreamYearData:
    """The inputs of one stream's graph (see ``load_year``)."""
    return load_year(session, year, catalogue, units)[stream]


def version_key(session: Session, year: int) -> tuple[Any, ...]:
    """What the units registry looks like (a unit's district or roles change every year's graph)."""
    uv = session.execute(select(func.count(), func.max(UN.c.updated_at), func.max(UN.c.id))).one()
    return tuple(str(x) for x in uv)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic collection while a model is built: it allocates ~10⁶ long-lived objects, and every generation-2
    pass would walk all of them again (reference counting still frees garbage; the model holds no cycles that
    need the collector). The collector's state is restored after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Year:
    """A cached year: its stamp (``flow_change``), the registry key, and per stream (data, graph, fate)."""

    stamp: tuple[int, str] | None
    ukey: tuple[Any, ...]
    units: dict[str, UnitInfo]
    attested: dict[str, list[Attestation]]
    value: dict[str, StreamModel]
    catalogue: Catalogue | None = None
    manifests: ManifestSides | None = None  # the sides the attestations are folded from (``load_manifests``)


class StreamModel:
    """One stream's year: its data, its fates and its graph (networkx), unpacked as ``(data, graph, fate)``.

    Kept per waste code and, within a code, per part (whole weakly connected components of the code's graph,
    ``nofei.flows.components``): a write rebuilds the parts whose components it touches, the stream's fates are
    the parts' stacked (``fate.concat``, codes in order, parts in order), and the stream's graph is composed from
    the parts' graphs when something first reads it (the indicators need only data and fates).
    """

    def __init__(self, data: StreamYearData, codes: dict[str, CodeModel],
                 exact_limit: int = EXACT_LIMIT) -> None:
        self.data = data
        self.exact_limit = exact_limit
        self.codes = dict(sorted(codes.items()))
        self.edges = sum(c.edges for c in self.codes.values())
        parts = self.parts()
        self.fate = concat([p.fate for p in parts]) if parts else attribute(data)
        self._graph: nx.DiGraph | None = None
        self._lock = threading.Lock()

    def parts(self) -> list[Part]:
        return [p for c in self.codes.values() for p in c.ordered_parts()]

    @property
    def graph(self) -> nx.DiGraph:
        with self._lock:
            if self._graph is None:
                self._graph = compose(self.data, self.parts())
            return self._graph

    def __iter__(self) -> Any:
        return iter((self.data, self.graph, self.fate))

    def __getitem__(self, i: int) -> Any:
        return self.graph if i == 1 else (self.data, None, self.fate)[i]


def _exact_limit(d: StreamYearData | int) -> int:
    """The stream decides exactness as a whole (``fate.EXACT_LIMIT`` flow edges, acyclic), as one graph would:
    per part, the same limit when the stream is within it, else 0 (float). ``d``: the data, or its edge count."""
    edges = d if isinstance(d, int) else sum(edge_count(n) for n in d.nodes.values())
    return EXACT_LIMIT if edges <= EXACT_LIMIT else 0


def _model(datas: dict[str, StreamYearData], attested: dict[str, list[Attestation]],
           touched: dict[str, set[str]] | None = None, old: dict[str, StreamModel] | None = None, *,
           units: set[str] | frozenset[str] = frozenset(), old_attested: dict[str, list[Attestation]] | None = None,
           ) -> dict[str, StreamModel]:
    """The model of every stream from its data; with ``touched`` (stream -> codes), ``units`` (the reloaded units)
    and ``old_attested`` (the attestations ``old`` was built with) only the parts of those codes whose components
    the write reached are rebuilt, the rest kept from ``old``."""
    value = dict(old or {})
    for s, d in datas.items():
        if touched is not None and s in value and s not in touched:
            continue  # its data is the model's (``_refresh`` replaces the data of touched streams only)
        atts = attested.get(s, [])
        prev = value.get(s) if touched is not None else None
        if prev is not None and touched is not None:
            got = _refreshed(prev, d, touched[s], set(units), atts, (old_attested or {}).get(s, atts))
            if got is not None:
                value[s] = got
                continue
        lim = _exact_limit(d)
        value[s] = StreamModel(d, code_models(d, atts, lim), lim)
    return value


def _refreshed(prev: StreamModel, d: StreamYearData, codes: set[str], units: set[str], attested: list[Attestation],
               old_attested: list[Attestation]) -> StreamModel | None:
    """``prev`` brought to the data ``d``: the codes ``codes`` refreshed part by part; ``None`` when the stream's
    exactness limit changes with the write (then it is built whole, as before)."""
    edges = prev.edges
    for c in codes:
        nodes = prev.codes[c].nodes if c in prev.codes else {}
        for u in units:
            before, after = nodes.get((u, c)), d.nodes.get((u, c))
            edges += (edge_count(after) if after is not None else 0) - (edge_count(before) if before is not None else 0)
    lim = _exact_limit(edges)
    if lim != prev.exact_limit:
        return None
    new_by, old_by = _of_codes(attested, codes), _of_codes(old_attested, codes)
    out = dict(prev.codes)
    for c in codes:
        atts = new_by.get(c, [])
        cm = out.get(c)
        if cm is None:  # a new code: its nodes are the reloaded units'
            nodes = {(u, c): d.nodes[(u, c)] for u in sorted(units) if (u, c) in d.nodes}
            if nodes:
                out[c] = CodeModel(c, d, nodes, atts, lim)
            continue
        got = cm.refreshed(d, units, atts, _attestation_pairs(old_by.get(c, []), atts))
        if got.nodes:
            out[c] = got
        else:
            del out[c]
    return StreamModel(d, out, lim)


def _of_codes(items: list[Attestation], codes: set[str]) -> dict[str, list[Attestation]]:
    out: dict[str, list[Attestation]] = {}
    for a in items:
        if a.code in codes:
            out.setdefault(a.code, []).append(a)
    return out


def _attestation_pairs(old: list[Attestation], new: list[Attestation]) -> set[tuple[str, str]]:
    """The (shipper, receiver) of one code whose attestation differs between ``old`` and ``new``."""
    ko = {(a.shipper, a.receiver): _attest_key([a]) for a in old}
    kn = {(a.shipper, a.receiver): _attest_key([a]) for a in new}
    return {p for p in ko.keys() | kn.keys() if ko.get(p) != kn.get(p)}


def _merge(old: StreamYearData, new: StreamYearData, units: set[str],
           had: Iterable[NodeKey] | None = None) -> StreamYearData:
    """``old`` with the nodes, ledgers and manifest counts of ``units`` replaced by those of ``new``. ``had``: the
    nodes ``units`` had in ``old`` (the model knows them; else they are looked for). Copied, not filtered: the
    write costs the stream's dicts copied in C, not a pass in Python (the reloaded nodes come last, so a merged
    year's nodes are those of a whole load in another order)."""
    nodes = dict(old.nodes)
    for k in (had if had is not None else [k for k in old.nodes if k[0] in units]):
        nodes.pop(k, None)
    nodes.update(new.nodes)
    ledgers, rows = dict(old.ledgers), dict(old.manifest_rows)
    for u in units:
        ledgers.pop(u, None)
        rows.pop(u, None)
    ledgers.update(new.ledgers)
    rows.update(new.manifest_rows)
    return StreamYearData(old.stream, old.year, nodes, new.units, ledgers, rows)


def _units_to_reload(changes: list[tuple[str, int | None]] | None) -> list[int] | None:
    """The ids of the units whose ledgers the changes name, sorted; ``None`` when one of them needs a whole reload
    (the log no longer holds the stamp, a bulk load, a ledger change that names no unit)."""
    if changes is None or any(k == "bulk" or (k == "ledger" and u is None) for k, u in changes):
        return None
    return sorted({u for k, u in changes if k == "ledger" and u is not None})


def _attestation_changes(old: dict[str, list[Attestation]], new: dict[str, list[Attestation]]) -> dict[str, set[str]]:
    """Per stream, the codes whose attestations differ between ``old`` and ``new``; a stream whose attestations did
    not change is left out (it keeps its model and its memoised views)."""
    touched: dict[str, set[str]] = {}
    for s in new:
        old_by = _by_code(old.get(s, []))
        new_by = _by_code(new[s])
        changed = {c for c in set(old_by) | set(new_by) if old_by.get(c) != new_by.get(c)}
        if changed:
            touched[s] = changed
    return touched


def _reload_units(session: Session, year: int, catalogue: Catalogue, hit: _Year, unit_ids: list[int],
                  datas: dict[str, StreamYearData], touched: dict[str, set[str]]) -> set[str]:
    """The units ``unit_ids`` reloaded into ``datas``; ``touched`` gains, per stream, the codes they had or have
    (a stream that only changed its ledgers or manifest counts is touched with no code). Returns their credit
    codes."""
    ccs = {str(c) for c in session.execute(select(UN.c.credit_code).where(UN.c.id.in_(unit_ids))).scalars()}
    fresh = load_year(session, year, catalogue, hit.units, unit_ids=unit_ids)  # the registry is as it was (same ukey)
    for s, d in fresh.items():
        m = hit.value.get(s)  # the units' old nodes, from the codes' node index (not a pass over the stream)
        had = [(u, c) for c, cm in m.codes.items() for u in ccs if (u, c) in cm.nodes] if m is not None else None
        gone = {k[1] for k in had} if had is not None else {k[1] for k in datas[s].nodes if k[0] in ccs}
        if d.nodes or gone:
            datas[s] = _merge(datas[s], d, ccs, had)
            touched.setdefault(s, set()).update(gone | {k[1] for k in d.nodes})
        elif d.ledgers or d.manifest_rows or any(u in datas[s].ledgers for u in ccs):
            datas[s] = _merge(datas[s], d, ccs, had)
            touched.setdefault(s, set())
    return ccs


def _refresh(session: Session, hit: _Year, year: int, catalogue: Catalogue, stamp: tuple[int, str] | None,
             ) -> _Year | None:
    """The cached year brought up to ``stamp`` by reloading only the units the changes name (and the
    manifests' attestations after a manifest step); ``None`` when a whole reload is needed."""
    if hit.stamp is None or stamp is None:
        return None
    changes = flowstore.changes_since(session, year, hit.stamp)
    unit_ids = _units_to_reload(changes)
    if changes is None or unit_ids is None:
        return None
    attested, manifests = hit.attested, hit.manifests
    touched: dict[str, set[str]] = {}
    if any(k == "manifest" for k, _u in changes):
        shippers = {u for k, u in changes if k == "manifest"}
        previous = (hit.manifests, hit.attested) if hit.manifests is not None and None not in shippers else None
        manifests, attested = load_manifests(session, year, catalogue, previous=previous,
                                             shipper_ids=sorted(u for u in shippers if u is not None))
        touched = _attestation_changes(hit.attested, attested)
    datas = {s: v.data for s, v in hit.value.items()}
    ccs = _reload_units(session, year, catalogue, hit, unit_ids, datas, touched) if unit_ids else set()
    return _Year(stamp, hit.ukey, hit.units, attested,
                 _model(datas, attested, touched, hit.value, units=ccs, old_attested=hit.attested), catalogue,
                 manifests)


def _by_code(items: list[Attestation]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[Attestation]] = {}
    for a in items:
        out.setdefault(a.code, []).append(a)
    return {c: _attest_key(v) for c, v in out.items()}


def _attest_key(items: list[Attestation]) -> list[tuple[Any, ...]]:
    return sorted((a.shipper, a.receiver, a.code, a.shipped, a.received, a.rejected, a.in_transit, a.returned,
                   a.manifest_count, tuple(a.manifests)) for a in items)


def year_flows(session: Session, year: int, *, catalogue: Catalogue | None = None,
               ) -> dict[str, StreamModel]:
    """``{stream: (data, graph, fate)}`` of a year: the one flow model, kept live (see ``_year``)."""
    return _year(session, year, catalogue).value


def _year(session: Session, year: int, catalogue: Catalogue | None = None) -> _Year:
    """The cached year of the one flow model, brought up to date.

    One cache per process, keyed by database and year; fresh while the year's newest ``flow_change`` is the
    one it was built at (one index look-up per read). After a write only the units it names are reloaded
    and, of the streams they touch, only the connected components of the codes' graphs that the write reaches
    are rebuilt (``nofei.flows.components``); after a manifest step, the year's attestations. The stamp
    carries a random token, so a database emptied and refilled (ids restarted) is never mistaken for the
    cached one, and another process's writes are seen on the next read. Built outside the lock (two threads
    may build the same year once each; the last one stays), entries are replaced, never changed in place."""
    catalogue = catalogue or Catalogue.default()
    bind = session.get_bind()
    key = (bind.engine.url.render_as_string(hide_password=True), year, catalogue.c1_class, catalogue.edition_for(year))
    stamp = flowstore.latest_change(session, year)
    ukey = version_key(session, year)
    hit = _kept(key)
    if _fresh(hit, stamp, ukey):
        return hit
    with _FLOWS.flight(key):  # one build per year at a time: a second reader waits for it, then reads its result
        hit = _kept(key)
        if hit is not None and hit.stamp != stamp:
            stamp = flowstore.latest_change(session, year)  # built meanwhile, maybe at a newer change
        if _fresh(hit, stamp, ukey):
            return hit
        with _no_cyclic_gc():
            entry = _refresh(session, hit, year, catalogue, stamp) if hit is not None and hit.ukey == ukey else None
            if entry is None:
                units = load_units(session)
                datas = load_year(session, year, catalogue, units)
                manifests, attested = load_manifests(session, year, catalogue)
                entry = _Year(stamp, ukey, units, attested, _model(datas, attested), catalogue, manifests)
                sides.prefetch(session, year, len(manifests))
        _FLOWS.put(key, _KEEP, entry)
    # the model is millions of long-lived objects: without this every full collection of the cyclic GC walks
    # them again (B2: ~0.4 s, several times per refresh); frozen objects are still freed by reference counting
    gc.freeze()
    return entry


_FLOWS: StampedCache[_Year] = StampedCache("flow model", CACHE_SIZE)
"""The flow models by (database, year, C1 class, edition). A ``_Year`` carries its own stamp and unit-registry key
(both checked by ``_fresh``), so the cache's stamp is a constant: an entry is kept until evicted or replaced."""
_KEEP = "kept"


def _kept(key: tuple[Any, ...]) -> _Year | None:
    e = _FLOWS.entry(key)
    return e.value if e is not None else None


def _fresh(hit: _Year | None, stamp: tuple[int, str] | None, ukey: tuple[Any, ...]) -> TypeGuard[_Year]:
    """The kept model is the year as of ``stamp`` (its newest flow change) with the same units registered."""
    return hit is not None and hit.ukey == ukey and hit.stamp == stamp and stamp is not None


WRITE_THROUGH = True
"""After a write commits, the writing process brings its cached model of the year up to date at once (the
same incremental ``_refresh`` a read would do), so the reads that follow find it fresh."""
AFTER_REFRESH: list[Callable[[int, dict[str, StreamModel], dict[str, StreamModel]], None]] = []
"""Called with (year, old model, new model) after a write-through refresh (``reports.indicators`` recomputes the
figures it had cached for the old model)."""


def _after_write(engine: Any, years: set[int]) -> None:
    """``flowstore.AFTER_COMMIT`` hook: refresh the cached years of this database that a commit changed, only
    incrementally (a change that needs a whole reload is left to the next read), and only if no one replaced
    the entry meanwhile (compare and set)."""
    if not WRITE_THROUGH:
        return
    url = engine.url.render_as_string(hide_password=True)
    todo = [(k, e.value) for k, e in _FLOWS.items() if isinstance(k, tuple) and k[0] == url and k[1] in years
            and e.value.catalogue is not None]
    done = False
    for key, hit in todo:
        with _FLOWS.flight(key):  # readers of this year wait for the refresh instead of building it beside it
            entry = _write_through(engine, key, hit)
        if entry is None:
            continue
        done = True
        for fn in list(AFTER_REFRESH):
            fn(int(key[1]), hit.value, entry.value)
    if done:
        gc.freeze()


def _write_through(engine: Any, key: tuple[Any, ...], hit: _Year) -> _Year | None:
    """The incremental refresh of one kept year after a commit, or None (replaced meanwhile, or it needs a
    whole reload, which is left to the next read)."""
    if _kept(key) is not hit or hit.catalogue is None:
        return None
    year = int(key[1])
    with Session(engine) as s:
        stamp = flowstore.latest_change(s, year)
        if stamp is None or stamp == hit.stamp or version_key(s, year) != hit.ukey:
            return None
        with _no_cyclic_gc():
            entry = _refresh(s, hit, year, hit.catalogue, stamp)
    if entry is not None:
        _FLOWS.put(key, _KEEP, entry)
    return entry


flowstore.AFTER_COMMIT.append(_after_write)


def stream_year(session: Session, stream: str, year: int, *, catalogue: Catalogue | None = None,
                ) -> StreamModel:
    """``(data, graph, fate)`` of one stream and year (all streams of the year are loaded and cached together)."""
    return year_flows(session, year, catalogue=catalogue)[stream]


def clear_cache() -> None:
    _FLOWS.clear()


def value_added(session: Session, year: int, region: str) -> Any:
    """工业增加值 (万元) of a region and year as a ``Decimal``, or ``None`` when not entered."""
    from decimal import Decimal, InvalidOperation

    from nofei.storage.tables import StatisticRow

    row = session.get(StatisticRow, (year, region))
    if row is None:
        return None
    try:
        return Decimal(row.industrial_value_added)
    except InvalidOperation:
        return None


def medical_institutions(session: Session, year: int, region: str) -> int | None:
    """医疗卫生机构总数 of a region and year (the coverage rate's denominator), or ``None`` when not entered."""
    from nofei.storage.tables import StatisticRow

    row = session.get(StatisticRow, (year, region))
    return None if row is None else row.medical_institutions


def hw01_permit_holders(session: Session, year: int) -> set[str]:
    """Credit codes of units holding, at some time in ``year``, a permit that covers HW01 (the category or one
    of its 841-00x-01 codes): the licensed disposers of ``medical_collection_coverage_rate``."""
    from datetime import date

    from nofei.storage.tables import PermitRow

    P = table_of(PermitRow)  # noqa: N806
    q = (select(UN.c.credit_code, P.c.waste_codes, P.c.valid_from, P.c.valid_to)
         .select_from(P.join(UN, P.c.unit_id == UN.c.id)))
    first, last = date(year, 1, 1), date(year, 12, 31)
    out: set[str] = set()
    for cc, codes, vf, vt in session.execute(q):
        if (vf is not None and vf > last) or (vt is not None and vt < first):
            continue
        if any(str(c).upper() == "HW01" or str(c).endswith("-01") for c in codes or ()):
            out.add(cc)
    return out


def ledger_refs(session: Session, ids: set[int] | list[int]) -> dict[int, dict[str, Any]]:
    """Ledger versions by id: unit, month, version, sha256, upload time (for lineage)."""
    out: dict[int, dict[str, Any]] = {}
    ids = sorted(ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i:i + 900]
        q = (select(L.c.id, UN.c.credit_code, L.c.month, L.c.version, L.c.is_current, L.c.sha256, L.c.uploaded_at,
                    L.c.filename)
             .select_from(L.join(UN, L.c.unit_id == UN.c.id)).where(L.c.id.in_(chunk)))
        for r in session.execute(q):
            out[r.id] = {"ledger_id": r.id, "unit": r.credit_code, "month": r.month, "version": r.version,
                         "is_current": bool(r.is_current), "sha256": r.sha256, "filename": r.filename,
                         "uploaded_at": r.uploaded_at}
    return out


def unit_month_rows(session: Session, unit_id: int, year: int, catalogue: Catalogue) -> list[dict[str, Any]]:
    """Per code and month of a unit's current ledgers of ``year``: the balance terms in kg
    (open, generated, received, utilised, disposed, transferred, close) and the ledger version."""
    cur = and_(L.c.unit_id == unit_id, L.c.year == year, L.c.is_current.is_(True))
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def slot(month: str, code: str) -> dict[str, Any]:
        return rows.setdefault((code, month), {"code": code, "month": month, "stream": None, "open": 0,
                                               "generated": 0, "received": 0, "utilised": 0, "disposed": 0,
                                               "transferred": 0, "close": 0, "ledger_id": None, "version": None})

    q = (select(L.c.id, L.c.month, L.c.version, ST.c.code, ST.c.stream, ST.c.open_kg, ST.c.generated_kg,
                ST.c.close_kg).select_from(ST.join(L, ST.c.ledger_id == L.c.id)).where(cur))
    for r in session.execute(q):
        s = slot(r.month, r.code)
        s.update(stream=r.stream, ledger_id=r.id, version=r.version)
        s["open"] += int(r.open_kg)
        s["generated"] += int(r.generated_kg)
        s["close"] += int(r.close_kg)
    tq = (select(L.c.month, TR.c.code, TR.c.method, func.sum(TR.c.qty_kg))
          .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(cur).group_by(L.c.month, TR.c.code, TR.c.method))
    for month, code, method, qty in session.execute(tq):
        key = "utilised" if catalogue.method_class(method) == "utilisation" else "disposed"
        slot(month, code)[key] += int(qty)
    xq = (select(L.c.month, TX.c.code, TX.c.direction, func.sum(TX.c.qty_kg))
          .select_from(TX.join(L, TX.c.ledger_id == L.c.id)).where(cur)
          .group_by(L.c.month, TX.c.code, TX.c.direction))
    for month, code, direction, qty in session.execute(xq):
        slot(month, code)["received" if direction == "in" else "transferred"] += int(qty)
    return [rows[k] for k in sorted(rows)]


def manifest_sides(session: Session, year: int, catalogue: Catalogue | None = None) -> ManifestSides:
    """The manifests' sides the year's model holds: those its edges' attestations are folded from (and those of a
    shipper without a ledger of the code, whose attestation has no edge yet)."""
    m = _year(session, year, catalogue).manifests
    return m if m is not None else sides.manifest_sides(session, year)
