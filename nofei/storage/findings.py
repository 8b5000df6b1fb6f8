"""The findings repository: the aggregates behind the regulators' anomalies, and their dialect tuning.

Everything is aggregated in SQL so that a city-wide year of a million manifests lists in seconds; each query
returns typed rows (``NamedTuple``) that ``ledgers.anomalies`` turns into findings. PostgreSQL-only tuning
lives here and nowhere else: planner settings local to the read (``tuned``), ``= ANY(array)`` instead of
chunked ``IN`` lists, the int4 sums of the reconciliation, and the second connection that runs the
reconciliation beside the other kinds (``run_beside``).
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
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
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
_LO_MASK = (1 << 30) - 1  # low half of a kilogram sum split for PostgreSQL (see _KgSums)
# PostgreSQL, for this read only: JIT compiling cost 0.1-0.3 s per large aggregate here and never paid back, and
# parallel workers gathering ~2 M partial groups made the reconciliation slower (B3, EXPLAIN ANALYZE)
_PG_LOCAL = {"jit": "off", "max_parallel_workers_per_gather": "0"}


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


class ReconciliationRow(NamedTuple):
    """One (number, code) whose three sides disagree, with each side's sum (None: the side is absent)."""

    no: str
    code: str
    out_kg: int | None
    out_row: int | None
    in_kg: int | None
    in_row: int | None
    shipped: int | None
    received: int | None
    mid: int | None
    reason: str


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


# --- three-way reconciliation ------------------------------------------------------------------------------------
_FLAGS = ("f_shipped", "f_arrived", "f_in_year", "f_shipped_before", "f_received_before", "f_transfer")
_SIDES = ("out_kg", "in_kg", "shipped", "received")


def _flag(cond: Any) -> Any:
    return case((cond, 1), else_=0)


