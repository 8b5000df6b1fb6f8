"""The flow model's own tables: per-ledger edge summaries and the change log that stamps the cache.

Repository functions only (SQL lives here): ``summarise_ledgers`` writes what ledger versions add to the
flow graph, in the caller's transaction; ``note_change`` records that a year's graph changed (a manifest
step, a bulk load); ``latest_change`` / ``changes_since`` are what ``nofei.storage.flowdata`` checks to know
whether its cached model is fresh and which units to reload.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, and_, case, event, func, insert, literal, select
from sqlalchemy.orm import Session

from nofei.storage.tables import (
    FlowChangeRow,
    FlowEdgeRow,
    FlowYearEdgeRow,
    LedgerRow,
    TransferEntryRow,
    table_of,
)

FE = table_of(FlowEdgeRow)
FC = table_of(FlowChangeRow)
FY = table_of(FlowYearEdgeRow)
TX = table_of(TransferEntryRow)
L = table_of(LedgerRow)


def wellformed(dialect: str, col: Any) -> Any:
    """SQL for "the 联单编号 is 14 digits" (ledger-workbook.md), per dialect."""
    c = func.trim(col)
    if dialect == "postgresql":
        return c.op("~")(literal("^[0-9]{14}$"))
    return and_(func.length(c) == 14, c.op("NOT GLOB")(literal("*[^0-9]*")))


def _summary_select(dialect: str, where: Any) -> Any:
    ok = case((and_(TX.c.direction == "out", TX.c.manifest_no.is_not(None), wellformed(dialect, TX.c.manifest_no)), 1),
              else_=0)
    return (select(TX.c.ledger_id, L.c.year, TX.c.direction, TX.c.stream, TX.c.code, TX.c.counterpart,
                   TX.c.planned_method, func.sum(TX.c.qty_kg), func.count(), func.sum(ok))
            .select_from(TX.join(L, L.c.id == TX.c.ledger_id)).where(where)
            .group_by(TX.c.ledger_id, L.c.year, TX.c.direction, TX.c.stream, TX.c.code, TX.c.counterpart,
                      TX.c.planned_method))


_COLS = ["ledger_id", "year", "direction", "stream", "code", "counterpart", "method", "kg", "rows", "wellformed"]


def summarise_ledgers(session: Session | Connection, ledger_ids: Iterable[int]) -> None:
    """Write the edge summaries of ledger versions whose transfer rows are stored (same transaction), and note
    the change of each one's year and unit. One INSERT … SELECT … GROUP BY per 900 ledgers."""
    ids = sorted(set(ledger_ids))
    if not ids:
        return
    conn = session.connection() if isinstance(session, Session) else session
    dialect = conn.dialect.name
    years: set[int] = set()
    for k in range(0, len(ids), 900):
        chunk = ids[k:k + 900]
        conn.execute(insert(FE).from_select(_COLS, _summary_select(dialect, TX.c.ledger_id.in_(chunk))))
        units = conn.execute(select(L.c.year, L.c.unit_id).where(L.c.id.in_(chunk)).distinct()).all()
        years.update(int(y) for y, _u in units)
        _year_edges(conn, units)
        if len(units) > 50:  # a bulk load: reload the years
            note_changes(conn, [(y, "bulk", None) for y in sorted({y for y, _u in units})])
        else:
            note_changes(conn, [(y, "ledger", u) for y, u in units])
    _watch(session, years)


def summarise_version(session: Session, ledger_id: int, year: int, unit_id: int,
                      edges: list[tuple[str, str, str, str, str | None, int, int, int]]) -> None:
    """Write one ledger version's edge summaries given as (direction, stream, code, counterpart, method, kg,
    rows, well-formed rows) — summed while its workbook was read — then its unit's year rows and the change,
    as ``summarise_ledgers`` does from the stored rows."""
    conn = session.connection()
    if edges:
        conn.execute(insert(FE), [dict(zip(_COLS, (ledger_id, year, *e), strict=True)) for e in edges])
    _year_edges(conn, [(year, unit_id)])
    note_changes(session, [(year, "ledger", unit_id)])  # the session: write-through after commit (_watch)


_YCOLS = ["year", "unit_id", "direction", "stream", "code", "counterpart", "kg", "rows", "wellformed"]


def _year_select(where: Any) -> Any:
    return (select(L.c.year, L.c.unit_id, FE.c.direction, FE.c.stream, FE.c.code, FE.c.counterpart, func.sum(FE.c.kg),
                   func.sum(FE.c.rows), func.sum(FE.c.wellformed))
            .select_from(FE.join(L, L.c.id == FE.c.ledger_id)).where(L.c.is_current.is_(True), where)
            .group_by(L.c.year, L.c.unit_id, FE.c.direction, FE.c.stream, FE.c.code, FE.c.counterpart))


