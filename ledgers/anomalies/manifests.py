"""Findings on the manifests (联单): receipts confirmed late (第十八条), lines received differently from what was
shipped, and 转出 rows of hazardous codes without a well-formed 联单编号."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime

from ledgers.manifests import HAZ_STREAMS, local_date
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import WorkCalendar
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage.findings import ReceiptCandidate, TransferRow
from nofei.storage.uow import UnitOfWork

from .common import MAX_NAMED, Finding, Units, anomaly, ledger_rows

log = logging.getLogger("nofei")


class _Lateness:
    """The calendar decided once per date: a year has ~365 start dates and fewer recording dates than manifests,
    so the deadline is memoised per start day and the lateness per (deadline, day seen)."""

    def __init__(self, cal: WorkCalendar, days: int) -> None:
        self.cal, self.days = cal, days
        self.dues: dict[date, date] = {}
        self.lates: dict[tuple[date, date], tuple[int, bool]] = {}

    def due(self, start: date) -> date:
        """The last day to confirm (``CalendarNotCovered`` when its year's holidays are not known)."""
        if start not in self.dues:
            self.dues[start] = M.receipt_deadline(start, self.cal, self.days)
        return self.dues[start]

    def late(self, due: date, seen: date) -> tuple[int, bool]:
        """Working days from ``due`` to ``seen`` and whether that is only a lower bound (the calendar ends)."""
        if (due, seen) not in self.lates:
            try:
                self.lates[(due, seen)] = (self.cal.working_days_between(due, seen), False)
            except M.CalendarNotCovered as e:  # late for sure: counted up to the last day the calendar knows
                self.lates[(due, seen)] = (self.cal.working_days_between(due, date(e.year - 1, 12, 31)), True)
        return self.lates[(due, seen)]


def _overdue_finding(r: ReceiptCandidate, due: date, late: int, at_least: bool) -> Finding:
    shipped_on = local_date(r.shipped_at)
    in_transit = r.received_at is None
    recorded_on = None if r.recorded_at is None or in_transit else local_date(r.recorded_at)
    start = shipped_on if r.received_at is None else (r.accepted_on or local_date(r.received_at))
    overdue = (f"逾期{'至少 ' if at_least else ' '}{late} 个工作日"
               f"{'；此后的工作日历尚未载入' if at_least else ''}")
    if in_transit:
        msg = (f"联单 {r.number} {shipped_on} 起运，仍在运输中未确认接收；以起运日期代替接受日期，"
               f"应在 {due} 前确认（{overdue}）")
    else:
        msg = f"联单 {r.number} {start} 接受，应在 {due} 前在系统中确认，于 {recorded_on} 才录入（{overdue}）"
    return anomaly(
        "receipt_overdue", units=[r.shipper, r.receiver, r.carrier or ""], mass_kg=r.kg or 0,
        manifests=[r.number], message=msg,
        detail={"shipped_on": shipped_on.isoformat(), "due": due.isoformat(), "status": r.status,
                "accepted_on": start.isoformat() if not in_transit else None,
                "counted_from": "shipped_on" if in_transit else "accepted_on",
                "received_on": local_date(r.received_at).isoformat() if r.received_at is not None else None,
                "recorded_on": recorded_on.isoformat() if recorded_on else None,
                "working_days_late": late})


def receipt_overdue(uow: UnitOfWork, year: int, as_of: datetime) -> list[Finding]:
    """第十八条: the receipt is recorded in nofei more than ``days`` working days after the 接受日期
    (``accepted_on``); while the load is still in transit the shipping date stands in (and the finding says so).

    Rows written before ``accepted_on``/``received_entered_at`` existed count from the receipt time itself."""
    days = uow.rules.receipt_working_days
    calendar = _Lateness(uow.rules.calendar, days)
    today = local_date(as_of)
    out = []
    for r in repo.receipt_candidates(uow.session, year, as_of, days):
        if r.received_at is None:
            start, seen = local_date(r.shipped_at), today
        else:
            start = r.accepted_on or local_date(r.received_at)
            seen = local_date(r.recorded_at) if r.recorded_at is not None else today
        try:
            due = calendar.due(start)
        except M.CalendarNotCovered as e:
            # the deadline itself falls in a year whose holidays are not yet known (chinesecalendar, NOFEI_HOLIDAYS):
            # this manifest cannot be judged, and is not guessed as plain weekdays; the rest of the list stands
            log.warning("receipt deadline not judged", extra={"manifest": r.number, "reason": str(e)})
            continue
        if seen <= due:
            continue
        late, at_least = calendar.late(due, seen)
        if late <= 0:  # seen on a rest day right after the deadline: not a working day late (issue 13)
            continue
        out.append(_overdue_finding(r, due, late, at_least))
    return out


def discrepancies(uow: UnitOfWork, year: int) -> list[Finding]:
    """A received line that differs from the shipped one by > 5 % and > 0.1 t (flagged at receipt)."""
    out = []
    for r in repo.discrepant_lines(uow.session, year):
        got = (r.received_kg or 0) + (r.rejected_kg or 0)
        out.append(anomaly(
            "discrepancy", units=[r.shipper, r.receiver], mass_kg=abs(got - r.quantity_kg), manifests=[r.number],
            waste_code=r.waste_code,
            message=f"联单 {r.number} 第 {r.line_no} 行 {r.waste_code}：转移 {kg_to_t_float(r.quantity_kg)} t，"
                    f"接收 {kg_to_t_float(got)} t",
            detail={"line_no": r.line_no, "shipped_kg": r.quantity_kg, "received_kg": r.received_kg,
                    "rejected_kg": r.rejected_kg}))
    return out


def _needing_numbers(uow: UnitOfWork, year: int) -> dict[tuple[int, str], list[TransferRow]]:
    """转出 rows without a good number per (unit id, code), less those exempt from the 联单 at the transport stage
    (豁免清单: e.g. 900-052-31, or HW01 of a clinic with ≤ 19 beds), which need none — though a number they do
    carry must still be well formed."""
    groups: dict[tuple[int, str], list[TransferRow]] = defaultdict(list)
    for r in repo.out_rows_without_number(uow.session, year, HAZ_STREAMS):
        groups[(r.unit_id, r.code)].append(r)
    cat = uow.catalogue.for_year(year)
    clinics = repo.small_clinics(uow.session)
    for key in list(groups):
        if cat.transport_exempt(key[1], small_clinic=key[0] in clinics) is not None:
            kept = [r for r in groups[key] if r.manifest_no]
            if kept:
                groups[key] = kept
            else:
                del groups[key]
    return groups


def missing_numbers(uow: UnitOfWork, year: int, units: Units) -> list[Finding]:
    """One finding per unit and code with 转出 rows of hazardous/medical codes lacking a well-formed 联单编号
    (a 14-character number that is not all digits is caught by the reconciliation as an unknown number)."""
    groups = _needing_numbers(uow, year)
    where = ledger_rows(uow, [r.id for rs in groups.values() for r in rs[:MAX_NAMED]], units)
    out = []
    for (uid, code), rs in groups.items():
        cc = units.by_id.get(uid, "")
        kg = sum(r.qty_kg for r in rs)
        out.append(anomaly(
            "missing_manifest_number", units=[cc, *sorted({r.counterpart for r in rs})], mass_kg=kg, waste_code=code,
            ledger_rows=[where[r.id] for r in rs[:MAX_NAMED] if r.id in where], ledger_row_count=len(rs),
            message=f"{cc} 有 {len(rs)} 条 {code} 转出记录没有有效的联单编号，共 {kg_to_t_float(kg)} t",
            detail={"values": sorted({r.manifest_no or "" for r in rs})[:10]}))
    return out
