"""The findings repository: the aggregates behind the regulators' anomalies, and their dialect tuning.

Everything is aggregated in SQL so that a city-wide year of a million manifests lists in seconds; each query
returns typed rows (``NamedTuple``) that ``ledgers.anomalies`` turns into findings. PostgreSQL-only tuning
lives here and nowhere else: planner settings local to the read (``tuned``), ``= ANY(array)`` instead of
chunked ``IN`` lists, and the second connection that runs the reconciliation (read from the flow model,
``ledgers.anomalies.reconciliation``) beside the other kinds (``run_beside``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    ARRAY,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlmodel import col

from nofei.storage.engine import in_chunks, is_postgres
from nofei.storage.tables import (
    AuditRow,
    LedgerRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    PermitRow,
    StockEntryRow,
    TransferEntryRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

T = TypeVar("T")
# PostgreSQL, for this read only: JIT compiling cost 0.1-0.3 s per large aggregate here and never paid back, and
# parallel workers gathering ~2 M partial groups made the reconciliation slower (B3, EXPLAIN ANALYZE)
# work_mem: the reconciliation's ledger sides group ~1 M (number, code) pairs; at the default 4 MB the hash spilled
# to disk in 117 batches (B3)
_PG_LOCAL = {"jit": "off", "max_parallel_workers_per_gather": "0", "work_mem": "256MB"}


# --- typed rows -----------------------------------------------------------------------------------------------
class UnitRef(NamedTuple):
    id: int
    credit_code: str
    district: str
    park: str | None


class TransferPlace(NamedTuple):
    """Where a transfer row is: its ledger version, unit, month, direction and row number."""

    entry_id: int
    ledger_id: int
    version: int
    unit_id: int
    month: str
    direction: str
    row: int | None


class ReceiptCandidate(NamedTuple):
    number: str
    shipper: str
    receiver: str
    carrier: str | None
    status: str
    shipped_at: datetime
    received_at: datetime | None
    accepted_on: date | None
    recorded_at: datetime | None
    kg: int | None


class DiscrepantLine(NamedTuple):
    number: str
    shipper: str
    receiver: str
    line_no: int
    waste_code: str
    quantity_kg: int
    received_kg: int | None
    rejected_kg: int | None


class StockMonthRow(NamedTuple):
    unit_id: int
    month: str
    ledger_id: int
    code: str
    open_kg: int
    generated_kg: int
    close_kg: int


class TransferRow(NamedTuple):
    id: int
    code: str
    qty_kg: int
    counterpart: str
    manifest_no: str | None
    unit_id: int
    month: str


class PermitEntry(NamedTuple):
    credit_code: str
    number: str
    waste_codes: tuple[str, ...]
    methods: tuple[str, ...]
    capacity_kg: int
    valid_from: date | None
    valid_to: date | None


class Delivery(NamedTuple):
    """What the manifests of the year delivered to a receiver, per code and method."""

    receiver: str
    code: str
    method: str | None
    kg: int
    n: int
    first: str
    shipper: str


class Declared(NamedTuple):
    """What the shippers' 转出 rows declared to a receiver, per code and planned method."""

    receiver: str
    code: str
    method: str | None
    kg: int
    n: int
    first: int


# --- helpers ----------------------------------------------------------------------------------------------------
def _id_filters(session: Session, column: Any, ids: Iterable[Any], type_: Any = Integer) -> list[Any]:
    """Conditions ``column`` in ``ids``: one ``= ANY(array)`` on PostgreSQL (a single statement for 20,000 rows
    instead of 25 with 900 bound parameters each), chunks of 900 elsewhere (SQLite's parameter limit)."""
    values = sorted({i for i in ids if i is not None})
    if not values:
        return []
    if is_postgres(session):
        return [column == any_(bindparam("ids", values, type_=ARRAY(type_)))]
    return [column.in_(chunk) for chunk in in_chunks(values)]


def _int(v: Any) -> int | None:
    """Integers on every backend (PostgreSQL's SUM of bigint is numeric)."""
    return int(v) if v is not None else None


def _manifest_year(stmt: Any, year: int) -> Any:
    return stmt.where(col(ManifestRow.is_current).is_(True), col(ManifestRow.planned_date) >= date(year, 1, 1),
                      col(ManifestRow.planned_date) <= date(year, 12, 31))


