from datetime import date

import pytest

from nofei.domain.units import (
    Permit,
    credit_check_char,
    in_force,
    is_valid_credit_code,
    make_credit_code,
    month_days,
    names_hazardous_waste,
    year_days,
)


def test_known_valid_credit_code_passes():
    # A published example code (国家市场监督管理总局 sample) with its check character.
    assert credit_check_char("91350100M000100Y4") == "3"
    assert is_valid_credit_code("91350100M000100Y43")


@pytest.mark.parametrize("bad", ["", "123", "91350100M000100Y44", "91350100M000100Y4I", "9135010OM000100Y43"])
def test_invalid_credit_codes_fail(bad):
    assert not is_valid_credit_code(bad)


def test_full_width_and_lower_case_are_normalised():
    code = make_credit_code("630104", "MA0000001")
    fw = "".join(chr(ord(c) + 0xFEE0) for c in code.lower())
    assert is_valid_credit_code(fw)


def test_permit_covers_code_by_category_and_method_and_period():
    p = Permit("P1", ("HW08",), ("R9",), 1000_000, date(2025, 1, 1), date(2025, 12, 31))
    assert p.covers("900-199-08", "R9", date(2025, 6, 1))
    assert not p.covers("900-199-08", "D10", date(2025, 6, 1))
    assert not p.covers("900-041-49", "R9", date(2025, 6, 1))
    assert not p.covers("900-199-08", "R9", date(2026, 1, 1))


def test_month_and_year_days():
    assert month_days("2025-02") == (date(2025, 2, 1), date(2025, 2, 28))
    assert month_days("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_days("2025-12") == (date(2025, 12, 1), date(2025, 12, 31))
    assert year_days(2025) == (date(2025, 1, 1), date(2025, 12, 31))


@pytest.mark.parametrize("valid_from, valid_to, in_march", [
    (None, None, True),
    (date(2025, 3, 31), None, True),  # starts on the month's last day
    (date(2025, 4, 1), None, False),
    (None, date(2025, 3, 1), True),  # ends on its first day
    (None, date(2025, 2, 28), False),
    (date(2025, 3, 10), date(2025, 3, 20), True),
    (date(2024, 1, 1), date(2026, 1, 1), True),
])
def test_a_permit_is_in_force_during_a_month_when_its_period_meets_it(valid_from, valid_to, in_march):
    p = Permit("P", ("HW08",), (), 0, valid_from, valid_to)
    assert p.in_force(*month_days("2025-03")) is in_march
    assert in_force(valid_from, valid_to, *month_days("2025-03")) is in_march


def test_on_a_single_day_both_ends_count():
    p = Permit("P", ("HW08",), (), 0, date(2025, 1, 1), date(2025, 12, 31))
    assert p.in_force(date(2025, 1, 1)) and p.in_force(date(2025, 12, 31))
    assert not p.in_force(date(2024, 12, 31)) and not p.in_force(date(2026, 1, 1))
    assert p.covers("900-199-08", None, date(2025, 12, 31)) and not p.covers("900-199-08", None, date(2026, 1, 1))


def test_a_permit_names_a_code_by_itself_or_by_its_category_and_any_method_when_it_lists_none():
    assert Permit("P", ("900-041-49",), (), 0).names("900-041-49", "D10")
    assert not Permit("P", ("900-041-49",), (), 0).names("900-042-49", None)
    assert Permit("P", ("HW49",), ("D10",), 0).names("900-042-49", None)
    assert not Permit("P", ("HW49",), ("D10",), 0).names("900-042-49", "R9")


@pytest.mark.parametrize("codes, hazardous", [
    (["HW08"], True), (["hw49"], True), (["900-041-49"], True), (["SW59"], False), (["HWX"], False),
    ([], False), (["900041490"], False), (["SW59", "841-001-01"], True),
])
def test_a_hazardous_waste_permit_names_an_hw_category_or_an_hw_code(codes, hazardous):
    assert names_hazardous_waste(codes) is hazardous
