"""Which monthly ledgers (月度台账) a unit owes (issue 13 §4).

A unit owes a ledger for every month from its ``reports_from`` (YYYY-MM: set at registration or import,
defaulting to the month it was registered, moved back by an earlier accepted ledger) to the last month whose
deadline has passed. The deadline of month M is the 15th of the month after M — the day HJ 1259-2022 §7.2 sets
for monthly declarations (次月15日前), taken for nofei's monthly ledger as a local choice (issue 13 §4); on the
15th itself the month is not yet late.
"""

from __future__ import annotations

from datetime import date

DEADLINE_DAY = 15


def month_deadline(month: str) -> date:
    """The last day on which the ledger of ``month`` (YYYY-MM) is on time: the 15th of the next month."""
    y, m = int(month[:4]), int(month[5:7])
    return date(y + (m == 12), m % 12 + 1, DEADLINE_DAY)


def months_owed(year: int, reports_from: str | None, today: date) -> list[str]:
    """The months of ``year`` owed by ``today``: from ``reports_from`` on, each whose deadline has passed."""
    start = reports_from or "0000-00"
    return [m for m in (f"{year}-{k:02d}" for k in range(1, 13)) if m >= start and month_deadline(m) < today]


def reporting_closed(year: int, today: date) -> bool:
    """True once every month of ``year`` is past its deadline (the year can be reported on as complete)."""
    return month_deadline(f"{year}-12") < today


def next_deadlines(reports_from: str | None, filed: set[str], today: date, n: int = 3) -> list[tuple[str, date]]:
    """The next ``n`` months not yet filed whose deadline is today or later, with their deadlines."""
    out: list[tuple[str, date]] = []
    y, m = today.year, today.month
    # the month before today's can still be on time (until the 15th)
    y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    while len(out) < n:
        month = f"{y}-{m:02d}"
        if (reports_from is None or month >= reports_from) and month not in filed and month_deadline(month) >= today:
            out.append((month, month_deadline(month)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
