"""The three-way reconciliation (ledger-workbook.md "Counterparts"): the shipper's 转出 rows, the manifest and the
receiver's 转入 rows disagree by number and code — a quantity mismatch, one side missing after the following
month, or a row citing an unknown number.

Read from the one flow model: the manifests' sides are those its edges' attestations are the sums of
(``nofei.flows.graph.Attestation.sides``); the ledger rows citing numbers are summed per (number, code) by
``nofei.storage.sides.ledger_sides``; the numbers the model does not hold (a manifest only submitted, or of a
neighbouring year) are looked up; the rules are ``nofei.flows.counterparts.reason``."""

from __future__ import annotations

from datetime import datetime

from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.findings import RECONCILIATION_REASONS, following_month_cutoff, reconciliation_mass
from nofei.flows import counterparts as cp
from nofei.flows.counterparts import Disagreement
from nofei.storage import flowdata, sides
from nofei.storage.uow import UnitOfWork

from .common import Finding, Units, anomaly, ledger_rows


def disagreements(uow: UnitOfWork, year: int, as_of: datetime) -> list[Disagreement]:
    """Every (number, code) of ``year`` whose three sides disagree, judged as of ``as_of``: the model's manifest
    sides, plus those of the numbers it does not hold that ledger rows cite, against the ledger sides."""
    ratio, min_kg = uow.rules.discrepancy
    model = flowdata.manifest_sides(uow.session, year, uow.catalogue)
    units = model.units.extend()  # the cached model's naming stays as it is
    led = sides.cited(uow.session, year)
    extra = sides.sides_of_numbers(uow.session, cp.cited_elsewhere(led, model), model.codes, units)
    every = cp.concat([model.named(model.codes, units), extra])
    return cp.reconcile(every, led, year=year, cutoff=following_month_cutoff(as_of), ratio=M.ratio_fraction(ratio),
                        min_kg=min_kg)


def _units(d: Disagreement, units: Units) -> list[str]:
    """Shipper and receiver of the manifest, then the units of the 转出 and 转入 rows."""
    us = [d.manifest.shipper if d.manifest else None, d.manifest.receiver if d.manifest else None,
          units.code(d.out.unit_id if d.out else None), units.code(d.into.unit_id if d.into else None)]
    return [u for u in us if u]


def reconciliation(uow: UnitOfWork, year: int, units: Units, as_of: datetime) -> list[Finding]:
    """One finding per (number, code) whose sides disagree, judged as of ``as_of``."""
    found = disagreements(uow, year, as_of)
    where = ledger_rows(uow, [s.row for d in found for s in (d.out, d.into) if s is not None], units)
    out = []
    for d in found:
        rows = [where[s.row] for s in (d.out, d.into) if s is not None and s.row in where]
        if d.reason == "unknown_number":
            # a row citing an unknown number is an event of its ledger's month: listed in that year, never another
            cited = d.out or d.into
            first = where.get(cited.row) if cited is not None else None
            if not str((first or {}).get("month", "")).startswith(str(year)):
                continue
        sides_kg = {"out": d.out_kg, "manifest_shipped": d.shipped, "manifest_received": d.received, "in": d.in_kg}
        out.append(anomaly(
            "reconciliation", units=_units(d, units),
            mass_kg=reconciliation_mass(d.reason, d.out_kg, d.shipped, d.received, d.in_kg), waste_code=d.code,
            manifests=[d.number] if d.manifest is not None else [], ledger_rows=rows,
            message=f"联单 {d.number} {d.code}：{RECONCILIATION_REASONS[d.reason]}",
            detail={"reason": d.reason, "sides_kg": sides_kg, "number_cited": d.number}))
    return out
