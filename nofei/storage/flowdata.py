"""Load the per-(stream, year) flow inputs from the database, and cache graph and fates.

The sums run in SQL (GROUP BY over the transfer rows: a city-year can hold a million of them);
Python only folds the grouped rows into ``nofei.flows.model.StreamYearData``. Only the current
version of each accepted ledger counts (``ledger.is_current``).

``stream_year`` caches ``(data, graph, fate)`` per (database, stream, year, C1 class) and
rebuilds when a ledger of that year or the units registry changes: the key carries
``max(id)``, ``count``, ``count(current)`` and ``max(uploaded_at)`` of that year's ledgers and
``count``/``max(updated_at)`` of units — two cheap indexed aggregates per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import networkx as nx
from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from nofei.catalogue import Catalogue
from nofei.flows.fate import FateResult, attribute
from nofei.flows.graph import build_flow_graph
from nofei.flows.model import StreamYearBuilder, StreamYearData, UnitInfo
from nofei.storage.tables import LedgerRow, StockEntryRow, TransferEntryRow, TreatmentEntryRow, UnitRow

_CACHE: OrderedDict[tuple[Any, ...], tuple[StreamYearData, nx.DiGraph, FateResult]] = OrderedDict()
_LOCK = threading.Lock()
CACHE_SIZE = 24

L = LedgerRow.__table__
ST = StockEntryRow.__table__
TR = TreatmentEntryRow.__table__
TX = TransferEntryRow.__table__
UN = UnitRow.__table__


def _wellformed(session: Session) -> Any:
    """SQL for "the 联单编号 is 14 digits" (ledger-workbook.md), per dialect."""
    col = func.trim(TX.c.manifest_no)
    if session.get_bind().dialect.name == "postgresql":
        return col.op("~")(literal("^[0-9]{14}$"))
    return and_(func.length(col) == 14, col.op("NOT GLOB")(literal("*[^0-9]*")))


def load_units(session: Session) -> dict[str, UnitInfo]:
    rows = session.execute(select(UN.c.credit_code, UN.c.name, UN.c.district, UN.c.park, UN.c.roles))
    return {r.credit_code: UnitInfo(r.credit_code, r.name, r.district, r.park, tuple(r.roles or ())) for r in rows}


def load_stream_year(session: Session, stream: str, year: int, catalogue: Catalogue,
                     units: dict[str, UnitInfo] | None = None) -> StreamYearData:
    """Aggregate the current ledgers of ``year`` into the inputs of one stream's graph (indicators.md §1)."""
    units = units if units is not None else load_units(session)
    code_of = {r.id: r.credit_code for r in session.execute(select(UN.c.id, UN.c.credit_code))}
    b = StreamYearBuilder(stream, year, units)
    cur = and_(L.c.year == year, L.c.is_current.is_(True))

    q = (select(L.c.unit_id, L.c.id, L.c.month, ST.c.code, ST.c.open_kg, ST.c.generated_kg, ST.c.close_kg)
         .select_from(ST.join(L, ST.c.ledger_id == L.c.id)).where(cur, ST.c.stream == stream))
    for unit_id, lid, month, code, o, g, c in session.execute(q):
        u = code_of[unit_id]
        b.stock(u, month, code, int(o), int(g), int(c))
        b.ledger(u, lid)

    q = (select(L.c.unit_id, TR.c.code, TR.c.method, func.sum(TR.c.qty_kg))
         .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(cur, TR.c.stream == stream)
         .group_by(L.c.unit_id, TR.c.code, TR.c.method))
    for unit_id, code, method, qty in session.execute(q):
        b.treatment(code_of[unit_id], code, catalogue.method_class(method) == "utilisation", int(qty))

    good = func.sum(case((_wellformed(session), 1), else_=0))
    q = (select(L.c.unit_id, TX.c.code, TX.c.counterpart, func.sum(TX.c.qty_kg), func.count(), good)
         .select_from(TX.join(L, TX.c.ledger_id == L.c.id))
         .where(cur, TX.c.stream == stream, TX.c.direction == "out")
         .group_by(L.c.unit_id, TX.c.code, TX.c.counterpart))
    for unit_id, code, counterpart, qty, n, ok in session.execute(q):
        b.transfer_out(code_of[unit_id], code, counterpart, int(qty), rows=int(n), wellformed=int(ok or 0))

    q = (select(L.c.unit_id, TX.c.code, func.sum(TX.c.qty_kg))
         .select_from(TX.join(L, TX.c.ledger_id == L.c.id))
         .where(cur, TX.c.stream == stream, TX.c.direction == "in")
         .group_by(L.c.unit_id, TX.c.code))
    for unit_id, code, qty in session.execute(q):
        b.transfer_in(code_of[unit_id], code, int(qty))
    return b.build()


def version_key(session: Session, year: int) -> tuple[Any, ...]:
    """What changes whenever a ledger of ``year`` (or the units registry) changes."""
    lv = session.execute(select(func.max(L.c.id), func.count(), func.sum(case((L.c.is_current.is_(True), 1), else_=0)),
                                func.max(L.c.uploaded_at)).where(L.c.year == year)).one()
    uv = session.execute(select(func.count(), func.max(UN.c.updated_at), func.max(UN.c.id))).one()
    return (*[str(x) for x in lv], *[str(x) for x in uv])


def stream_year(session: Session, stream: str, year: int, *, catalogue: Catalogue | None = None,
                ) -> tuple[StreamYearData, nx.DiGraph, FateResult]:
    """``(data, graph, fate)`` of one stream and year, cached until a ledger of that year changes."""
    catalogue = catalogue or Catalogue.default()
    bind = session.get_bind()
    key = (bind.url.render_as_string(hide_password=True), stream, year, catalogue.c1_class,
           *version_key(session, year))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    data = load_stream_year(session, stream, year, catalogue)
    value = (data, build_flow_graph(data), attribute(data))
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


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
    q = (select(L.c.month, TR.c.code, TR.c.method, func.sum(TR.c.qty_kg))
         .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(cur).group_by(L.c.month, TR.c.code, TR.c.method))
    for month, code, method, qty in session.execute(q):
        key = "utilised" if catalogue.method_class(method) == "utilisation" else "disposed"
        slot(month, code)[key] += int(qty)
    q = (select(L.c.month, TX.c.code, TX.c.direction, func.sum(TX.c.qty_kg))
         .select_from(TX.join(L, TX.c.ledger_id == L.c.id)).where(cur)
         .group_by(L.c.month, TX.c.code, TX.c.direction))
    for month, code, direction, qty in session.execute(q):
        slot(month, code)["received" if direction == "in" else "transferred"] += int(qty)
    return [rows[k] for k in sorted(rows)]
