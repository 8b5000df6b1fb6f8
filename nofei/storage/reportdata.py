"""SQL for what the annual report reads itself: the years with ledgers and who reported which months (issue 15).

Only current ledger versions count, as everywhere else. The figures (indicators, fates, flows) come from
the one flow model (``nofei.storage.flowdata``); this module holds only the registry and ledger reads
behind the report's trend axis and its data-completeness table. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.storage.tables import LedgerRow, UnitRow


@dataclass(frozen=True, slots=True)
class ReportingUnit:
    """A registered unit as the completeness table needs it: who, where, and from which month it reports."""

    id: int
    credit_code: str
    name: str
    district: str
    park: str | None
    reports_from: str | None


def years_with_ledgers(session: Session) -> list[int]:
    """The years with at least one current ledger, ascending."""
    rows = session.execute(select(col(LedgerRow.year)).where(col(LedgerRow.is_current).is_(True)).distinct())
    return sorted(int(r[0]) for r in rows)


def reporting_units(session: Session) -> list[ReportingUnit]:
    """Every registered unit, by district then credit code."""
    rows = session.execute(select(UnitRow)).scalars().all()
    units = [ReportingUnit(int(u.id or 0), u.credit_code, u.name, u.district, u.park, u.reports_from) for u in rows]
    return sorted(units, key=lambda u: (u.district, u.credit_code))


def reported_months(session: Session, year: int) -> dict[int, set[str]]:
    """Per unit id: the months of ``year`` that have a current ledger."""
    q = select(col(LedgerRow.unit_id), col(LedgerRow.month)).where(col(LedgerRow.year) == year,
                                                                  col(LedgerRow.is_current).is_(True))
    out: dict[int, set[str]] = defaultdict(set)
    for uid, month in session.execute(q):
        out[int(uid)].add(str(month))
    return dict(out)
