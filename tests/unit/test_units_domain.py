from datetime import date

import pytest

from nofei.domain.units import Permit, credit_check_char, is_valid_credit_code, make_credit_code


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
