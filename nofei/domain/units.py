"""Units (单位) — the enterprises that produce, collect, carry, utilise or dispose of waste."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
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


@dataclass(frozen=True, slots=True)
class Permit:
    """A hazardous-waste business permit (危险废物经营许可证) or equivalent licence."""

    number: str
    waste_codes: tuple[str, ...]
    methods: tuple[str, ...]
    capacity_kg: int
    valid_from: date | None = None
    valid_to: date | None = None

    def covers(self, code: str, method: str | None, on: date | None = None) -> bool:
        """True when the permit names the code (or its HW category) and the method, and is valid on ``on``."""
        if on is not None and (
            (self.valid_from and on < self.valid_from) or (self.valid_to and on > self.valid_to)
        ):
            return False
        cat = f"HW{code[-2:]}" if len(code) == 10 and code[-3] == "-" else None
        code_ok = code in self.waste_codes or (cat is not None and cat in self.waste_codes)
        method_ok = method is None or not self.methods or method in self.methods
        return code_ok and method_ok


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
