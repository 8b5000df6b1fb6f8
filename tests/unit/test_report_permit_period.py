"""The declaration's licence column and the licensed report's capacity use count a permit by the one period rule:
in force on SOME day of the period, not only on its first or last day (a permit from the 10th to the 20th of a
month covers that month)."""

from __future__ import annotations

from datetime import date

from nofei.domain.units import Permit
from reports.licensed import _Capacity

MID_MONTH = Permit(number="QH-HW-0042", waste_codes=("HW08",), methods=("R9",), capacity_kg=100_000,
                   valid_from=date(2025, 3, 10), valid_to=date(2025, 3, 20))


def _row(month: str, kg: int) -> dict[str, object]:
    return {"code": "900-249-08", "method": "R9", "month": month, "ledger_id": 1, "row": 5, "qty_kg": kg}


def test_a_mid_month_permit_carries_that_months_treatment_only():
    cap = _Capacity(permits=[MID_MONTH], first=date(2025, 1, 1), last=date(2025, 12, 31))
    cap.count(_row("2025-03", 1_500))
    cap.count(_row("2025-04", 700))  # the permit ended on 20 March: April's row is not covered
    assert cap.used == {"QH-HW-0042": 1_500}
    assert [(u["month"], str(u["qty_t"])) for u in cap.uncovered] == [("2025-04", "0.700")]


def test_the_receivers_licence_is_found_for_a_period_the_permit_overlaps():
    from reports.declarations import _Receivers

    class _Period:  # the two days a declaration period is made of
        start, end = date(2025, 3, 1), date(2025, 3, 31)

    class _Unit:
        id = 7

    rec = _Receivers(units={}, permits={7: [MID_MONTH]})
    assert rec.licence(_Unit(), "900-249-08", "R9", _Period()) == "QH-HW-0042"  # type: ignore[arg-type]
    assert rec.licence(_Unit(), "900-041-49", "R9", _Period()) is None
    class _April:
        start, end = date(2025, 4, 1), date(2025, 4, 30)
    assert rec.licence(_Unit(), "900-249-08", "R9", _April()) is None  # type: ignore[arg-type]
