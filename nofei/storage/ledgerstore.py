"""Persistence of monthly ledger versions: the ledger row, its original file and its entries.

Entries are bulk-inserted with SQLAlchemy Core (one ``executemany`` per table) or, on PostgreSQL,
with ``COPY … FROM STDIN``: a 100,000-row 转出 sheet must be stored in about the time
python-calamine takes to read it (issue 3; perf-baselines.md §3: Core is 8–12× faster than one ORM
object per row, COPY another 2× on PostgreSQL). Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.domain.ledger import LedgerDraft
from nofei.domain.transfer_columns import EdgeSums, TransferBlock, TransferColumns, block_tuples, row_counts
from nofei.problems import Problem
from nofei.storage import flowstore
from nofei.storage.engine import in_chunks, is_postgres
from nofei.storage.tables import (
    LedgerFileRow,
    LedgerRow,
    StockEntryRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
    table_of,
)

_STOCK = table_of(StockEntryRow)
_TREAT = table_of(TreatmentEntryRow)
_TRANSFER = table_of(TransferEntryRow)
_FILE = table_of(LedgerFileRow)

TRANSFER_COLUMNS = ("ledger_id", "row", "direction", "day", "code", "stream", "qty_kg", "counterpart",
                    "counterpart_name", "manifest_no", "carrier", "planned_method", "note")
_CHUNK = 20_000
_TRANSFER_PG_TYPES = ["int4", "int4", "varchar", "date", "varchar", "varchar", "int8", "varchar", "varchar", "varchar",
                      "varchar", "varchar", "varchar"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def problem_dict(p: Problem) -> dict[str, Any]:
    """``Problem.to_dict`` without ``dataclasses.asdict``'s deep copy (a receipt may carry hundreds)."""
    d = {f: getattr(p, f) for f in ("code", "message", "message_en", "sheet", "row", "column", "header", "value",
                                     "field", "severity")}
    if d["value"] is not None and not isinstance(d["value"], str | int | float | bool):
        d["value"] = str(d["value"])
    return d


def lock_unit(session: Session, unit_id: int) -> None:
    """Serialise concurrent uploads for one unit so version numbers are gap-free and a byte-identical
    re-upload sees the version it repeats (PostgreSQL row lock, held to the end of the transaction;
    SQLite's ``BEGIN IMMEDIATE`` already serialises writers). Taking it twice in one transaction is free."""
    if is_postgres(session):
        session.execute(select(UnitRow.id).where(UnitRow.id == unit_id).with_for_update())


def insert_ledger_version(
    session: Session,
    *,
    unit: UnitRow,
    draft: LedgerDraft,
    sha256: str,
    content: bytes,
    filename: str,
    content_type: str,
    uploaded_by: str,
    warnings: list[Problem],
    totals: dict[str, Any],
) -> LedgerRow:
    """Store ``draft`` as the new current version of (unit, month) and return its row.

    version = previous max + 1; the previous current version is flipped to ``is_current=False``;
    the original bytes go to ``ledger_file``; entries are bulk-inserted.
    """
    row = begin_version(session, unit=unit, draft=draft, sha256=sha256, size=len(content), filename=filename,
                       uploaded_by=uploaded_by)
    complete_version(session, row, draft=draft, content=content, content_type=content_type, warnings=warnings,
                     totals=totals)
    return row


def begin_version(session: Session, *, unit: UnitRow, draft: LedgerDraft, sha256: str, size: int, filename: str,
                  uploaded_by: str) -> LedgerRow:
    """The version row of (unit, month) with the next number, made current (the rest: ``_complete_version``)."""
    unit_id = int(unit.id or 0)
    lock_unit(session, unit_id)
    prev = session.execute(
        select(func.max(LedgerRow.version)).where(LedgerRow.unit_id == unit_id, LedgerRow.month == draft.month)
    ).scalar_one()
    session.execute(
        update(LedgerRow)
        .where(LedgerRow.unit_id == unit_id, LedgerRow.month == draft.month, LedgerRow.is_current == True)  # noqa: E712
        .values(is_current=False)
    )
    row = LedgerRow(
        unit_id=unit_id, month=draft.month, year=draft.year, version=int(prev or 0) + 1, is_current=True,
        sha256=sha256, filename=filename[:255], size=size, uploaded_at=_utcnow(), uploaded_by=uploaded_by[:200],
        reporter=draft.reporter[:200], phone=draft.phone[:64], unit_name=draft.unit_name[:200],
        row_counts={}, totals={}, warnings=[],
    )
    session.add(row)
    session.flush()
    return row


def insert_file(session: Session, ledger_id: int, content: bytes, content_type: str) -> None:
    """The original upload of a version, kept byte for byte."""
    session.execute(insert(_FILE), [{"ledger_id": ledger_id, "content_type": content_type[:120], "content": content}])


