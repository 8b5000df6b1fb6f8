"""Working days (工作日) for the deadlines of the 转移管理办法 (e.g. 第十八条: receipt within 5 working days).

The public holidays and the weekend days worked in exchange (调休) come from the maintained package
``chinesecalendar``, which follows the State Council notices (国务院办公厅关于部分节假日安排的通知; 2026:
holidays 1/1–1/3, 2/15–2/23, 4/4–4/6, 5/1–5/5, 6/19–6/21, 9/25–9/27, 10/1–10/7, workdays 1/4, 2/14, 2/28,
5/9, 9/20, 10/10 — official-check.md §2). The settings ``HOLIDAYS`` / ``EXTRA_WORKDAYS`` (``NOFEI_HOLIDAYS`` /
``NOFEI_EXTRA_WORKDAYS``) override single dates on top of it. A year that neither the package nor an override
covers is refused (:class:`CalendarNotCovered`): counting it as plain Monday–Friday would put every deadline
across a holiday too early.

Pure: no database, no web. Not counting the start day follows the usual rule (民法典 第二百零一条).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

from nofei.errors import Conflict

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China Standard Time, UTC+8 all year (no daylight saving since 1991): Xining's clock on every page and export."""


def today_cst() -> date:
    """Today's date in China Standard Time — the date the users live by (the server's clock runs on UTC: from
    16:00 UTC it is already the next day in Xining)."""
    return datetime.now(CST).date()


def to_cst(moment: datetime) -> datetime:
    """``moment`` on China Standard Time; a naive value is taken as UTC (the database stores UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(CST)


class CalendarNotCovered(Conflict):
    """A date falls in a year whose holiday arrangement is not known to nofei."""

    code = "calendar_not_covered"

    def __init__(self, year: int, covered: tuple[int, int] | None) -> None:
        span = f"{covered[0]}–{covered[1]}" if covered else "—"
        super().__init__(
            f"{year} 年的法定节假日安排尚未载入（chinesecalendar 覆盖 {span} 年），无法计算工作日；请升级 chinesecalendar，"
            f"或以 NOFEI_HOLIDAYS / NOFEI_EXTRA_WORKDAYS 录入该年的安排 (the holiday calendar of {year} is not known: "
            f"upgrade chinesecalendar or set NOFEI_HOLIDAYS / NOFEI_EXTRA_WORKDAYS for that year)")
        self.year = year


@cache
def _package() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(holidays, weekend workdays, years covered) of the installed ``chinesecalendar``."""
    from chinese_calendar import constants

    holidays = frozenset(constants.holidays)
    workdays = frozenset(constants.workdays)
    years = {d.year for d in holidays | workdays}
    return holidays, workdays, frozenset(range(min(years), max(years) + 1)) if years else frozenset()


def package_years() -> tuple[int, int] | None:
    """The first and last year the installed ``chinesecalendar`` covers."""
    ys = _package()[2]
    return (min(ys), max(ys)) if ys else None


DEFAULT_HOLIDAYS: frozenset[date] = _package()[0]
DEFAULT_EXTRA_WORKDAYS: frozenset[date] = _package()[1]


def parse_dates(xs: Iterable[str | date] | str) -> frozenset[date]:
    """Dates from a setting: ISO strings, dates, or one comma-separated string."""
    if isinstance(xs, str):  # NOFEI_HOLIDAYS=2024-10-01,2024-10-02 (a JSON list works too)
        xs = [x for x in (p.strip() for p in xs.split(",")) if x]
    return frozenset(x if isinstance(x, date) else date.fromisoformat(str(x)) for x in xs)


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Working days: Monday–Friday, minus public holidays, plus weekend days worked in exchange (调休).

    ``years`` are the years whose arrangement is known; asking about any other year raises
    :class:`CalendarNotCovered`."""

    holidays: frozenset[date] = DEFAULT_HOLIDAYS
    extra_workdays: frozenset[date] = DEFAULT_EXTRA_WORKDAYS
    years: frozenset[int] = field(default_factory=lambda: _package()[2])
    _cache: dict[tuple[date, int], Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_settings(cls, holidays: Iterable[str | date] | str | None, extra_workdays: Iterable[str | date] | str | None
                      ) -> WorkCalendar:
        """The package calendar with the settings' dates on top: a date in ``holidays`` is a holiday, one in
        ``extra_workdays`` a working day, whatever the package says; a year an override names counts as covered
        (an admin entering next year's notice before the package has it)."""
        ph, pw, years = _package()
        h = parse_dates(holidays) if holidays is not None else frozenset()
        w = parse_dates(extra_workdays) if extra_workdays is not None else frozenset()
        if not h and not w:
            return default_calendar()
        return cls((ph - w) | h, (pw - h) | w, years | {d.year for d in h | w})

    def covers(self, year: int) -> bool:
        return year in self.years

    def _check(self, d: date) -> None:
        if d.year not in self.years:
            raise CalendarNotCovered(d.year, (min(self.years), max(self.years)) if self.years else None)

    def is_working_day(self, d: date) -> bool:
        self._check(d)
        if d in self.extra_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself not counted; n ≥ 0)."""
        key = (start, n)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        d, left = start, n
        while left > 0:
            d += timedelta(days=1)
            if self.is_working_day(d):
                left -= 1
        self._cache[key] = d
        return d

    def _year_counts(self, year: int) -> list[int]:
        """Cumulative working days of ``year`` up to and including each day of the year (cached)."""
        key = (date(year, 1, 1), -1)
        hit: list[int] | None = self._cache.get(key)
        if hit is None:
            acc, hit = 0, []
            d = date(year, 1, 1)
            while d.year == year:
                acc += self.is_working_day(d)
                hit.append(acc)
                d += timedelta(days=1)
            self._cache[key] = hit
        return hit

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]: how many working days after ``a`` have passed by the end of ``b``."""
        if b <= a:
            return 0
        ca = self._year_counts(a.year)
        if a.year == b.year:
            return ca[b.timetuple().tm_yday - 1] - ca[a.timetuple().tm_yday - 1]
        n = ca[-1] - ca[a.timetuple().tm_yday - 1]
        for y in range(a.year + 1, b.year):
            n += self._year_counts(y)[-1]
        return n + self._year_counts(b.year)[b.timetuple().tm_yday - 1]


@cache
def default_calendar() -> WorkCalendar:
    """The package calendar without overrides (shared, so its caches are shared)."""
    return WorkCalendar()


def is_working_day(d: date, cal: WorkCalendar | None = None) -> bool:
    return (cal or default_calendar()).is_working_day(d)


def add_working_days(d: date, n: int, cal: WorkCalendar | None = None) -> date:
    """The ``n``-th working day after ``d`` (``d`` not counted). Raises ``CalendarNotCovered`` past the calendar."""
    return (cal or default_calendar()).add_working_days(d, n)


def working_days_between(a: date, b: date, cal: WorkCalendar | None = None) -> int:
    """Working days in (a, b]."""
    return (cal or default_calendar()).working_days_between(a, b)
