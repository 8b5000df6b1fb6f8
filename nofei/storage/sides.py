"""The per-manifest sides of the flow model (``nofei.flows.counterparts``): what each current manifest says of
each waste code, and what the ledgers' 转出 / 转入 rows citing a number declare.

``manifest_sides`` is what the flow model's attestations are folded from (``nofei.storage.flowdata``), so an
edge's attested sums and the manifests behind it are one read; ``ledger_sides`` and ``sides_of_numbers`` are
what the three-way reconciliation adds to the model's sides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from nofei.flows import counterparts as cp
from nofei.storage import flowstore
from nofei.storage.cache import StampedCache
from nofei.storage.engine import in_chunks, is_postgres
from nofei.storage.tables import (
    FlowYearEdgeRow,
    LedgerRow,
    ManifestLineRow,
    ManifestRow,
    TransferEntryRow,
    UnitRow,
    table_of,
)

MF = table_of(ManifestRow)
ML = table_of(ManifestLineRow)
UN = table_of(UnitRow)
TX = table_of(TransferEntryRow)
L = table_of(LedgerRow)
FY = table_of(FlowYearEdgeRow)


CHUNK = 200_000  # rows converted at a time: bounds the Python objects alive while a year's sides are read


def _chunks(session: Session, stmt: Any) -> Iterator[Sequence[Any]]:
    """The rows of ``stmt`` made into Python rows ``CHUNK`` at a time. Not a server-side cursor: PostgreSQL plans a
    cursor for its first rows (``cursor_tuple_fraction``) and fetched B3's ledger sides in 8,000 round trips,
    2.5 s slower than one buffered result."""
    yield from session.execute(stmt).partitions(CHUNK)


def _kg(col: Any) -> Any:
    return cast(func.sum(col), BigInteger)  # PostgreSQL's SUM of bigint is numeric: integers on every backend


def _micros(pg: bool, col: Any) -> Any:
    """A stored moment as integer µs since the epoch (``counterparts.micros``), ``NONE_TIME`` for NULL — computed by
    the database, exactly: a million datetimes are not made in Python. PostgreSQL's column is timestamptz (its
    epoch is absolute); SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (seconds from strftime, the
    microseconds from the text)."""
    us: Any
    if pg:
        us = cast(func.extract("epoch", col) * 1_000_000, BigInteger)
    else:
        us = cast(func.strftime("%s", col), BigInteger) * 1_000_000 + cast(func.substr(col, 21, 6), BigInteger)
    return func.coalesce(us, int(cp.NONE_TIME))


def _manifest_select(pg: bool, where: Any) -> Any:
    """Per current manifest and waste code (``counterparts.ManifestRowIn``): its facts and its lines summed; the
    number as an integer, the planned year, the times as ``_micros``."""
    return (select(cast(MF.c.number, BigInteger), ML.c.waste_code, MF.c.id, UN.c.credit_code, MF.c.receiver_code,
                   MF.c.status, MF.c.parent_number.is_not(None), cast(func.extract("year", MF.c.planned_date), Integer),
                   _micros(pg, MF.c.shipped_at), _micros(pg, MF.c.received_at),
                   _kg(ML.c.quantity_kg), _kg(func.coalesce(ML.c.received_kg, 0)),
                   _kg(func.coalesce(ML.c.rejected_kg, 0)))
            .select_from(ML.join(MF, ML.c.manifest_id == MF.c.id).join(UN, UN.c.id == MF.c.shipper_id))
            .where(MF.c.is_current.is_(True), where)
            .group_by(MF.c.id, ML.c.waste_code, UN.c.credit_code))


def manifest_sides(session: Session, year: int, *, shipper_ids: list[int] | None = None,
                   units: cp.Names | None = None) -> cp.ManifestSides:
    """The sides of every current manifest planned in ``year`` (those only ``submitted`` too: they attest nothing
    yet, but a ledger row citing one cites a number that exists), or of some shippers' only."""
    where = and_(MF.c.planned_date >= date(year, 1, 1), MF.c.planned_date <= date(year, 12, 31))
    if shipper_ids is not None:
        where = and_(where, MF.c.shipper_id.in_(shipper_ids))
    units = units or cp.Names()
    parts = [cp.manifest_sides(rows, units=units) for rows in _chunks(session, _manifest_select(is_postgres(session),
                                                                                               where))]
    return cp.concat(parts) if parts else cp.manifest_sides([], units=units)