class _KgSums:
    """How the reconciliation sums kilograms.

    ``plain`` (SQLite): SUM of the column. On PostgreSQL SUM(bigint) keeps a palloc'd 128-bit state per group,
    which dominates grouping ~1 M groups (B3: 712 MB of hash table); SUM(int4) keeps a plain int8 state, so the
    kilograms are summed as int4 (``int4``: the cast fails on a row of 2^31 kg or more) or exactly as int4 high
    and low 30-bit halves (``split``: sum(hi) * 2^30 + sum(lo))."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.width = 2 if mode == "split" else 1  # columns per kilogram sum
        self.names = {side: [f"{side}_{i}" for i in range(self.width)] for side in _SIDES}

    def parts(self, column: Any, when: Any | None = None) -> list[Any]:
        if self.mode == "plain":
            parts = [column]
        elif self.mode == "int4":
            parts = [cast(column, Integer)]
        else:
            parts = [cast(column.op(">>")(literal_column("30")), Integer), cast(column.op("&")(_LO_MASK), Integer)]
        return parts if when is None else [case((when, x)) for x in parts]

    def labelled(self, side: str, column: Any, when: Any) -> list[Any]:
        return [c.label(n) for c, n in zip(self.parts(column, when), self.names[side], strict=True)]

    def total(self, u: Any, side: str) -> Any:
        cols = [u.c[n] for n in self.names[side]]
        if len(cols) == 1:
            return func.sum(cols[0]).label(side)
        return (func.sum(cols[0]) * (_LO_MASK + 1) + func.sum(cols[1])).label(side)


class _Window(NamedTuple):
    """The year and the instant before which a side must have been written."""

    year: int
    cutoff: datetime


def _manifest_flags(pg: bool, w: _Window, shipper: Any) -> tuple[list[Any], tuple[str, ...]]:
    """A number is one current manifest, so its status and times enter the GROUP BY as 0/1 flags (MIN per flag);
    on PostgreSQL the six travel as one bit mask whose BIT_AND is the per-flag MIN."""
    # a load a rejection sends back to its own shipper is no 转出 of the shipper's (flow model: it returns to the
    # shipper's node), so its ledger side is not missing
    transfer = or_(col(ManifestRow.parent_number).is_(None), col(ManifestRow.receiver_code) != col(shipper.credit_code))
    # a follow-on of a refusal (the return) leaves from the refusing receiver's gate: no shipper 转出 is expected
    # for it (the shipper's 转出 cites the original), so it never counts as "out_missing" (issue 16)
    shipped_before = and_(col(ManifestRow.shipped_at) < w.cutoff, col(ManifestRow.parent_number).is_(None))
    flags = [_flag(col(ManifestRow.status) != "submitted"),
             _flag(col(ManifestRow.status).in_(["received", "partially_received"])),
             _flag(and_(col(ManifestRow.planned_date) >= date(w.year, 1, 1),
                        col(ManifestRow.planned_date) <= date(w.year, 12, 31))),
             _flag(shipped_before), _flag(col(ManifestRow.received_at) < w.cutoff), _flag(transfer)]
    if not pg:
        return flags, _FLAGS
    bits = flags[0]
    for i, f in enumerate(flags[1:], start=1):
        bits = bits + (1 << i) * f
    return [bits], ("fbits",)


def _three_sides(pg: bool, kg: _KgSums, w: _Window) -> Any:
    """The ledger rows and the manifest lines as one UNION ALL keyed by (number, code)."""
    T = TransferEntryRow  # noqa: N806
    is_out, is_in = col(T.direction) == "out", col(T.direction) == "in"
    Sh = aliased(UnitRow)  # noqa: N806
    manifest_flags, flag_cols = _manifest_flags(pg, w, Sh)
    nothing = null()
    ledger_side = (
        select(col(T.manifest_no).label("no"), col(T.code).label("code"),
               *kg.labelled("out_kg", col(T.qty_kg), is_out), case((is_out, col(T.id))).label("out_row"),
               *kg.labelled("in_kg", col(T.qty_kg), is_in), case((is_in, col(T.id))).label("in_row"),
               *(nothing.label(c) for c in (*kg.names["shipped"], *kg.names["received"], "mid", *flag_cols)))
        .join(LedgerRow, col(LedgerRow.id) == col(T.ledger_id))
        .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year).in_([w.year, w.year + 1]),
               col(T.direction).in_(["out", "in"]), func.length(col(T.manifest_no)) == 14))
    lo, hi = f"{w.year - 1}0000000000", f"{w.year + 1}9999999999"
    manifest_side = (
        select(col(ManifestRow.number), col(ManifestLineRow.waste_code), *([nothing] * (2 * kg.width + 2)),
               *kg.parts(col(ManifestLineRow.quantity_kg)), *kg.parts(func.coalesce(col(ManifestLineRow.received_kg), 0)),
               col(ManifestRow.id), *manifest_flags)
        .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
        .join(Sh, col(Sh.id) == col(ManifestRow.shipper_id))
        .where(col(ManifestRow.is_current).is_(True), col(ManifestRow.number) >= lo, col(ManifestRow.number) <= hi))
    return union_all(ledger_side, manifest_side).subquery()


def _reason(g: Any, p: int, q: int, min_kg: int) -> Any:
    """Why a (number, code) disagrees, first match wins; NULL when the three sides agree."""
    def differs(a: Any, b: Any) -> Any:
        d = func.abs(a - b)
        return and_(d > min_kg, d * q > b * p)

    has_m, has_o, has_i = g.c.mid.is_not(None), g.c.out_row.is_not(None), g.c.in_row.is_not(None)
    shipped, arrived, in_year = g.c.f_shipped == 1, g.c.f_arrived == 1, g.c.f_in_year == 1
    return case(
        (and_(~has_m, or_(has_o, has_i)), literal("unknown_number")),
        (and_(has_m, has_o, shipped, differs(g.c.out_kg, g.c.shipped)), literal("out_vs_manifest")),
        (and_(has_m, has_i, arrived, differs(g.c.in_kg, g.c.received)), literal("in_vs_manifest")),
        (and_(has_m, ~has_o, in_year, shipped, g.c.f_shipped_before == 1, g.c.f_transfer == 1),
         literal("out_missing")),
        (and_(has_m, ~has_i, in_year, arrived, g.c.received > 0, g.c.f_received_before == 1), literal("in_missing")),
        else_=literal(None))


def _reconciliation_statement(pg: bool, mode: str, w: _Window, p: int, q: int, min_kg: int) -> Any:
    """One pass: the three sides as one UNION ALL keyed by (number, code), one GROUP BY with per-side sums.

    Equivalent to a FULL OUTER JOIN of the three per-side aggregates (a side is present when its group has one
    of its rows), but the database groups 3 M narrow rows once instead of aggregating each side and joining
    twice on COALESCEd keys."""
    kg = _KgSums(mode)
    u = _three_sides(pg, kg, w)
    if pg:
        fcols = [func.bit_and(u.c.fbits).op(">>")(i).op("&")(1).label(c) for i, c in enumerate(_FLAGS)]
    else:
        fcols = [func.min(u.c[c]).label(c) for c in _FLAGS]
    g = (select(u.c.no, u.c.code, kg.total(u, "out_kg"), func.min(u.c.out_row).label("out_row"),
                kg.total(u, "in_kg"), func.min(u.c.in_row).label("in_row"),
                kg.total(u, "shipped"), kg.total(u, "received"), func.min(u.c.mid).label("mid"), *fcols)
         .group_by(u.c.no, u.c.code).subquery())
    stmt = select(g, _reason(g, p, q, min_kg).label("reason")).subquery()
    return select(stmt).where(stmt.c.reason.is_not(None))


def reconciliation_rows(session: Session, year: int, cutoff: datetime, ratio: tuple[int, int],
                        min_kg: int) -> list[ReconciliationRow]:
    """The (number, code) pairs of ``year`` whose 转出, manifest and 转入 disagree by more than ``ratio`` (p/q) and
    ``min_kg``, or miss a side that should have been written before ``cutoff``, or cite an unknown number."""
    p, q = ratio
    w = _Window(year, cutoff)
    if not is_postgres(session):
        rows = list(session.execute(_reconciliation_statement(False, "plain", w, p, q, min_kg)))
    else:
        try:  # a row of 2^31 kg or more fails the int4 cast: then the exact, slower split sums
            with session.begin_nested():
                rows = list(session.execute(_reconciliation_statement(True, "int4", w, p, q, min_kg)))
        except DBAPIError as e:
            if getattr(e.orig, "sqlstate", None) != "22003":  # numeric_value_out_of_range
                raise
            rows = list(session.execute(_reconciliation_statement(True, "split", w, p, q, min_kg)))
    return [ReconciliationRow(r.no, r.code, _int(r.out_kg), r.out_row, _int(r.in_kg), r.in_row, _int(r.shipped),
                              _int(r.received), r.mid, r.reason) for r in rows]


def side_units(session: Session, year: int, numbers: Iterable[str]) -> dict[tuple[str, str, str], int]:
    """(number, code, direction) → the smallest unit id among the ledger rows of that side (as the grouping would
    give), for the listed numbers only: kept out of the million-group aggregate."""
    T = TransferEntryRow  # noqa: N806
    out: dict[tuple[str, str, str], int] = {}
    for where in _id_filters(session, col(T.manifest_no), numbers, String):
        for no, code, direction, uid in session.execute(
                select(col(T.manifest_no), col(T.code), col(T.direction), func.min(col(LedgerRow.unit_id)))
                .join(LedgerRow, col(LedgerRow.id) == col(T.ledger_id))
                .where(where, col(LedgerRow.is_current).is_(True), col(LedgerRow.year).in_([year, year + 1]),
                       col(T.direction).in_(["out", "in"]), func.length(col(T.manifest_no)) == 14)
                .group_by(col(T.manifest_no), col(T.code), col(T.direction))):
            out[(str(no), code, direction)] = uid
    return out


def manifest_ends(session: Session, ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """manifest id → (shipper id, receiver's credit code)."""
    out: dict[int, tuple[int, str]] = {}
    for where in _id_filters(session, col(ManifestRow.id), ids):
        for mid, shipper_id, rc in session.execute(
                select(col(ManifestRow.id), col(ManifestRow.shipper_id), col(ManifestRow.receiver_code)).where(where)):
            out[int(mid or 0)] = (shipper_id, rc)
    return out


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
