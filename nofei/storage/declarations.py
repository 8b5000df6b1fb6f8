"""SQL for the HJ 1259 declarations: yearly hazardous-waste figures per unit, the entries of a period,
first-upload dates for lateness, licences, and the tier overrides (issue 14).

Only the current version of each (unit, month) ledger counts, as everywhere else; the sums run in SQL
over integer kilograms. Nothing here commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.domain.calendar import CST
from nofei.domain.declarations import HW_STREAMS, YearFigures
from nofei.domain.units import in_force, names_hazardous_waste, year_days
from nofei.storage.repo import permits_by_unit  # noqa: F401 - the permits of these units, read by reports
from nofei.storage.tables import (
    LedgerRow,
    PermitRow,
    StockEntryRow,
    TierOverrideRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
    table_of,
)

L = table_of(LedgerRow)
ST = table_of(StockEntryRow)
TR = table_of(TreatmentEntryRow)
TX = table_of(TransferEntryRow)
PM = table_of(PermitRow)
OV = table_of(TierOverrideRow)
UN = table_of(UnitRow)


def _unit_filter(column: Any, unit_ids: list[int] | None) -> Any:
    return column.in_(unit_ids or [-1]) if unit_ids is not None else true()


def year_figures(session: Session, years: Iterable[int], unit_ids: list[int] | None = None) -> dict[int, dict[int, YearFigures]]:
    """``{unit_id: {year: YearFigures}}``: HW 产生量, months with HW rows and own HW methods per year."""
    ys = sorted(set(years))
    cur = and_(L.c.is_current.is_(True), L.c.year.in_(ys), _unit_filter(L.c.unit_id, unit_ids))
    gen: dict[tuple[int, int], list[int]] = {}
    q = (select(L.c.unit_id, L.c.year, func.sum(ST.c.generated_kg), func.count(func.distinct(L.c.month)))
         .select_from(ST.join(L, ST.c.ledger_id == L.c.id))
         .where(cur, ST.c.stream.in_(HW_STREAMS)).group_by(L.c.unit_id, L.c.year))
    for uid, y, g, n in session.execute(q):
        gen[(int(uid), int(y))] = [int(g or 0), int(n)]
    methods: dict[tuple[int, int], set[str]] = defaultdict(set)
    q2 = (select(L.c.unit_id, L.c.year, TR.c.method).distinct()
          .select_from(TR.join(L, TR.c.ledger_id == L.c.id)).where(cur, TR.c.stream.in_(HW_STREAMS)))
    for uid, y, m in session.execute(q2):
        methods[(int(uid), int(y))].add(str(m))
    out: dict[int, dict[int, YearFigures]] = defaultdict(dict)
    for key in set(gen) | set(methods):
        g, n = gen.get(key, [0, 0])
        out[key[0]][key[1]] = YearFigures(key[1], g, n, tuple(sorted(methods.get(key, ()))))
    return dict(out)


def licences(session: Session, year: int, unit_ids: list[int] | None = None) -> dict[int, list[str]]:
    """Numbers of the 危险废物经营许可证 (HW permits of the registry) in force at some time in ``year``."""
    first, last = year_days(year)
    q = select(PM.c.unit_id, PM.c.number, PM.c.waste_codes, PM.c.valid_from, PM.c.valid_to).where(
        _unit_filter(PM.c.unit_id, unit_ids)).order_by(PM.c.id)
    out: dict[int, list[str]] = defaultdict(list)
    for uid, number, codes, vf, vt in session.execute(q):
        if in_force(vf, vt, first, last) and names_hazardous_waste(codes or ()):
            out[int(uid)].append(str(number))
    return dict(out)


def units(session: Session, *, district: str | None = None, codes: Iterable[str] | None = None) -> list[UnitRow]:
    """Registered units, optionally of one district (or park) or of these credit codes, by credit code."""
    stmt = select(UnitRow)
    if district:
        stmt = stmt.where((UN.c.district == district) | (UN.c.park == district))
    if codes is not None:
        stmt = stmt.where(col(UnitRow.credit_code).in_(sorted(set(codes)) or [""]))
    return list(session.execute(stmt.order_by(UnitRow.credit_code)).scalars())


# --- overrides -------------------------------------------------------------------------------
def current_overrides(session: Session, year: int, unit_ids: list[int] | None = None) -> dict[int, TierOverrideRow]:
    """The override in force per unit for ``year`` (the newest row; rows whose tier is None are withdrawals)."""
    newest = (select(func.max(OV.c.id)).where(OV.c.year == year, _unit_filter(OV.c.unit_id, unit_ids))
              .group_by(OV.c.unit_id))
    rows = session.execute(select(TierOverrideRow).where(col(TierOverrideRow.id).in_(newest))).scalars()
    return {r.unit_id: r for r in rows if r.tier is not None}


def add_override(session: Session, *, unit_id: int, year: int, tier: str | None, reason: str, actor: str) -> TierOverrideRow:
    row = TierOverrideRow(unit_id=unit_id, year=year, tier=tier, reason=reason[:500], actor=actor[:200],
                          created_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    return row


# --- a declaration period ----------------------------------------------------------------------
@dataclass
class PeriodEntries:
    """The current ledgers of a unit's months and their HW rows (plain dicts with ``ledger_id`` and ``row``)."""

    ledgers: list[dict[str, Any]] = field(default_factory=list)  # id, month, version
    stocks: list[dict[str, Any]] = field(default_factory=list)
    treatments: list[dict[str, Any]] = field(default_factory=list)
    transfers_out: list[dict[str, Any]] = field(default_factory=list)
    transfers_in: list[dict[str, Any]] = field(default_factory=list)