def sides_of_numbers(session: Session, numbers: Iterable[str], codes: cp.Names, units: cp.Names) -> cp.ManifestSides:
    """The sides of the current manifests with these numbers, whatever their status or year, named as given."""
    values = sorted(set(numbers))
    if is_postgres(session):
        wheres = [MF.c.number == any_(bindparam("numbers", values, type_=ARRAY(String)))] if values else []
    else:
        wheres = [MF.c.number.in_(chunk) for chunk in in_chunks(values)]
    rows = [r for w in wheres for r in session.execute(_manifest_select(is_postgres(session), w)).all()]
    return cp.manifest_sides(rows, codes, units)


def _ledger_select(session: Session, year: int, numbers: Any = None, *, int4: bool = False) -> Any:
    """Per (number, code) cited by current ledger rows of ``year`` and the next (``counterparts.LedgerRowIn``),
    optionally only the numbers of a subquery. ``int4``: the kilograms summed as int4 (PostgreSQL keeps a plain
    int8 state per group for SUM(int4), a numeric one for SUM(int8): B3's million groups aggregate in 1.2 s
    instead of 2.1 s); the cast fails on a row of 2^31 kg or more, and the caller sums again as int8."""
    no = TX.c.manifest_no
    ok = flowstore.wellformed(session.get_bind().dialect.name, no)
    out, into = TX.c.direction == "out", TX.c.direction == "in"
    qty = cast(TX.c.qty_kg, Integer) if int4 else TX.c.qty_kg

    def side(when: Any) -> list[Any]:
        return [func.coalesce(_kg(case((when, qty))), 0), func.coalesce(func.min(case((when, TX.c.id))), -1),
                func.coalesce(func.min(case((when, L.c.unit_id))), -1)]

    q = (select(case((ok, cast(no, BigInteger)), else_=-1), case((ok, null()), else_=no), TX.c.code,
                *side(out), *side(into))
         .select_from(TX.join(L, L.c.id == TX.c.ledger_id))
         .where(L.c.is_current.is_(True), L.c.year.in_([year, year + 1]), TX.c.direction.in_(["out", "in"]),
                no.is_not(None), func.length(no) == 14)
         .group_by(no, TX.c.code))
    return q if numbers is None else q.where(no.in_(numbers))


def ledger_sides(session: Session, year: int, codes: cp.Names = cp.CODES) -> cp.LedgerSides:
    """The 转出 and 转入 sides per (number, code) of the current ledgers of ``year`` and the next year (a December
    load is entered in January) whose rows cite a 14-character number: Σ kg, the first row and unit of each
    direction, in one row per (number, code). (A number outside ``counterparts.number_range`` is loaded too: it
    is an unknown number.)"""
    if is_postgres(session):
        return _pg_ledger_sides(session, year, codes)
    parts = [cp.ledger_sides(rows, codes) for rows in _chunks(session, _ledger_select(session, year))]
    return cp.concat_ledger(parts) if parts else cp.ledger_sides([], codes)


_BINARY_HEADER = 19  # PGCOPY signature (11), flags (4), header extension length (4)


def _pg_ledger_sides(session: Session, year: int, codes: cp.Names) -> cp.LedgerSides:
    """``ledger_sides`` on PostgreSQL: one binary COPY of eight int8 columns per (number, code) read straight into
    numpy (B3: a million rows took ~4 s as Python rows, the transfer and the parse ~0.3 s this way). Codes are
    sent as ids of the codes the year's flow summaries name; the few numbers that are not 14 digits, or codes
    the summaries do not name, are read again as rows. The well-formedness is judged on the groups, not in the
    WHERE: a regular expression there cost 1.7 s over two million rows and misled the planner into a sort."""
    try:
        with session.begin_nested():
            return _pg_binary_sides(session, year, codes, int4=True)
    except psycopg.errors.NumericValueOutOfRange:  # a row of 2^31 kg or more: the exact int8 sums
        return _pg_binary_sides(session, year, codes, int4=False)


