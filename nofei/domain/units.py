"""Units (单位) — the enterprises that produce, collect, carry, utilise or dispose of waste."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from nofei.text import to_halfwidth

Role = Literal["producer", "collector", "carrier", "utiliser", "disposer"]
ROLES: tuple[Role, ...] = ("producer", "collector", "carrier", "utiliser", "disposer")
ROLE_ZH: dict[str, str] = {"producer": "产生单位", "collector": "收集单位", "carrier": "运输单位", "utiliser": "利用单位",
                           "disposer": "处置单位"}

# What kind of unit it is, for the indicators (indicators.md §3): the hazardous indicators count industrial
# producers — a licensed unit's (持证经营单位) own generated waste counts as industrial — and social-source
# hazardous waste (汽修 900-214-08, laboratories 900-047-49) is reported beside them; medical institutions make
# the denominator of the coverage rate.
UnitType = Literal["industrial", "social_source", "medical_institution", "licensed"]
UNIT_TYPES: tuple[UnitType, ...] = ("industrial", "social_source", "medical_institution", "licensed")
UNIT_TYPE_ZH: dict[str, str] = {"industrial": "工业企业", "social_source": "社会源产生单位",
                                "medical_institution": "医疗卫生机构", "licensed": "持证经营单位"}
INDUSTRIAL_TYPES: frozenset[str] = frozenset({"industrial", "licensed"})

# GB 32100-2015 统一社会信用代码: 31-character alphabet (no I, O, Z, S, V) and position weights.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(CREDIT_ALPHABET)}


def credit_check_char(first17: str) -> str:
    """The check character of a unified social credit code (GB 32100-2015 §4.3, MOD 31)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(raw: object) -> str:
    """Upper-case, strip spaces and full-width characters a clerk may type."""
    return to_halfwidth(str(raw or "")).strip().upper().replace(" ", "")


def is_valid_credit_code(raw: object) -> bool:
    """True when ``raw`` is 18 characters of the GB 32100-2015 alphabet with a correct check character."""
    code = normalise_credit_code(raw)
    if len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    if not code[2:8].isdigit():
        return False
    return credit_check_char(code[:17]) == code[17]


def make_credit_code(region6: str, body9: str, dept: str = "9", kind: str = "1") -> str:
    """Build a valid credit code (for tests and the demo): 登记管理部门 + 机构类别 + 区划 + 主体标识 + 校验."""
    first17 = f"{dept}{kind}{region6}{body9}"
    return first17 + credit_check_char(first17)


def month_days(month: str) -> tuple[date, date]:
    """The first and last day of a ``YYYY-MM`` month."""
    y, m = int(month[:4]), int(month[5:7])
    return date(y, m, 1), date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)


def year_days(year: int) -> tuple[date, date]:
    """The first and last day of a calendar year."""
    return date(year, 1, 1), date(year, 12, 31)


def in_force(valid_from: date | None, valid_to: date | None, first: date, last: date | None = None) -> bool:
    """The permit period rule, the one definition: a permit valid from ``valid_from`` to ``valid_to`` (both
    days included, None = open) is in force on the day ``first``, or on some day of ``first``..``last``."""
    last = first if last is None else last
    return (valid_from is None or valid_from <= last) and (valid_to is None or valid_to >= first)


def names_hazardous_waste(codes: Iterable[str]) -> bool:
    """A permit for hazardous waste: it names an HW category (HW08) or an HW-form code (NNN-NNN-NN)."""
    for c in codes:
        c = str(c).upper()
        if (c.startswith("HW") and c[2:].isdigit()) or (len(c) == 10 and c[3] == "-" and c[7] == "-"):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Permit:
    """A hazardous-waste business permit (危险废物经营许可证) or equivalent licence."""

    number: str
    waste_codes: tuple[str, ...]
    methods: tuple[str, ...]
    capacity_kg: int
    valid_from: date | None = None
    valid_to: date | None = None

    def in_force(self, first: date, last: date | None = None) -> bool:
        """Valid on ``first`` (or on some day up to ``last``): see ``in_force``."""
        return in_force(self.valid_from, self.valid_to, first, last)

    def names(self, code: str, method: str | None) -> bool:
        """The permit names the code (or its HW category) and the method (no method, or none listed: any)."""
        cat = f"HW{code[-2:]}" if len(code) == 10 and code[-3] == "-" else None
        code_ok = code in self.waste_codes or (cat is not None and cat in self.waste_codes)
        return code_ok and (method is None or not self.methods or method in self.methods)

    def covers(self, code: str, method: str | None, on: date | None = None) -> bool:
        """True when the permit names the code (or its HW category) and the method, and is valid on ``on``."""
        return (on is None or self.in_force(on)) and self.names(code, method)


@dataclass(frozen=True, slots=True)
class Unit:
    """A registered unit (单位) with its roles and permits."""

    credit_code: str
    name: str
    district: str
    park: str | None = None
    roles: tuple[Role, ...] = ()
    permits: tuple[Permit, ...] = field(default_factory=tuple)
    unit_type: UnitType = "industrial"
    small_clinic: bool = False  # a medical institution with ≤ 19 beds (豁免清单 item 2)
