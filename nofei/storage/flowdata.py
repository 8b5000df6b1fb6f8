"""Load the per-(stream, year) flow inputs from the database, and cache graph and fates.

The sums run in SQL (GROUP BY over the transfer rows: a city-year can hold a million of them);
Python only folds the grouped rows into ``nofei.flows.model.StreamYearData``. Only the current
version of each accepted ledger counts (``ledger.is_current``).

``stream_year`` caches ``(data, graph, fate)`` per (database, year, C1 class) for all streams and
rebuilds when a ledger of that year or the units registry changes: the key carries
``max(id)``, ``count``, ``count(current)`` and ``max(uploaded_at)`` of that year's ledgers and
``count``/``max(updated_at)`` of units — two cheap indexed aggregates per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import networkx as nx
from sqlalchemy import and_, case, func, literal, literal_column, select
from sqlalchemy.orm import Session

from nofei.catalogue import STREAMS, Catalogue
from nofei.flows.fate import FateResult, attribute
from nofei.flows.graph import build_flow_graph
from nofei.flows.model import StreamYearBuilder, StreamYearData, UnitInfo, manifest_exempt
from nofei.storage.tables import (
    LedgerRow,
    StockEntryRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
    table_of,
)

_CACHE: OrderedDict[tuple[Any, ...], dict[str, tuple[StreamYearData, nx.DiGraph, FateResult]]] = OrderedDict()
_LOCK = threading.Lock()
CACHE_SIZE = 6  # years

L = table_of(LedgerRow)
ST = table_of(StockEntryRow)
TR = table_of(TreatmentEntryRow)
TX = table_of(TransferEntryRow)
UN = table_of(UnitRow)


def _wellformed(session: Session) -> Any:
    """SQL for "the 联单编号 is 14 digits" (ledger-workbook.md), per dialect."""
    col = func.trim(TX.c.manifest_no)
    if session.get_bind().dialect.name == "postgresql":
        return col.op("~")(literal("^[0-9]{14}$"))
    return and_(func.length(col) == 14, col.op("NOT GLOB")(literal("*[^0-9]*")))


def load_units(session: Session) -> dict[str, UnitInfo]:
    rows = session.execute(select(UN.c.credit_code, UN.c.name, UN.c.district, UN.c.park, UN.c.roles, UN.c.unit_type,
                                  UN.c.small_clinic))
    return {r.credit_code: UnitInfo(r.credit_code, r.name, r.district, r.park, tuple(r.roles or ()),
                                    r.unit_type or "industrial", bool(r.small_clinic)) for r in rows}


def load_year(session: Session, year: int, catalogue: Catalogue,
              units: dict[str, UnitInfo] | None = None) -> dict[str, StreamYearData]:
    """Aggregate the current ledgers of ``year`` into the inputs of every stream's graph (indicators.md §1).

    One pass over each entry table for all streams. The transfer rows are filtered by
    ``ledger_id + 0 IN (current ledgers of the year)`` so that SQLite scans the table once instead
    of probing the ledger-id index a million times (PostgreSQL makes it a hash semi-join anyway);
    rows are grouped per ledger in SQL and folded per unit in Python.
    """
    units = units if units is not None else load_units(session)
    code_of = {r.id: r.credit_code for r in session.execute(select(UN.c.id, UN.c.credit_code))}
    builders = {s: StreamYearBuilder(s, year, units) for s in STREAMS}
    cur = and_(L.c.year == year, L.c.is_current.is_(True))
    unit_of = {lid: code_of[uid] for lid, uid in session.execute(select(L.c.id, L.c.unit_id).where(cur))}
    current = select(L.c.id).where(cur)

    q = (select(ST.c.ledger_id, L.c.month, ST.c.stream, ST.c.code, ST.c.open_kg, ST.c.generated_kg, ST.c.close_kg)
         .select_from(ST.join(L, ST.c.ledger_id == L.c.id)).where(cur))
    for lid, month, stream, code, o, g, c in session.execute(q):
        b = builders.get(stream)
        if b is None:
            continue
        u = unit_of[lid]
        b.stock(u, month, code, int(o), int(g), int(c))
        b.ledger(u, lid)

    q = (select(L.c.unit_id, TR.c.stream, TR.c.code, TR.c.method, func.sum(TR.c.qty_kg))
         .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(cur)
         .group_by(L.c.unit_id, TR.c.stream, TR.c.code, TR.c.method))
    for trow in session.execute(q):
        if trow[1] in builders:
            builders[trow[1]].treatment(code_of[trow[0]], trow[2], catalogue.method_class(trow[3]) == "utilisation",
                                        int(trow[4]))

    ok = case((and_(TX.c.direction == "out", TX.c.manifest_no.is_not(None), _wellformed(session)), 1), else_=0)
    lid = (TX.c.ledger_id + literal_column("0")).label("lid")
    xq = (select(lid, TX.c.direction, TX.c.stream, TX.c.code, TX.c.counterpart, func.sum(TX.c.qty_kg),
                func.count(), func.sum(ok))
         .where(lid.in_(current))
         .group_by(lid, TX.c.direction, TX.c.stream, TX.c.code, TX.c.counterpart))
    out: dict[tuple[str, str, str, str], list[int]] = {}
    into: dict[tuple[str, str, str], int] = {}
    for xlid, direction, stream, code, counterpart, qty, n, good in session.execute(xq):
        u = unit_of[xlid]
        if direction == "out":
            k = (u, stream, code, counterpart)
            a = out.get(k)
            if a is None:
                out[k] = [int(qty), int(n), int(good or 0)]
            else:
                a[0] += int(qty)
                a[1] += int(n)
                a[2] += int(good or 0)
        else:
            k2 = (u, stream, code)
            into[k2] = into.get(k2, 0) + int(qty)
    cat = catalogue.for_year(year)
    exempt: dict[tuple[str, str], bool] = {}
    for (olid, ostream, ocode, ocp), (oqty, on, ogood) in out.items():
        if ostream in builders:
            # a group is one unit and one code, so the 豁免清单 decides for all its rows at once
            ex = exempt.get((olid, ocode))
            if ex is None:
                ex = exempt[(olid, ocode)] = manifest_exempt(cat, ocode, units.get(olid))
            builders[ostream].transfer_out(olid, ocode, ocp, int(oqty), rows=0 if ex else on,
                                           wellformed=0 if ex else int(ogood))
    for (ilid, istream, icode), iqty in into.items():
        if istream in builders:
            builders[istream].transfer_in(ilid, icode, int(iqty))
    return {s: b.build() for s, b in builders.items()}


def load_stream_year(session: Session, stream: str, year: int, catalogue: Catalogue,
                     units: dict[str, UnitInfo] | None = None) -> StreamYearData:
    """The inputs of one stream's graph (see ``load_year``)."""
    return load_year(session, year, catalogue, units)[stream]