def _pg_binary_sides(session: Session, year: int, codes: cp.Names, *, int4: bool) -> cp.LedgerSides:
    q = _ledger_select(session, year, int4=int4)
    named = session.execute(select(FY.c.code).where(FY.c.year.in_([year, year + 1])).distinct()).scalars().all()
    ids = {c: codes.of(c) for c in named}
    cols = list(q.selected_columns)
    code_id = case(ids, value=TX.c.code, else_=-1) if ids else literal(-1)
    wide = [cast(cols[0], BigInteger), cast(code_id, BigInteger), *(cast(c, BigInteger) for c in cols[3:])]
    sql = str(q.with_only_columns(*wide).compile(dialect=session.get_bind().dialect,
                                                 compile_kwargs={"literal_binds": True}))
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live psycopg connection inside the session's transaction
    with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
        data = b"".join(bytes(block) for block in copy)
    fields = [("n", ">i2")] + [x for i in range(8) for x in ((f"len{i}", ">i4"), (f"v{i}", ">i8"))]
    dt = np.dtype(fields)
    rows = np.frombuffer(data, dtype=dt, count=(len(data) - _BINARY_HEADER - 2) // dt.itemsize, offset=_BINARY_HEADER)
    v = [rows[f"v{i}"].astype(np.int64) for i in range(8)]
    plain = (v[0] >= 0) & (v[1] >= 0)
    keys = cp.keys(v[0][plain], v[1][plain])
    order = np.argsort(keys, kind="stable")
    good = cp.LedgerSides({}, codes, keys[order], *(c[plain][order] for c in v[2:]))
    if plain.all():
        return good
    ok = flowstore.wellformed("postgresql", TX.c.manifest_no)
    rest = q.where(or_(~ok, TX.c.code.notin_(list(ids)))) if ids else q
    return cp.concat_ledger([good, cp.ledger_sides(session.execute(rest).all(), codes)])


def _cited_by(units: list[int], year: int) -> Any:
    """The numbers cited by any version of these units' ledgers of ``year`` or the next: the (number, code) sums
    a new version of theirs can have changed."""
    return (select(TX.c.manifest_no).select_from(TX.join(L, L.c.id == TX.c.ledger_id))
            .where(L.c.unit_id.in_(units), L.c.year.in_([year, year + 1]), TX.c.manifest_no.is_not(None),
                   func.length(TX.c.manifest_no) == 14).distinct())


_CITED: StampedCache[cp.LedgerSides] = StampedCache("ledger sides", 4)


def _stamp(session: Session, year: int) -> tuple[Any, Any]:
    return flowstore.latest_change(session, year), flowstore.latest_change(session, year + 1)


def _units_changed(session: Session, year: int, old: tuple[Any, Any]) -> list[int] | None:
    """The units whose ledgers of ``year`` or the next changed since ``old``, or None: reload everything."""
    units: set[int] = set()
    for y, stamp in zip((year, year + 1), old, strict=True):
        if stamp is None:
            if flowstore.latest_change(session, y) is None:
                continue
            return None
        changes = flowstore.changes_since(session, y, stamp)
        if changes is None or any(k == "bulk" or (k == "ledger" and u is None) for k, u in changes):
            return None
        units.update(u for k, u in changes if k == "ledger" and u is not None)
    return sorted(units)


def cited(session: Session, year: int) -> cp.LedgerSides:
    """``ledger_sides`` of ``year``, kept per process and brought up to date from the flow model's change log: after
    a ledger version only the numbers its unit's ledgers cite are summed again (single flight per year)."""
    key = (session.get_bind().engine.url.render_as_string(hide_password=True), year)
    stamp = _stamp(session, year)
    hit = _CITED.entry(key)
    if hit is not None and hit.stamp == stamp:
        return hit.value
    with _CITED.flight(key):
        hit = _CITED.entry(key)
        stamp = _stamp(session, year)
        if hit is not None and hit.stamp == stamp:
            return hit.value
        old = hit.stamp if hit is not None and isinstance(hit.stamp, tuple) else None
        units = _units_changed(session, year, (old[0], old[1])) if old is not None else None
        if hit is None or units is None:
            value = ledger_sides(session, year)
        elif not units:
            value = hit.value
        else:
            numbers = {str(n) for n in session.execute(_cited_by(units, year)).scalars()}
            fresh = cp.ledger_sides(session.execute(_ledger_select(session, year, _cited_by(units, year))).all())
            value = cp.replace_numbers(hit.value, numbers, fresh)
        _CITED.put(key, stamp, value)
        return value


PREFETCH_MIN = 50_000
"""A LOCAL CHOICE: a year whose model holds this many manifest sides or more has its ledger sides loaded in the
background once its model is built (PostgreSQL only), so the regulators' first anomaly list does not wait for
them (B3: 3 s at a million manifests). Below it they load in well under a second on first use."""
_log = logging.getLogger("nofei.flows")


def prefetch(session: Session, year: int, manifests: int) -> None:
    """Start loading ``cited(year)`` on a daemon thread with its own connection, when it is worth it."""
    if manifests < PREFETCH_MIN or not is_postgres(session):
        return
    engine = session.get_bind().engine

    def run() -> None:
        try:
            with Session(engine) as s, s.begin():
                from nofei.storage.findings import (
                    tuned,  # the same planner settings as the anomaly list's read
                )

                with tuned(s):
                    cited(s, year)
        except Exception:  # a cache left cold is filled by the first list instead
            _log.exception("prefetching the ledger sides of %s failed", year)

    threading.Thread(target=run, name=f"ledger-sides-{year}", daemon=True).start()