def _transfer_rows(year: int, direction: str) -> Any:
    return (select(col(TransferEntryRow.id), col(TransferEntryRow.code), col(TransferEntryRow.qty_kg),
                   col(TransferEntryRow.counterpart), col(TransferEntryRow.manifest_no), col(LedgerRow.unit_id),
                   col(LedgerRow.month))
            .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) == year,
                   col(TransferEntryRow.direction) == direction))


# --- shared reads ---------------------------------------------------------------------------------------------
def units(session: Session) -> list[UnitRef]:
    """Every registered unit: id, credit code, district, park."""
    return [UnitRef._make(r) for r in session.execute(select(col(UnitRow.id), col(UnitRow.credit_code),
                                                        col(UnitRow.district), col(UnitRow.park)))]


def transfer_places(session: Session, ids: Iterable[int]) -> dict[int, TransferPlace]:
    """Where each of these transfer rows is (ledger version, unit, month, direction, row number)."""
    out: dict[int, TransferPlace] = {}
    for where in _id_filters(session, col(TransferEntryRow.id), ids):
        for r in session.execute(
                select(col(TransferEntryRow.id), col(LedgerRow.id), col(LedgerRow.version), col(LedgerRow.unit_id),
                       col(LedgerRow.month), col(TransferEntryRow.direction), col(TransferEntryRow.row))
                .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id)).where(where)):
            place = TransferPlace._make(r)
            out[place.entry_id] = place
    return out


def stamp(session: Session) -> tuple[Any, ...]:
    """What a finding can depend on. Every write appends an audit entry (unit and permit changes included) and
    the newest entry's digest chains the whole history, so it also tells two databases at one URL apart (the
    test suite recreates its schema); the newest manifest event, ledger, unit and permit ids are checked too,
    since bulk loads (demo --fast, benchmarks) write those without an audit entry. Index look-ups only."""
    # casework (``case.*`` entries) changes no finding: it must not throw the findings away
    head = session.execute(select(col(AuditRow.digest)).where(~col(AuditRow.action).startswith("case."))
                           .order_by(col(AuditRow.seq).desc()).limit(1)).scalar()
    return (head, *(session.execute(select(func.max(c))).scalar() for c in (
        col(ManifestEventRow.id), col(LedgerRow.id), col(UnitRow.id), col(PermitRow.id))))


def database_key(session: Session) -> str:
    """Which database a session reads (a process cache keeps the findings of several apart)."""
    return str(session.get_bind().engine.url)


