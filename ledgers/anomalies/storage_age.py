"""Hazardous waste held in stock over a year (固废法 第八十一条, regulations.md §2.5), aged FIFO over the monthly
ledgers (the rule itself: ``nofei.domain.findings.fifo_over_limit``)."""

from __future__ import annotations

from collections import defaultdict

from ledgers.manifests import HAZ_STREAMS
from nofei.domain.findings import StockMonth, fifo_over_limit
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage.uow import UnitOfWork

from .common import Finding, Units, anomaly


def _held_series(uow: UnitOfWork, year: int, units: Units,
                 scope: set[str] | None) -> dict[tuple[int, str], list[StockMonth]]:
    """Each (unit id, code)'s months, for the stocks still held at the end of the year's last reported month
    (only those can be old); arrivals are generated only, the receipts are added by the caller."""
    series: dict[tuple[int, str], list[StockMonth]] = defaultdict(list)
    for r in repo.hazardous_stock(uow.session, year, HAZ_STREAMS):
        if scope is not None and units.by_id.get(r.unit_id) not in scope:
            continue
        series[(r.unit_id, r.code)].append((r.month, r.open_kg, r.generated_kg, r.close_kg, r.ledger_id))
    return {k: v for k, v in series.items() if v and int(v[-1][0][:4]) == year and v[-1][3] > 0}


def storage_over_year(uow: UnitOfWork, year: int, units: Units, scope: set[str] | None) -> list[Finding]:
    """One finding per unit and code whose stock holds a batch older than the storage limit."""
    limit = uow.rules.storage_limit_days
    held = _held_series(uow, year, units, scope)
    ins = repo.received_by_ledger(uow.session, [m[4] for v in held.values() for m in v])
    out = []
    for (uid, code), months in held.items():
        kg, since, at = fifo_over_limit([(m[0], m[1], m[2] + ins.get((m[4], code), 0), m[3], m[4]) for m in months],
                                        limit)
        if kg <= 0:
            continue
        cc = units.by_id.get(uid, "")
        out.append(anomaly(
            "storage_over_year", units=[cc], mass_kg=kg, waste_code=code,
            ledger_rows=[{"ledger_id": months[-1][4], "unit": cc, "month": months[-1][0], "sheet": "产生贮存"}],
            message=f"{cc} 的 {code} 有 {kg_to_t_float(kg)} t 自 {since} 起贮存至 {at}，超过 {limit} 天",
            detail={"oldest_month": since, "as_of": at.isoformat() if at else None, "limit_days": limit}))
    return out
