"""HJ 1259 rules as pure functions: periods and deadlines (7.2), the tier rule at its thresholds (4.2)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nofei.domain.declarations import (
    BadPeriod,
    Period,
    YearFigures,
    decide_tier,
    declaration_status,
    declarations_due,
    parse_period,
    province_of,
)
from nofei.domain.units import make_credit_code


@pytest.mark.parametrize(("text", "kind", "months", "deadline", "table"), [
    ("2025-03", "month", ["2025-03"], date(2025, 4, 15), "C.1"),
    ("2025-12", "month", ["2025-12"], date(2026, 1, 15), "C.1"),
    ("2025-Q1", "quarter", ["2025-01", "2025-02", "2025-03"], date(2025, 4, 15), "C.2"),
    ("2025-q4", "quarter", ["2025-10", "2025-11", "2025-12"], date(2026, 1, 15), "C.2"),
    ("2025", "year", [f"2025-{m:02d}" for m in range(1, 13)], date(2026, 3, 31), "C.3"),
])
def test_periods_their_months_and_deadlines(text, kind, months, deadline, table):
    p = parse_period(text)
    assert (p.kind, p.months(), p.deadline(), p.table) == (kind, months, deadline, table)


@pytest.mark.parametrize("bad", ["", "2025-00", "2025-13", "2025-Q0", "2025-Q5", "25-03", "2025/03", "1999", "2025-3"])
def test_bad_periods_are_refused(bad):
    with pytest.raises(BadPeriod):
        parse_period(bad)


@given(st.integers(2000, 2100), st.sampled_from(["month", "quarter", "year"]), st.integers(1, 12))
def test_period_keys_round_trip_and_previous_ends_the_day_before(year, kind, idx):
    idx = {"month": idx, "quarter": (idx - 1) // 3 + 1, "year": 1}[kind]
    p = Period(year, kind, idx)
    assert parse_period(p.key) == p
    assert p.previous().end.toordinal() == p.start.toordinal() - 1
    assert p.deadline() > p.end


def test_due_declarations_per_tier():
    assert [p.key for p in declarations_due("key", 2025)] == [f"2025-{m:02d}" for m in range(1, 13)] + ["2025"]
    assert [p.key for p in declarations_due("simplified", 2025)] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2025"]
    assert [p.key for p in declarations_due("registration", 2025)] == ["2025"]


def test_status_around_the_deadline():
    p = parse_period("2025-Q1")
    all_in = {"2025-01": date(2025, 2, 1), "2025-02": date(2025, 3, 1), "2025-03": date(2025, 4, 15)}
    assert declaration_status(p, all_in, date(2025, 3, 31)) == "not_due"
    assert declaration_status(p, {}, date(2025, 4, 15)) == "open"
    assert declaration_status(p, {}, date(2025, 4, 16)) == "late"
    assert declaration_status(p, all_in, date(2025, 4, 20)) == "ready"
    assert declaration_status(p, {**all_in, "2025-03": date(2025, 4, 16)}, date(2025, 4, 20)) == "late_ready"


def _y(year: int, kg: int, methods: tuple[str, ...] = ()) -> YearFigures:
    return YearFigures(year, kg, 1, methods)


@pytest.mark.parametrize(("kg", "tier"), [(9_999, "registration"), (10_000, "simplified"), (99_999, "simplified"),
                                          (100_000, "key")])
def test_thresholds_are_inclusive(kg, tier):
    assert decide_tier(2025, [_y(2024, kg)]).tier == tier


def test_the_three_year_window_and_its_fallbacks():
    hist = [_y(2020, 500_000), _y(2021, 5_000), _y(2022, 20_000), _y(2023, 1_000)]
    d = decide_tier(2024, hist)  # 2021–2023: 2020's 500 t is out of the window
    assert (d.tier, d.annual_kg, d.basis, [f.year for f in d.years]) == ("simplified", 20_000, "last_three_years",
                                                                         [2021, 2022, 2023])
    assert decide_tier(2021, hist).basis == "operating_years"
    d = decide_tier(2019, [_y(2019, 12_000)])
    assert (d.tier, d.basis) == ("simplified", "current_year")
    assert decide_tier(2030, hist).basis == "none"


def test_licence_beats_own_facility_beats_amount():
    d = decide_tier(2025, [_y(2024, 1_000, ("D10",))], licences=["L1"])
    assert (d.tier, d.rule) == ("key", "licence") and "L1" in d.reason and "1.000 吨" in d.reason
    d = decide_tier(2025, [_y(2024, 1_000, ("D10",))])
    assert (d.tier, d.rule, d.own_methods) == ("key", "own_facility", ("D10",))


def test_province_from_the_credit_code():
    assert province_of(make_credit_code("630104", "AB0000001")) == "青海省"
    assert province_of(make_credit_code("620102", "AB0000001")) == "甘肃省"
    assert province_of("short") is None