# --- manifests: receipts and discrepancies ---------------------------------------------------------------------
def receipt_candidates(session: Session, year: int, as_of: datetime, days: int) -> Iterator[ReceiptCandidate]:
    """Manifests of ``year`` that may be late in receipt: still in transit more than ``days`` calendar days after
    shipping, or recorded more than ``days - 1`` calendar days after it (late by n working days needs that, as
    the acceptance is not before the shipping date): a cheap pre-filter before the exact calendar."""
    recorded_col = func.coalesce(col(ManifestRow.received_entered_at), col(ManifestRow.received_at))
    if is_postgres(session):
        gap = recorded_col > col(ManifestRow.shipped_at) + timedelta(days=days - 1)
    else:
        gap = func.julianday(recorded_col) - func.julianday(col(ManifestRow.shipped_at)) > days - 1
    kg = select(func.sum(col(ManifestLineRow.quantity_kg))).where(
        col(ManifestLineRow.manifest_id) == col(ManifestRow.id)).scalar_subquery()
    S = aliased(UnitRow)  # noqa: N806
    stmt = _manifest_year(select(col(ManifestRow.number), col(S.credit_code), col(ManifestRow.receiver_code),
                                 col(ManifestRow.carrier_code), col(ManifestRow.status), col(ManifestRow.shipped_at),
                                 col(ManifestRow.received_at), col(ManifestRow.accepted_on),
                                 recorded_col.label("recorded_at"), kg.label("kg"))
                          .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(
        col(ManifestRow.shipped_at).is_not(None),
        or_(and_(col(ManifestRow.status) == "in_transit", col(ManifestRow.shipped_at) < as_of - timedelta(days=days)),
            and_(col(ManifestRow.received_at).is_not(None), gap)))
    for r in session.execute(stmt):
        yield ReceiptCandidate._make(r)


def discrepant_lines(session: Session, year: int) -> Iterator[DiscrepantLine]:
    """Manifest lines of ``year`` flagged as received differently from what was shipped."""
    S = aliased(UnitRow)  # noqa: N806
    stmt = _manifest_year(select(col(ManifestRow.number), col(S.credit_code), col(ManifestRow.receiver_code),
                                 col(ManifestLineRow.line_no), col(ManifestLineRow.waste_code),
                                 col(ManifestLineRow.quantity_kg), col(ManifestLineRow.received_kg),
                                 col(ManifestLineRow.rejected_kg))
                          .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
                          .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(
        col(ManifestLineRow.discrepancy).is_(True))
    for r in session.execute(stmt):
        yield DiscrepantLine._make(r)


# --- ledgers: stock, numbers, counterparts, filing ------------------------------------------------------------------
def hazardous_stock(session: Session, year: int, streams: Collection[str]) -> Iterator[StockMonthRow]:
    """Monthly stock of ``streams`` in the current ledgers of ``year`` and the three years before, ordered by
    unit, code and month (the FIFO needs the history that may still be in store)."""
    stmt = (select(col(LedgerRow.unit_id), col(LedgerRow.month), col(LedgerRow.id), col(StockEntryRow.code),
                   col(StockEntryRow.open_kg), col(StockEntryRow.generated_kg), col(StockEntryRow.close_kg))
            .join(StockEntryRow, col(StockEntryRow.ledger_id) == col(LedgerRow.id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) <= year, col(LedgerRow.year) >= year - 3,
                   col(StockEntryRow.stream).in_(list(streams)))
            .order_by(col(LedgerRow.unit_id), col(StockEntryRow.code), col(LedgerRow.month)))
    for r in session.execute(stmt):
        yield StockMonthRow._make(r)


def received_by_ledger(session: Session, ledger_ids: Sequence[int]) -> dict[tuple[int, str], int]:
    """Σ 转入 per (ledger version, code) of these ledger versions."""
    ids = sorted(set(ledger_ids))
    out: dict[tuple[int, str], int] = {}
    for chunk in in_chunks(ids):
        for lid, code, kg in session.execute(
                select(col(TransferEntryRow.ledger_id), col(TransferEntryRow.code), func.sum(col(TransferEntryRow.qty_kg)))
                .where(col(TransferEntryRow.direction) == "in", col(TransferEntryRow.ledger_id).in_(chunk))
                .group_by(col(TransferEntryRow.ledger_id), col(TransferEntryRow.code))):
            out[(lid, code)] = int(kg or 0)
    return out


def out_rows_without_number(session: Session, year: int, streams: Collection[str]) -> Iterator[TransferRow]:
    """转出 rows of ``streams`` in the year's current ledgers whose 联单编号 is empty or not 14 characters long."""
    bad = or_(col(TransferEntryRow.manifest_no).is_(None), func.length(col(TransferEntryRow.manifest_no)) != 14)
    for r in session.execute(_transfer_rows(year, "out").where(col(TransferEntryRow.stream).in_(list(streams)), bad)):
        yield TransferRow._make(r)


def out_rows_to(session: Session, year: int, counterparts: Sequence[str]) -> Iterator[TransferRow]:
    """转出 rows of the year's current ledgers to these counterparts."""
    for chunk in in_chunks(sorted(set(counterparts))):
        for r in session.execute(_transfer_rows(year, "out").where(col(TransferEntryRow.counterpart).in_(chunk))):
            yield TransferRow._make(r)


def small_clinics(session: Session) -> set[int]:
    """Ids of the units registered as small clinics (≤ 19 beds: their HW01 is exempt from the 联单)."""
    return {int(i or 0) for i in session.execute(select(col(UnitRow.id)).where(col(UnitRow.small_clinic).is_(True))).scalars()}


def filed_months(session: Session, year: int) -> dict[int, set[str]]:
    """unit id → the months of ``year`` with a current ledger version."""
    filed: dict[int, set[str]] = defaultdict(set)
    for uid, month in session.execute(select(col(LedgerRow.unit_id), col(LedgerRow.month)).where(
            col(LedgerRow.year) == year, col(LedgerRow.is_current).is_(True))):
        filed[uid].add(month)
    return filed


def units_reporting(session: Session) -> list[tuple[int, str, str | None]]:
    """(id, credit code, reports_from) of every unit, by credit code."""
    return [(int(r[0] or 0), r[1], r[2]) for r in session.execute(
        select(col(UnitRow.id), col(UnitRow.credit_code), col(UnitRow.reports_from)).order_by(col(UnitRow.credit_code)))]


# --- permits ----------------------------------------------------------------------------------------------------
def permits(session: Session) -> Iterator[PermitEntry]:
    """Every permit with its holder's credit code (the caller keeps those valid in its year)."""
    for p, cc in session.execute(select(PermitRow, col(UnitRow.credit_code))
                                 .join(UnitRow, col(UnitRow.id) == col(PermitRow.unit_id))):
        yield PermitEntry(cc, p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, p.valid_from, p.valid_to)


def deliveries(session: Session, year: int) -> Iterator[Delivery]:
    """What the year's manifests delivered to each receiver per code and method: a refused load delivers nothing,
    and a load sent back to its own shipper is a return, not a transfer to a facility (the flow model's rule)."""
    method = func.coalesce(col(ManifestLineRow.method), col(ManifestLineRow.planned_method))
    qty = case((col(ManifestRow.status) == "in_transit", col(ManifestLineRow.quantity_kg)),
               else_=func.coalesce(col(ManifestLineRow.received_kg), 0))
    S = aliased(UnitRow)  # noqa: N806
    stmt = _manifest_year(select(col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code), method.label("method"),
                                 func.sum(qty).label("kg"), func.count().label("n"),
                                 func.min(col(ManifestRow.number)).label("first"),
                                 func.min(col(S.credit_code)).label("shipper"))
                          .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
                          .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(
        col(ManifestRow.status) != "submitted", qty > 0, col(ManifestRow.receiver_code) != col(S.credit_code),
    ).group_by(col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code), method)
    for r in session.execute(stmt):
        yield Delivery(r.receiver_code, r.waste_code, r.method, int(r.kg or 0), int(r.n), r.first, r.shipper)


def declared_deliveries(session: Session, year: int, streams: Collection[str]) -> Iterator[Declared]:
    """What the year's 转出 rows of ``streams`` declared to each receiver per code and planned method, less the
    rows citing a manifest the receiver refused."""
    refused = (select(col(ManifestRow.id)).where(col(ManifestRow.number) == col(TransferEntryRow.manifest_no),
                                                 col(ManifestRow.is_current).is_(True),
                                                 col(ManifestRow.status) == "rejected").exists())
    stmt = (select(col(TransferEntryRow.counterpart), col(TransferEntryRow.code), col(TransferEntryRow.planned_method),
                   func.sum(col(TransferEntryRow.qty_kg)).label("kg"), func.count().label("n"),
                   func.min(col(TransferEntryRow.id)).label("first"))
            .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) == year,
                   col(TransferEntryRow.direction) == "out", col(TransferEntryRow.stream).in_(list(streams)), ~refused)
            .group_by(col(TransferEntryRow.counterpart), col(TransferEntryRow.code), col(TransferEntryRow.planned_method)))
    for r in session.execute(stmt):
        yield Declared(r.counterpart, r.code, r.planned_method, int(r.kg or 0), int(r.n), r.first)