def complete_version(session: Session, row: LedgerRow, *, draft: LedgerDraft, content: bytes, content_type: str,
                     warnings: list[Problem], totals: dict[str, Any], streamed: bool = False,
                     edges: EdgeSums | None = None) -> None:
    """Counts, totals and warnings of a begun version, its original file and its entries (``streamed``: the
    file and the 转出/转入 rows were stored while the workbook was read, by ``insert_file`` and a
    ``TransferWriter``; ``edges``: the flow-edge sums that writer made of them)."""
    lid = int(row.id or 0)
    row.row_counts = row_counts(draft)
    row.totals = totals
    row.warnings = [problem_dict(w) for w in warnings]
    session.add(row)
    if not streamed:
        insert_file(session, lid, content, content_type)
    if draft.stocks:
        session.execute(insert(_STOCK), [
            {"ledger_id": lid, "row": s.ref.row if s.ref else None, "code": s.code, "stream": s.stream,
             "name": s.name[:500], "open_kg": s.open_kg, "generated_kg": s.generated_kg, "close_kg": s.close_kg,
             "note": s.note[:500], "form": s.form[:20], "harmful_components": s.harmful_components[:500]}
            for s in draft.stocks
        ])
    if draft.treatments:
        session.execute(insert(_TREAT), [
            {"ledger_id": lid, "row": t.ref.row if t.ref else None, "code": t.code, "stream": t.stream,
             "method": t.method, "qty_kg": t.qty_kg, "product": t.product[:500], "note": t.note[:500]}
            for t in draft.treatments
        ])
    tr = draft.transfers
    if tr and not streamed:
        cols = tr if isinstance(tr, TransferColumns) else TransferColumns(_lines=list(tr))
        _insert_transfers(session.connection(), lid, cols)
    session.flush()
    # what the version adds to the flow graph, same transaction: from the sums made while reading, else by SQL
    if edges is not None:
        flowstore.summarise_version(session, lid, int(row.year), int(row.unit_id), edges.rows())
    else:
        flowstore.summarise_ledgers(session, [lid])


def _transfer_tuples(lid: int, cols: TransferColumns, *, iso_days: bool = False) -> list[tuple[Any, ...]]:
    return cols.insert_tuples(lid, iso_days=iso_days)


TRANSFER_INSERT = "auto"
"""How ``transfer_entry`` rows are written: ``auto`` (COPY on PostgreSQL, the driver's executemany on
SQLite) or ``core`` (SQLAlchemy Core ``insert()`` executemany everywhere). The benchmark compares them."""


_QUOTED = ", ".join(f'"{c}"' for c in TRANSFER_COLUMNS)
_COPY_SQL = f"COPY transfer_entry ({_QUOTED}) FROM STDIN (FORMAT BINARY)"
_SQLITE_INSERT = (f"INSERT INTO transfer_entry ({', '.join(TRANSFER_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(TRANSFER_COLUMNS))})")
_END = object()


class _Aborted(Exception):
    pass


class TransferWriter:
    """Writes a begun version's 转出/转入 rows on a second thread while the reader is still checking the rest
    of the sheet (issue 3, B1): the database's work (COPY parsing, heap and index inserts on PostgreSQL, the
    b-tree inserts of SQLite, which releases the GIL) then overlaps the reader's Python work on the other core.

    It uses the unit of work's own connection, inside its transaction: nothing is committed here, and an
    upload rejected after some chunks were written is rolled back whole by the caller. The caller must not
    use the session between ``start`` and ``close``/``abort`` (one connection, one user at a time)."""

    def __init__(self, session: Session, ledger_id: int) -> None:
        self.ledger_id = ledger_id
        self.rows = 0
        self.edges = EdgeSums()  # the version's flow-edge summary, summed on the caller's thread as chunks come
        self._conn = session.connection()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"nofei-transfer-writer-{ledger_id}", daemon=True)
        self._thread.start()

    def put(self, block: TransferBlock) -> None:
        """Queue a chunk of checked rows (returns at once)."""
        if len(block):
            self._queue.put(block)
            self.edges.add(block)

    def close(self) -> int:
        """Wait until every queued row is written; re-raise what failed on the writer thread. Returns the rows."""
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.rows

    def abort(self) -> None:
        """Stop writing (the upload was rejected); the caller rolls the transaction back."""
        self._queue.put(_Aborted)
        self._thread.join()

    def _blocks(self) -> Any:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _Aborted:
                raise _Aborted()
            yield item

    def _run(self) -> None:
        try:
            self.rows = _store_rows(self._conn, lambda iso_days: (
                block_tuples(b, self.ledger_id, iso_days=iso_days) for b in self._blocks()))
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread by close()
            self._error = e  # later puts only queue up (unbounded); close() re-raises this