def period_entries(session: Session, unit_id: int, months: list[str], *, received: bool = False) -> PeriodEntries:
    """The HW rows of the current versions of ``months`` (a month, a quarter or a year) of one unit
    (``received``: its 转入 rows too)."""
    out = PeriodEntries()
    cur = and_(L.c.unit_id == unit_id, L.c.is_current.is_(True), L.c.month.in_(months))
    for r in session.execute(select(L.c.id, L.c.month, L.c.version).where(cur).order_by(L.c.month)).mappings():
        out.ledgers.append(dict(r))
    if not out.ledgers:
        return out
    ids = [r["id"] for r in out.ledgers]
    month_of = {r["id"]: r["month"] for r in out.ledgers}
    tables: list[tuple[Any, list[dict[str, Any]], tuple[Any, ...]]] = [
        (ST, out.stocks, ()), (TR, out.treatments, ()), (TX, out.transfers_out, (TX.c.direction == "out",))]
    if received:
        tables.append((TX, out.transfers_in, (TX.c.direction == "in",)))
    for tbl, target, extra in tables:
        q = (select(tbl).where(tbl.c.ledger_id.in_(ids), tbl.c.stream.in_(HW_STREAMS), *extra)
             .order_by(tbl.c.ledger_id, tbl.c.row, tbl.c.id))
        for m in session.execute(q).mappings():
            d = dict(m)
            d["month"] = month_of[d["ledger_id"]]
            target.append(d)
    return out


def month_close(session: Session, unit_id: int, month: str) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The current ledger of ``month`` (id, month, version, and row per code) and its 期末贮存量 per HW code."""
    led = session.execute(select(L.c.id, L.c.month, L.c.version).where(
        L.c.unit_id == unit_id, L.c.month == month, L.c.is_current.is_(True))).mappings().first()
    if led is None:
        return None
    closes: dict[str, int] = {}
    rows: dict[str, int | None] = {}
    for code, kg, row in session.execute(select(ST.c.code, ST.c.close_kg, ST.c.row).where(
            ST.c.ledger_id == led["id"], ST.c.stream.in_(HW_STREAMS))):
        closes[code] = int(kg)
        rows[code] = row
    return {**dict(led), "rows": rows}, closes


def first_uploads(session: Session, unit_ids: list[int], months: list[str]) -> dict[tuple[int, str], date]:
    """The China-time date on which each (unit, month) first had an accepted ledger (amendments keep it)."""
    q = (select(L.c.unit_id, L.c.month, func.min(L.c.uploaded_at))
         .where(L.c.unit_id.in_(unit_ids or [-1]), L.c.month.in_(months or [""]))
         .group_by(L.c.unit_id, L.c.month))
    out: dict[tuple[int, str], date] = {}
    for uid, month, at in session.execute(q):
        if at is None:
            continue
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # stored naive values are UTC
        out[(int(uid), str(month))] = at.astimezone(CST).date()
    return out
