"""The pure rules behind the findings (``nofei.domain.findings``), on hand-worked cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from nofei.domain.calendar import CST
from nofei.domain.findings import fifo_over_limit, following_month_cutoff, month_end, reconciliation_mass


def test_month_end_handles_december_and_leap_february() -> None:
    assert month_end("2024-02") == date(2024, 2, 29)
    assert month_end("2023-02") == date(2023, 2, 28)
    assert month_end("2024-12") == date(2024, 12, 31)


def test_fifo_no_months_is_nothing_held() -> None:
    assert fifo_over_limit([], 365) == (0, None, None)


def test_fifo_a_batch_becomes_old_after_the_limit() -> None:
    # 100 kg arrive in January 2023 (dated 2023-01-31) and stay; 2024-01-31 is 365 days later: not over 365
    held = [("2023-01", 0, 100, 100, 1)] + [(f"2023-{m:02d}", 100, 0, 100, m) for m in range(2, 13)]
    assert fifo_over_limit([*held, ("2024-01", 100, 0, 100, 13)], 365) == (0, None, date(2024, 1, 31))
    # at 2024-02-29 it is 394 days old
    assert fifo_over_limit([*held, ("2024-01", 100, 0, 100, 13), ("2024-02", 100, 0, 100, 14)], 365) == (
        100, "2023-01", date(2024, 2, 29))


def test_fifo_takes_from_the_oldest_batch_first() -> None:
    # Jan 2023: 100 kg in. Mar 2024: 50 kg more arrive and 30 kg leave (close 120): the 30 kg leave the 2023
    # batch, so 70 kg dated 2023-01-31 are 425 days old at 2024-03-31; the March batch is young
    months = [("2023-01", 0, 100, 100, 1), ("2024-03", 100, 50, 120, 2)]
    assert fifo_over_limit(months, 365) == (70, "2023-01", date(2024, 3, 31))


def test_fifo_an_unexplained_opening_stock_is_dated_the_first_of_its_month() -> None:
    # 80 kg open in March 2024 with nothing held before: dated 2024-03-01, 30 days old at the month's end
    assert fifo_over_limit([("2024-03", 80, 0, 80, 1)], 29) == (80, "2024-03", date(2024, 3, 31))
    assert fifo_over_limit([("2024-03", 80, 0, 80, 1)], 30) == (0, None, date(2024, 3, 31))


def test_fifo_a_stock_emptied_is_never_old() -> None:
    months = [("2023-01", 0, 100, 100, 1), ("2024-03", 100, 0, 0, 2)]
    assert fifo_over_limit(months, 365) == (0, None, date(2024, 3, 31))


@pytest.mark.parametrize(("as_of", "cutoff"), [
    (datetime(2024, 3, 10, 4, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=CST)),
    # 17:00 UTC on 29 February is 1 March in Xining: the month before is February
    (datetime(2024, 2, 29, 17, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=CST)),
    (datetime(2024, 2, 29, 15, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=CST)),
    (datetime(2024, 1, 15, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=CST)),
])
def test_cutoff_is_the_start_of_the_month_before(as_of: datetime, cutoff: datetime) -> None:
    assert following_month_cutoff(as_of) == cutoff


def test_reconciliation_mass_per_reason() -> None:
    assert reconciliation_mass("out_vs_manifest", 1200, 1000, 900, None) == 200
    assert reconciliation_mass("in_vs_manifest", 1200, 1000, 900, 700) == 200
    assert reconciliation_mass("out_missing", None, 1000, 0, None) == 1000
    assert reconciliation_mass("in_missing", 1000, 1000, 950, None) == 950
    assert reconciliation_mass("unknown_number", 300, None, None, 500) == 500
    assert reconciliation_mass("unknown_number", None, None, None, None) == 0
    with pytest.raises(ValueError):
        reconciliation_mass("agrees", 1, 1, 1, 1)