def version_key(session: Session, year: int) -> tuple[Any, ...]:
    """What changes whenever a ledger of ``year`` (or the units registry) changes."""
    lv = session.execute(select(func.max(L.c.id), func.count(), func.sum(case((L.c.is_current.is_(True), 1), else_=0)),
                                func.max(L.c.uploaded_at)).where(L.c.year == year)).one()
    uv = session.execute(select(func.count(), func.max(UN.c.updated_at), func.max(UN.c.id))).one()
    return (*[str(x) for x in lv], *[str(x) for x in uv])


def year_flows(session: Session, year: int, *, catalogue: Catalogue | None = None,
               ) -> dict[str, tuple[StreamYearData, nx.DiGraph, FateResult]]:
    """``{stream: (data, graph, fate)}`` of a year, cached until a ledger of that year changes."""
    catalogue = catalogue or Catalogue.default()
    bind = session.get_bind()
    key = (bind.engine.url.render_as_string(hide_password=True), year, catalogue.c1_class, catalogue.edition_for(year),
           *version_key(session, year))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    datas = load_year(session, year, catalogue)
    value = {s: (d, build_flow_graph(d), attribute(d)) for s, d in datas.items()}
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def stream_year(session: Session, stream: str, year: int, *, catalogue: Catalogue | None = None,
                ) -> tuple[StreamYearData, nx.DiGraph, FateResult]:
    """``(data, graph, fate)`` of one stream and year (all streams of the year are loaded and cached together)."""
    return year_flows(session, year, catalogue=catalogue)[stream]


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


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
