"""Pure rules behind the regulators' findings (异常): the FIFO storage age, the "after the following month"
cut-off of the three-way reconciliation and the mass at stake in each of its disagreements.

No database here: ``nofei.storage.findings`` fetches the aggregates, ``ledgers.anomalies`` applies these rules.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from nofei.domain.calendar import CST

# (YYYY-MM, opening stock, arrivals, closing stock, ledger id) of one unit and code, month by month
StockMonth = tuple[str, int, int, int, int]


def month_end(month: str) -> date:
    """The last day of ``YYYY-MM``."""
    y, m = int(month[:4]), int(month[5:7])
    return date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)


@dataclass(slots=True)
class _Batch:
    """Waste that entered the store on one day (``since``) and is still there (``kg``)."""

    since: date
    kg: int


def _take(q: deque[_Batch], kg: int) -> None:
    """Remove ``kg`` from the oldest batches first."""
    while kg > 0 and q:
        if q[0].kg <= kg:
            kg -= q[0].kg
            q.popleft()
        else:
            q[0].kg -= kg
            kg = 0


def fifo_over_limit(months: Sequence[StockMonth], limit_days: int) -> tuple[int, str | None, date | None]:
    """FIFO age of a stock over monthly ledgers: ``months`` = (YYYY-MM, open, arrivals, close, ledger_id) in order.

    Arrivals (generated + received) are a batch dated the month's last day; what leaves comes from the oldest
    batch first; an opening stock not explained by the previous close is a batch dated the month's first day
    (its real age is unknown, so this is the youngest it can be). Returns the mass older than ``limit_days`` at
    the end of the last month, the month the oldest such batch dates from, and the evaluation date."""
    q: deque[_Batch] = deque()
    held = 0
    last_end: date | None = None
    for month, open_kg, arrivals, close_kg, _lid in months:
        if open_kg > held:
            q.append(_Batch(date(int(month[:4]), int(month[5:7]), 1), open_kg - held))
        else:
            _take(q, held - open_kg)
        q.append(_Batch(month_end(month), arrivals))
        _take(q, open_kg + arrivals - close_kg)
        held = close_kg
        last_end = month_end(month)
    if last_end is None:
        return 0, None, None
    old = [b for b in q if b.kg > 0 and (last_end - b.since).days > limit_days]
    return sum(b.kg for b in old), (old[0].since.strftime("%Y-%m") if old else None), last_end


def following_month_cutoff(as_of: datetime) -> datetime:
    """The start of the month before ``as_of``'s month (China Standard Time): a side that should have been
    written in a month is missing only once the month after it is over (ledger-workbook.md "Counterparts"),
    so a manifest shipped or received before this instant must have its ledger rows by ``as_of``."""
    a = as_of.astimezone(CST)
    first_prev = (date(a.year, a.month, 1) - timedelta(days=1)).replace(day=1)
    return datetime(first_prev.year, first_prev.month, 1, tzinfo=CST)


RECONCILIATION_REASONS: dict[str, str] = {
    "unknown_number": "台账引用了不存在的联单编号", "out_vs_manifest": "移出方转出量与联单转移量不符",
    "in_vs_manifest": "接受方转入量与联单接收量不符", "out_missing": "联单已运输，移出方台账次月结束后仍无转出记录",
    "in_missing": "联单已接收，接受方台账次月结束后仍无转入记录",
}


def reconciliation_mass(reason: str, out_kg: int | None, shipped: int | None, received: int | None,
                        in_kg: int | None) -> int:
    """The mass at stake in one disagreement of the three sides: the gap between the two sides compared, the
    whole manifest when a ledger side is missing, the largest side when the number cited is unknown."""
    if reason == "unknown_number":
        return max([v for v in (out_kg, shipped, received, in_kg) if v is not None] or [0])
    if reason == "out_vs_manifest":
        return abs((out_kg or 0) - (shipped or 0))
    if reason == "in_vs_manifest":
        return abs((in_kg or 0) - (received or 0))
    if reason == "out_missing":
        return shipped or 0
    if reason == "in_missing":
        return received or 0
    raise ValueError(f"unknown reconciliation reason {reason}")