def _store_rows(conn: Connection, chunks: Callable[[bool], Iterable[list[tuple[Any, ...]]]]) -> int:
    """Write ``transfer_entry`` rows, chunk by chunk, in the connection's transaction; returns how many.
    ``chunks(iso_days)`` yields lists of row tuples (SQLite stores a DATE as ``YYYY-MM-DD`` text).

    PostgreSQL: one binary COPY (the server parses less: about 15 % faster than text side by side).
    SQLite: the plain DBAPI ``executemany`` (SQLAlchemy's per-row parameter processing would cost as much as
    the insert itself), with a bigger page cache that keeps the random-order indexes in memory."""
    n = 0
    dbapi = conn.connection.driver_connection
    assert dbapi is not None  # a checked-out connection always has its driver connection
    cur = dbapi.cursor()
    if is_postgres(conn):
        with cur.copy(_COPY_SQL) as cp:
            cp.set_types(_TRANSFER_PG_TYPES)
            for rows in chunks(False):
                for r in rows:
                    cp.write_row(r)
                n += len(rows)
        return n
    cur.execute("PRAGMA cache_size=-65536")
    for rows in chunks(True):
        cur.executemany(_SQLITE_INSERT, rows)
        n += len(rows)
    cur.close()
    return n


def _insert_transfers(conn: Connection, lid: int, cols: TransferColumns) -> None:
    """The big table after the read: ``_store_rows`` on PostgreSQL and SQLite (same transaction), or
    SQLAlchemy Core when the benchmark asks for it (``TRANSFER_INSERT = "core"``)."""
    if TRANSFER_INSERT == "auto" and conn.dialect.name in ("postgresql", "sqlite"):
        _store_rows(conn, lambda iso_days: [_transfer_tuples(lid, cols, iso_days=iso_days)])
        return
    rows = _transfer_tuples(lid, cols)
    for i in range(0, len(rows), _CHUNK):  # Core executemany (SQLAlchemy's insertmanyvalues batches)
        conn.execute(insert(_TRANSFER), [dict(zip(TRANSFER_COLUMNS, r, strict=True)) for r in rows[i : i + _CHUNK]])


# --- reads ------------------------------------------------------------------------------------
def current_version(session: Session, unit_id: int, month: str) -> LedgerRow | None:
    """The current (newest accepted) version of a unit's month, or None."""
    return session.execute(
        select(LedgerRow).where(LedgerRow.unit_id == unit_id, LedgerRow.month == month, LedgerRow.is_current == True)  # noqa: E712
    ).scalar_one_or_none()


def versions_of(session: Session, unit_id: int, month: str) -> list[LedgerRow]:
    """Every version of (unit, month), oldest first."""
    return list(session.execute(
        select(LedgerRow).where(LedgerRow.unit_id == unit_id, LedgerRow.month == month).order_by(LedgerRow.version)
    ).scalars())


def previous_month_close(session: Session, unit_id: int, month: str) -> dict[str, int] | None:
    """期末贮存量 per code of the current version of the month before ``month`` (continuity check),
    or None when that month has no accepted ledger."""
    y, m = int(month[:4]), int(month[5:7])
    prev = f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"
    row = current_version(session, unit_id, prev)
    if row is None:
        return None
    return {c: int(k) for c, k in session.execute(
        select(StockEntryRow.code, StockEntryRow.close_kg).where(StockEntryRow.ledger_id == row.id))}


@dataclass
class LedgerWithRows:
    """A ledger version with its entries as plain dicts (Core selects; no ORM object per row)."""

    ledger: LedgerRow
    unit: UnitRow
    stocks: list[dict[str, Any]] = field(default_factory=list)
    treatments: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)


def ledger_with_rows(session: Session, ledger_id: int, *, with_rows: bool = True) -> LedgerWithRows | None:
    """A ledger version, its unit and (optionally) its entries in sheet row order; None if absent."""
    row = session.get(LedgerRow, ledger_id)
    if row is None:
        return None
    unit = session.get(UnitRow, row.unit_id)
    assert unit is not None  # ledger.unit_id is a foreign key
    out = LedgerWithRows(row, unit)
    if with_rows:
        for tbl, target in ((_STOCK, out.stocks), (_TREAT, out.treatments), (_TRANSFER, out.transfers)):
            res = session.execute(select(tbl).where(tbl.c.ledger_id == ledger_id).order_by(tbl.c.row, tbl.c.id))
            target.extend(dict(m) for m in res.mappings())
    return out


def ledger_file(session: Session, ledger_id: int) -> LedgerFileRow | None:
    return session.get(LedgerFileRow, ledger_id)


def find_by_sha(session: Session, unit_id: int, month: str, sha256: str) -> LedgerRow | None:
    """The current version of (unit, month) when its file has this SHA-256 (byte-identical re-upload)."""
    row = current_version(session, unit_id, month)
    return row if row is not None and row.sha256 == sha256 else None


