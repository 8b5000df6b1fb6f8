"""The 14-digit 联单编号 rule (one definition, nofei.domain.manifests): ASCII digits only, exactly 14."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from nofei.domain.manifests import is_well_formed_number

ASCII14 = re.compile(r"[0-9]{14}", re.ASCII)


@given(st.one_of(st.text(max_size=16), st.text(alphabet="0123456789０１²٣ \n", min_size=13, max_size=15)))
def test_the_rule_is_fourteen_ascii_digits(s):
    assert is_well_formed_number(s) == (ASCII14.fullmatch(s) is not None)


def test_known_cases():
    assert is_well_formed_number("20250300000001")
    for bad in ("2025030000001", "２０２５0300000001", "²0250300000001", "20250300000001\n", " 20250300000001", None, 12):
        assert not is_well_formed_number(bad)