# --- tuning of the whole read -------------------------------------------------------------------------------------
@contextmanager
def tuned(session: Session) -> Iterator[None]:
    """Planner settings local to the transaction on PostgreSQL, put back afterwards (no-op elsewhere).

    After an error the transaction is rolled back, which undoes them anyway."""
    if not is_postgres(session):
        yield
        return
    old = {k: session.execute(select(func.current_setting(k))).scalar() for k in _PG_LOCAL}
    for k, v in _PG_LOCAL.items():
        session.execute(select(func.set_config(k, v, True)))
    yield
    for k, prev in old.items():
        session.execute(select(func.set_config(k, prev, True)))


def _side_engine(session: Session) -> Engine | None:
    """The engine for a second, concurrent read-only connection: PostgreSQL on a pooled engine only."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) and is_postgres(bind) else None


def run_beside(uow: UnitOfWork, heavy: Callable[[UnitOfWork], T], rest: Callable[[UnitOfWork], None]) -> T:
    """``rest`` on ``uow`` while ``heavy`` runs on a second connection in a thread (PostgreSQL on a pooled engine:
    the database's second core); elsewhere both on ``uow``, one after the other. Each statement of a READ
    COMMITTED transaction sees its own snapshot anyway, so a second read-only transaction is no weaker."""
    side = _side_engine(uow.session)
    if side is None:
        rest(uow)
        return heavy(uow)

    def on_side() -> T:
        with UnitOfWork(sessionmaker(bind=side), catalogue=uow.catalogue, rules=uow.rules,
                        load_catalogue=False) as u2, tuned(u2.session):
            return heavy(u2)

    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(on_side)
        rest(uow)
        return job.result()