def list_ledgers(
    session: Session,
    *,
    unit_ids: list[int] | None = None,
    district: str | None = None,
    month: str | None = None,
    year: int | None = None,
    current_only: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[tuple[LedgerRow, UnitRow]], int]:
    """Ledger versions with their units, filtered and paged, newest month first.
    ``unit_ids`` restricts to those units (None = no restriction); ``district`` to a district or park."""
    stmt = select(LedgerRow, UnitRow).join(UnitRow, UnitRow.id == LedgerRow.unit_id)
    if unit_ids is not None:
        stmt = stmt.where(LedgerRow.unit_id.in_(unit_ids or [-1]))
    if district:
        stmt = stmt.where((UnitRow.district == district) | (UnitRow.park == district))
    if month:
        stmt = stmt.where(LedgerRow.month == month)
    if year:
        stmt = stmt.where(LedgerRow.year == year)
    if current_only:
        stmt = stmt.where(LedgerRow.is_current == True)  # noqa: E712
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(LedgerRow.month.desc(), UnitRow.credit_code, LedgerRow.version.desc())
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    return [(r[0], r[1]) for r in rows], int(total)


# --- 转出 rows against the manifests they cite (issue 16) -------------------------------------------
_RANGE_FETCH = 20_000  # fetch a number range in one query when it holds at most this many manifests


@dataclass(frozen=True)
class CitedManifest:
    """A current manifest a ledger's 转出 cites: who shipped it, to whom, and kg per waste code."""

    shipper: str
    receiver: str
    lines: dict[str, int]


def _manifest_heads(session: Session, numbers: list[str]) -> dict[int, tuple[str, str, str]]:
    """id → (number, shipper credit code, receiver) of the current manifests among ``numbers`` (sorted): the
    whole number range in one query when it is small enough, else ``IN`` lists."""
    from nofei.storage.tables import ManifestRow

    in_range = (col(ManifestRow.is_current).is_(True), col(ManifestRow.number) >= numbers[0],
                col(ManifestRow.number) <= numbers[-1])
    n = session.execute(select(func.count()).select_from(ManifestRow).where(*in_range)).scalar_one()
    if n == 0:
        return {}
    base = select(col(ManifestRow.id), col(ManifestRow.number), col(UnitRow.credit_code),
                  col(ManifestRow.receiver_code)).join(UnitRow, col(UnitRow.id) == col(ManifestRow.shipper_id))
    stmts = [base.where(*in_range)] if n <= _RANGE_FETCH else [
        base.where(col(ManifestRow.is_current).is_(True), col(ManifestRow.number).in_(chunk))
        for chunk in in_chunks(numbers)]
    want = set(numbers)
    out: dict[int, tuple[str, str, str]] = {}
    for stmt in stmts:
        for mid, no, sc, rc in session.execute(stmt):
            if no in want and mid is not None:
                out[int(mid)] = (str(no), str(sc), str(rc))
    return out


def manifests_cited(session: Session, numbers: list[str]) -> dict[str, CitedManifest]:
    """number → the current manifest of that number, among ``numbers`` (sorted, distinct)."""
    from nofei.storage.tables import ManifestLineRow

    heads = _manifest_heads(session, numbers)
    lines: dict[int, dict[str, int]] = {mid: {} for mid in heads}
    for chunk in in_chunks(sorted(heads)):
        for mid, code, kg in session.execute(select(col(ManifestLineRow.manifest_id), col(ManifestLineRow.waste_code),
                                                    col(ManifestLineRow.quantity_kg))
                                             .where(col(ManifestLineRow.manifest_id).in_(chunk))):
            lines[mid][code] = lines[mid].get(code, 0) + int(kg)
    return {no: CitedManifest(sc, rc, lines[mid]) for mid, (no, sc, rc) in heads.items()}


def cited_in_other_months(session: Session, unit_id: int, month: str, numbers: list[str]) -> dict[str, str]:
    """number → another month of this unit whose current ledger already cites it in 转出 (``numbers`` sorted)."""
    others = {int(i or 0): str(m) for i, m in session.execute(select(col(LedgerRow.id), col(LedgerRow.month)).where(
        col(LedgerRow.unit_id) == unit_id, col(LedgerRow.is_current).is_(True), col(LedgerRow.month) != month))}
    want = set(numbers)
    out: dict[str, str] = {}
    T = TransferEntryRow  # noqa: N806
    for chunk in in_chunks(sorted(others)):
        stmt = select(col(T.manifest_no), col(T.ledger_id)).where(
            col(T.ledger_id).in_(chunk), col(T.direction) == "out",
            col(T.manifest_no) >= numbers[0], col(T.manifest_no) <= numbers[-1])
        for no, lid in session.execute(stmt):
            if no in want and no not in out:
                out[no] = others[int(lid)]
    return out

