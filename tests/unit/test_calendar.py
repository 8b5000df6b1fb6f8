"""Issue 18: working days come from chinesecalendar (State Council notices), with the settings as overrides."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import (
    CalendarNotCovered,
    WorkCalendar,
    add_working_days,
    default_calendar,
    package_years,
    working_days_between,
)


def test_2026_spring_festival_is_known():
    cal = default_calendar()
    for d in range(15, 24):  # 2026-02-15 … 02-23 (国办发明电〔2025〕7号, official-check.md §2)
        assert not cal.is_working_day(date(2026, 2, d))
    assert cal.is_working_day(date(2026, 2, 14)) and cal.is_working_day(date(2026, 2, 28))  # Saturdays worked


def test_a_2026_deadline_across_the_spring_festival():
    # Shipped Thu 2026-02-12. Working days after it: Fri 13 (1), Sat 14 (2, 调休), the holiday 15–23, Tue 24 (3),
    # Wed 25 (4), Thu 26 (5): the deadline is Thu 2026-02-26. Plain Monday–Friday would say Thu 02-19, inside
    # the holiday, and flag a receipt on 02-24 as late.
    assert M.receipt_deadline(date(2026, 2, 12), default_calendar(), 5) == date(2026, 2, 26)
    assert add_working_days(date(2026, 2, 12), 5) == date(2026, 2, 26)
    # Receipt confirmed on 02-26 is on time; on Fri 02-27 it is 1 working day late; Sat 02-28 is worked: 2
    assert working_days_between(date(2026, 2, 26), date(2026, 2, 26)) == 0
    assert working_days_between(date(2026, 2, 26), date(2026, 2, 27)) == 1
    assert working_days_between(date(2026, 2, 26), date(2026, 2, 28)) == 2
    assert working_days_between(date(2026, 2, 26), date(2026, 3, 1)) == 2  # Sunday 03-01 is not worked
    # from Fri 02-13: Sat 14 (1), 24 (2), 25 (3), 26 (4), 27 (5)
    assert add_working_days(date(2026, 2, 13), 5) == date(2026, 2, 27)


def test_working_days_agree_with_counting_one_by_one():
    cal = default_calendar()
    a = date(2025, 12, 20)
    for k in range(0, 40):
        b = a + timedelta(days=k)
        expected = sum(cal.is_working_day(a + timedelta(days=i)) for i in range(1, k + 1))
        assert cal.working_days_between(a, b) == expected


def test_a_year_the_calendar_does_not_cover_is_refused():
    years = package_years()
    assert years is not None and years[0] <= 2024 and years[1] >= 2026
    nxt = years[1] + 1
    with pytest.raises(CalendarNotCovered) as e:
        default_calendar().is_working_day(date(nxt, 3, 3))
    assert str(nxt) in e.value.message and "NOFEI_HOLIDAYS" in e.value.message and e.value.code == "calendar_not_covered"
    with pytest.raises(CalendarNotCovered):  # a deadline running into the uncovered year is refused too
        add_working_days(date(years[1], 12, 30), 5)


def test_overrides_sit_on_top_of_the_package():
    cal = WorkCalendar.from_settings(["2026-03-05"], ["2026-02-16"])
    assert not cal.is_working_day(date(2026, 3, 5))   # made a holiday
    assert cal.is_working_day(date(2026, 2, 16))      # made a working day inside the festival
    assert not cal.is_working_day(date(2026, 2, 17))  # the rest of the package stays
    assert cal.is_working_day(date(2026, 2, 14))


def test_an_override_makes_its_year_covered():
    nxt = package_years()[1] + 1  # type: ignore[index]
    cal = WorkCalendar.from_settings([f"{nxt}-01-01"], [])
    assert not cal.is_working_day(date(nxt, 1, 1))
    d = date(nxt, 1, 4)
    assert cal.is_working_day(d) is (d.weekday() < 5)
    assert WorkCalendar.from_settings(None, None) is default_calendar()
