"""The trace repository: what a trace reads besides the flow graph (``nofei.storage.flowdata``) — the
follow-on loads of a refused manifest, the codes a unit moved or stored in a year, and the names and places of
the units a trace shows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.storage.engine import in_chunks
from nofei.storage.manifests import FollowOnLine, follow_on_lines, unit_names
from nofei.storage.tables import LedgerRow, ManifestLineRow, ManifestRow, StockEntryRow, UnitRow

__all__ = ["FollowOnLine", "follow_on_lines", "unit_codes_of_year", "unit_names", "unit_places"]


def unit_codes_of_year(session: Session, unit_id: int, credit_code: str, year: int, *, shipped: bool) -> set[str]:
    """The waste codes a unit's current manifests of ``year`` carried (as shipper when ``shipped``, else as
    receiver) plus the hazardous and medical codes of its current ledgers' stock entries that year."""
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    side = col(ManifestRow.shipper_id) == unit_id if shipped else col(ManifestRow.receiver_code) == credit_code
    codes = set(session.execute(
        select(col(ManifestLineRow.waste_code)).join(ManifestRow, col(ManifestRow.id) == col(ManifestLineRow.manifest_id))
        .where(side, col(ManifestRow.is_current).is_(True), col(ManifestRow.planned_date) >= y0,
               col(ManifestRow.planned_date) <= y1).distinct()).scalars())
    codes |= set(session.execute(
        select(col(StockEntryRow.code)).join(LedgerRow, col(LedgerRow.id) == col(StockEntryRow.ledger_id))
        .where(col(LedgerRow.unit_id) == unit_id, col(LedgerRow.year) == year, col(LedgerRow.is_current).is_(True),
               col(StockEntryRow.stream).in_(("hazardous", "medical")))).scalars())
    return {str(c) for c in codes}


def unit_places(session: Session, codes: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    """code -> (district, park) of registered units; (None, None) for codes no unit has."""
    wanted = sorted(set(codes))
    out: dict[str, tuple[str | None, str | None]] = {c: (None, None) for c in wanted}
    for chunk in in_chunks(wanted):
        for cc, d, p in session.execute(select(col(UnitRow.credit_code), col(UnitRow.district), col(UnitRow.park))
                                        .where(col(UnitRow.credit_code).in_(list(chunk)))):
            out[cc] = (d, p)
    return out
