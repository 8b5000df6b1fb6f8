"""Ledgers owed and not filed (issue 13): a month a unit owes (from its ``reports_from``, once the 15th of the
next month has passed: ``nofei.domain.completeness``) with no current ledger version."""

from __future__ import annotations

from datetime import datetime

from ledgers.manifests import local_date
from nofei.domain.completeness import month_deadline, months_owed
from nofei.storage import findings as repo
from nofei.storage.uow import UnitOfWork

from .common import Finding, anomaly


def missing_ledgers(uow: UnitOfWork, year: int, as_of: datetime) -> list[Finding]:
    """One finding per unit and month owed (``months_owed``) with no current ledger version."""
    today = local_date(as_of)
    filed = repo.filed_months(uow.session, year)
    out = []
    for unit_id, cc, rf in repo.units_reporting(uow.session):
        for m in months_owed(year, rf, today):
            if m in filed.get(unit_id or 0, ()):
                continue
            due = month_deadline(m)
            out.append(anomaly(
                "missing_ledger", units=[cc], mass_kg=0,
                message=f"{cc} 的 {m} 月度台账应于 {due} 前报送，至 {today} 仍未报送",
                detail={"month": m, "deadline": due.isoformat(), "reports_from": rf}))
    return out
