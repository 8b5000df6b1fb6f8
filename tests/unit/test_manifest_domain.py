"""The pure manifest rules: state machine, discrepancy thresholds, working days, numbers."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from nofei.domain.manifests import (
    ACTIONS,
    STATUSES,
    STEPS,
    WorkCalendar,
    allowed,
    format_number,
    is_discrepancy,
    is_well_formed_number,
    parse_number,
    parties_of_actor,
    ratio_fraction,
    receipt_deadline,
    region_prefix,
)

EXPECTED = {
    ("ship", "submitted"), ("receive", "in_transit"), ("reject", "in_transit"),
    ("correct", "submitted"), ("correct", "in_transit"),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", STATUSES)
def test_every_step_from_every_status(action, status):
    assert allowed(action, status) == ((action, status) in EXPECTED)


def test_unknown_action_is_never_allowed():
    assert not allowed("delete", "submitted")


def test_final_statuses_have_no_way_out():
    for s in ("received", "partially_received", "rejected"):
        assert not any(allowed(a, s) for a in ACTIONS)


def test_each_step_belongs_to_one_party():
    assert {a: s.party for a, s in STEPS.items()} == {
        "ship": "carrier", "receive": "receiver", "reject": "receiver", "correct": "shipper"}


def test_shipper_carries_when_no_carrier_named():
    assert parties_of_actor({"A"}, shipper="A", receiver="B", carrier=None) == {"shipper", "carrier"}
    assert parties_of_actor({"A"}, shipper="A", receiver="B", carrier="C") == {"shipper"}
    assert parties_of_actor({"C"}, shipper="A", receiver="B", carrier="C") == {"carrier"}
    assert parties_of_actor({"Z"}, shipper="A", receiver="B", carrier="C") == set()


@pytest.mark.parametrize(("shipped", "received", "flag"), [
    (10_000, 10_000, False),
    (10_000, 10_500, False),   # exactly 5 %: not more than 5 %
    (10_000, 10_501, True),    # > 5 % and > 100 kg
    (10_000, 9_499, True),     # shortfall counts too
    (1_000, 1_100, False),     # 10 % but exactly 100 kg
    (1_000, 1_101, True),
    (1_000, 900, False),
    (100_000, 104_000, False),  # 4 kg... 4 000 kg but only 4 %
    (0, 101, True),
    (0, 100, False),
])
def test_discrepancy_needs_both_thresholds(shipped, received, flag):
    assert is_discrepancy(shipped, received, ratio=Decimal("0.05"), min_kg=100) is flag


def test_discrepancy_thresholds_are_settings():
    assert is_discrepancy(10_000, 10_300, ratio="0.02", min_kg=50)
    assert not is_discrepancy(10_000, 10_300, ratio="0.05", min_kg=50)
    assert ratio_fraction("0.05") == (1, 20)


def test_working_days_skip_weekends():
    cal = WorkCalendar(frozenset(), frozenset())
    fri = date(2023, 3, 3)
    assert fri.weekday() == 4
    assert cal.add_working_days(fri, 1) == date(2023, 3, 6)
    assert cal.add_working_days(fri, 5) == date(2023, 3, 10)
    assert cal.add_working_days(fri, 0) == fri
    assert cal.working_days_between(fri, date(2023, 3, 10)) == 5


def test_working_days_skip_holidays_and_count_swapped_weekends():
    cal = WorkCalendar()  # the default 2024–2025 State Council calendar
    # 国庆 2024: 1–7 Oct off, Sat 12 Oct worked; shipped Mon 30 Sep → 8, 9, 10, 11, 12 Oct.
    assert receipt_deadline(date(2024, 9, 30), cal) == date(2024, 10, 12)
    # 春节 2025: 28 Jan–4 Feb off, Sat 8 Feb worked; shipped Mon 27 Jan → 5, 6, 7, 8, 10 Feb.
    assert receipt_deadline(date(2025, 1, 27), cal) == date(2025, 2, 10)
    assert not cal.is_working_day(date(2025, 5, 1)) and cal.is_working_day(date(2025, 4, 27))


def test_calendar_is_configurable():
    cal = WorkCalendar.from_settings(["2023-03-06"], ["2023-03-04"])
    assert cal.add_working_days(date(2023, 3, 3), 2) == date(2023, 3, 7)
    assert WorkCalendar.from_settings(None, None) == WorkCalendar()


def test_deadline_is_monotonic_in_ship_date():
    cal = WorkCalendar()
    d0 = date(2024, 1, 1)
    due = [receipt_deadline(d0 + timedelta(days=i), cal) for i in range(730)]
    assert due == sorted(due)
    assert all(b - a >= timedelta(days=5) for a, b in zip([d0 + timedelta(days=i) for i in range(730)], due))


def test_number_format():
    assert format_number(2024, "6301", 123) == "20246301000123"
    assert parse_number("20246301000123") == (2024, "6301", 123)
    assert is_well_formed_number("20246301000123")
    for bad in ("2024630100012", "2024630100012X", None, 20246301000123):
        assert not is_well_formed_number(bad)
    with pytest.raises(ValueError):
        format_number(2024, "6301", 1_000_000)


def test_region_prefix_is_the_shipping_sites_province_and_city():
    """第十五条: digits 5-8 are the 移出地 province + 设区的市, whichever authority registered the unit."""
    for district in ("630102", "630105", "630106", "630121", "630123", "630100"):  # 湟中, 大通, 湟源 are Xining
        assert region_prefix(district) == "6301"
    assert region_prefix("632100") == "6321"
    with pytest.raises(ValueError):
        region_prefix("")


def test_working_days_between_agrees_with_counting_day_by_day():
    cal = WorkCalendar()
    a = date(2023, 12, 20)
    for n in range(0, 800, 7):
        b = a + timedelta(days=n)
        slow = sum(1 for i in range(1, n + 1) if cal.is_working_day(a + timedelta(days=i)))
        assert cal.working_days_between(a, b) == slow
        assert cal.working_days_between(a, cal.add_working_days(a, 5)) == 5
