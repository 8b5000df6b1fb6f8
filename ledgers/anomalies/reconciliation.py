"""The three-way reconciliation (ledger-workbook.md "Counterparts"): the shipper's 转出 rows, the manifest and the
receiver's 转入 rows disagree by number and code — a quantity mismatch, one side missing after the following
month, or a row citing an unknown number.

The aggregate over the three sides is one SQL pass in ``nofei.storage.findings.reconciliation_rows`` (per
manifest number and code, which the flow graph's per-edge attestations do not keep); the rules of the cut-off
and the mass at stake are in ``nofei.domain.findings``."""

from __future__ import annotations

from datetime import datetime

from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.findings import RECONCILIATION_REASONS, following_month_cutoff, reconciliation_mass
from nofei.storage import findings as repo
from nofei.storage.findings import ReconciliationRow
from nofei.storage.uow import UnitOfWork

from .common import Finding, Units, anomaly, ledger_rows


class _Ends:
    """The units at each side of the listed rows, fetched for those rows only (kept out of the aggregate)."""

    def __init__(self, uow: UnitOfWork, year: int, rows: list[ReconciliationRow], units: Units) -> None:
        self.units = units
        self.sides = repo.side_units(uow.session, year,
                                     [r.no for r in rows if r.out_row is not None or r.in_row is not None])
        self.manifests = repo.manifest_ends(uow.session, [r.mid for r in rows if r.mid is not None])

    def of(self, r: ReconciliationRow) -> list[str]:
        """Shipper and receiver of the manifest, then the units of the 转出 and 转入 rows."""
        sid, receiver = self.manifests.get(r.mid, (None, None)) if r.mid is not None else (None, None)
        us = [self.units.code(sid), receiver, self.units.code(self.sides.get((r.no, r.code, "out"))),
              self.units.code(self.sides.get((r.no, r.code, "in")))]
        return [u for u in us if u]


def reconciliation(uow: UnitOfWork, year: int, units: Units, as_of: datetime) -> list[Finding]:
    """One finding per (number, code) whose sides disagree, judged as of ``as_of``."""
    ratio, min_kg = uow.rules.discrepancy
    rows = repo.reconciliation_rows(uow.session, year, following_month_cutoff(as_of), M.ratio_fraction(ratio),
                                    min_kg)
    ends = _Ends(uow, year, rows, units)
    where = ledger_rows(uow, [x for r in rows for x in (r.out_row, r.in_row) if x is not None], units)
    out = []
    for r in rows:
        if r.reason == "unknown_number":
            # a row citing an unknown number is an event of its ledger's month: listed in that year, never another
            lr = where.get(r.out_row or r.in_row or 0) or {}
            if not str(lr.get("month", "")).startswith(str(year)):
                continue
        sides = {"out": r.out_kg, "manifest_shipped": r.shipped, "manifest_received": r.received, "in": r.in_kg}
        out.append(anomaly(
            "reconciliation", units=ends.of(r),
            mass_kg=reconciliation_mass(r.reason, r.out_kg, r.shipped, r.received, r.in_kg), waste_code=r.code,
            manifests=[r.no] if r.shipped is not None else [],
            ledger_rows=[where[x] for x in (r.out_row, r.in_row) if x is not None and x in where],
            message=f"联单 {r.no} {r.code}：{RECONCILIATION_REASONS[r.reason]}",
            detail={"reason": r.reason, "sides_kg": sides, "number_cited": r.no}))
    return out