def _year_edges(conn: Connection, units: Iterable[tuple[int, int]]) -> None:
    """Rewrite the year rows of (year, unit) pairs from their current versions' summaries."""
    by_year: dict[int, list[int]] = {}
    for y, u in units:
        by_year.setdefault(int(y), []).append(int(u))
    for y, us in by_year.items():
        for k in range(0, len(us), 900):
            part = us[k:k + 900]
            conn.execute(FY.delete().where(FY.c.year == y, FY.c.unit_id.in_(part)))
            conn.execute(insert(FY).from_select(_YCOLS, _year_select(and_(L.c.year == y, L.c.unit_id.in_(part)))))


def backfill(conn: Connection) -> None:
    """The summaries of every stored ledger version (the migration that adds the table, benchmarks' bulk data)."""
    conn.execute(FE.delete())
    conn.execute(FY.delete())
    conn.execute(insert(FE).from_select(_COLS, _summary_select(conn.dialect.name, literal(True))))
    conn.execute(insert(FY).from_select(_YCOLS, _year_select(literal(True))))
    years = conn.execute(select(L.c.year).distinct()).scalars().all()
    note_changes(conn, [(y, "bulk", None) for y in years])


AFTER_COMMIT: list[Callable[[Any, set[int]], None]] = []
"""Called with (engine, years) once a session's transaction that changed those years' flow graph has committed
(``nofei.storage.flowdata`` brings its cached model of them up to date there: write-through)."""
_PENDING = "nofei.flow_years"
_log = logging.getLogger("nofei.flows")


def _watch(session: Session | Connection, years: Iterable[int]) -> None:
    """Remember the years a session's transaction changes; run ``AFTER_COMMIT`` when it commits."""
    if not isinstance(session, Session):
        return
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()
        if not event.contains(session, "after_commit", _after_commit):
            event.listen(session, "after_commit", _after_commit)
            event.listen(session, "after_rollback", _after_rollback)
    pending.update(int(y) for y in years)


def _after_commit(session: Session) -> None:
    years = session.info.pop(_PENDING, None)
    if not years or not AFTER_COMMIT:
        return
    engine = session.get_bind().engine
    for hook in list(AFTER_COMMIT):
        try:
            hook(engine, set(years))
        except Exception:  # the write is committed; a cache the hook could not warm is refreshed by the next read
            _log.exception("flow model write-through failed")


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def note_changes(session: Session | Connection, changes: list[tuple[int, str, int | None]]) -> None:
    """Record (year, kind, unit id or None) changes of the flow graph, each with a fresh random token."""
    if changes:
        session.execute(insert(FC), [{"year": y, "kind": k, "unit_id": u, "token": uuid.uuid4().hex}
                                     for y, k, u in changes])
        _watch(session, {y for y, _k, _u in changes})


def note_change(session: Session | Connection, year: int, kind: str, unit_id: int | None = None) -> None:
    note_changes(session, [(year, kind, unit_id)])


def latest_change(session: Session, year: int) -> tuple[int, str] | None:
    """The stamp of ``year``'s flow graph: (id, token) of its newest change, or None (never changed)."""
    r = session.execute(select(FC.c.id, FC.c.token).where(FC.c.year == year).order_by(FC.c.id.desc()).limit(1)).first()
    return None if r is None else (int(r[0]), str(r[1]))


def changes_since(session: Session, year: int, stamp: tuple[int, str]) -> list[tuple[str, int | None]] | None:
    """(kind, unit id) of the changes of ``year`` after ``stamp``, or None when ``stamp`` is not in the log any
    more (the database was emptied or replaced): then everything must be reloaded."""
    got = session.execute(select(FC.c.token).where(FC.c.id == stamp[0])).scalar()
    if got != stamp[1]:
        return None
    return [(k, u) for k, u in session.execute(select(FC.c.kind, FC.c.unit_id)
                                                 .where(FC.c.year == year, FC.c.id > stamp[0]).order_by(FC.c.id))]


def edge_rows(session: Session, year: int, unit_ids: Any = None) -> Any:
    """(unit id, direction, stream, code, counterpart, kg, rows, well-formed rows) of ``year`` over the units'
    current versions (optionally only some units)."""
    q = select(FY.c.unit_id, FY.c.direction, FY.c.stream, FY.c.code, FY.c.counterpart, FY.c.kg, FY.c.rows,
               FY.c.wellformed).where(FY.c.year == year)
    if unit_ids is not None:
        q = q.where(FY.c.unit_id.in_(unit_ids))
    return session.execute(q)
