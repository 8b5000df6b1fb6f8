"""Transfer manifests (电子转移联单): statuses, the lifecycle state machine, the discrepancy rule,
working-day arithmetic and the 14-digit number. Pure: no database, no web.

Sources: regulations.md §2.3 (numbering ★, receipt within 5 working days ★, discrepancies and refusal ★,
lifecycle [M]); ledger-workbook.md "Counterparts" (5 % and 0.1 t).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

Status = Literal["submitted", "in_transit", "received", "partially_received", "rejected"]
STATUSES: tuple[Status, ...] = ("submitted", "in_transit", "received", "partially_received", "rejected")
Action = Literal["ship", "receive", "reject", "correct"]
ACTIONS: tuple[Action, ...] = ("ship", "receive", "reject", "correct")
Party = Literal["shipper", "carrier", "receiver"]

STATUS_ZH: dict[str, str] = {
    "submitted": "已提交/待运输", "in_transit": "运输中", "received": "已接收",
    "partially_received": "部分接收", "rejected": "拒收/退回",
}


@dataclass(frozen=True, slots=True)
class Step:
    """One allowed step of the lifecycle: who takes it, from which statuses, to which status."""

    action: Action
    party: Party
    from_statuses: tuple[Status, ...]
    to_statuses: tuple[Status, ...]


# The lifecycle (regulations.md §2.3, reconstructed [M]): the carrier picks up (ship), the receiver confirms
# receipt or refuses (in full or in part); the shipper may correct the manifest while the waste has not arrived.
STEPS: dict[str, Step] = {  # looked up by the action name a caller sends
    "ship": Step("ship", "carrier", ("submitted",), ("in_transit",)),
    "receive": Step("receive", "receiver", ("in_transit",), ("received",)),
    "reject": Step("reject", "receiver", ("in_transit",), ("rejected", "partially_received")),
    "correct": Step("correct", "shipper", ("submitted", "in_transit"), ("submitted", "in_transit")),
}
OPEN_STATUSES: frozenset[str] = frozenset({"submitted", "in_transit"})
ARRIVED_STATUSES: frozenset[str] = frozenset({"received", "partially_received"})


def allowed(action: str, status: str) -> bool:
    """True when ``action`` may be taken on a manifest in ``status``."""
    step = STEPS.get(action)
    return step is not None and status in step.from_statuses


def party_of(action: str) -> Party:
    return STEPS[action].party


def parties_of_actor(units: Iterable[str], *, shipper: str, receiver: str, carrier: str | None) -> set[Party]:
    """Which parties of a manifest an enterprise acting for ``units`` is. With no carrier named, the shipper carries."""
    us = set(units)
    out: set[Party] = set()
    if shipper in us:
        out.add("shipper")
    if receiver in us:
        out.add("receiver")
    if (carrier or shipper) in us:
        out.add("carrier")
    return out


# --- discrepancy --------------------------------------------------------------------------
def is_discrepancy(shipped_kg: int, received_kg: int, *, ratio: Decimal | str = "0.05", min_kg: int = 100) -> bool:
    """Received differs from shipped by more than ``ratio`` of shipped AND by more than ``min_kg``.

    Source: ledger-workbook.md "Counterparts" (5 % and 0.1 t); regulations.md §2.3 (discrepancies ★).
    Exact: integer kilograms against a Decimal ratio, no floats."""
    diff = abs(int(received_kg) - int(shipped_kg))
    return diff > int(min_kg) and Decimal(diff) > Decimal(str(ratio)) * Decimal(int(shipped_kg))


def ratio_fraction(ratio: Decimal | str) -> tuple[int, int]:
    """``ratio`` as an integer fraction (p, q), for the same rule written in SQL: ``diff*q > p*shipped``."""
    d = Decimal(str(ratio))
    n, q = d.as_integer_ratio()
    return int(n), int(q)


# --- working days --------------------------------------------------------------------------
# Chinese public holidays and the weekend days worked in exchange (调休), State Council notices [M: from
# background knowledge, not checked against the notices; regulations.md lists none]. Configurable: settings
# HOLIDAYS / EXTRA_WORKDAYS (lists of ISO dates) replace these.
def _span(a: str, b: str) -> list[date]:
    d0, d1 = date.fromisoformat(a), date.fromisoformat(b)
    return [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]


DEFAULT_HOLIDAYS: frozenset[date] = frozenset(
    _span("2024-01-01", "2024-01-01") + _span("2024-02-10", "2024-02-17") + _span("2024-04-04", "2024-04-06")
    + _span("2024-05-01", "2024-05-05") + _span("2024-06-10", "2024-06-10") + _span("2024-09-15", "2024-09-17")
    + _span("2024-10-01", "2024-10-07")
    + _span("2025-01-01", "2025-01-01") + _span("2025-01-28", "2025-02-04") + _span("2025-04-04", "2025-04-06")
    + _span("2025-05-01", "2025-05-05") + _span("2025-05-31", "2025-06-02") + _span("2025-10-01", "2025-10-08")
)
DEFAULT_EXTRA_WORKDAYS: frozenset[date] = frozenset(date.fromisoformat(d) for d in (
    "2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14", "2024-09-29", "2024-10-12",
    "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
))


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Working days: Monday–Friday, minus public holidays, plus weekend days worked in exchange (调休)."""

    holidays: frozenset[date] = DEFAULT_HOLIDAYS
    extra_workdays: frozenset[date] = DEFAULT_EXTRA_WORKDAYS
    _cache: dict[tuple[date, int], Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_settings(cls, holidays: Iterable[str | date] | str | None, extra_workdays: Iterable[str | date] | str | None
                      ) -> WorkCalendar:
        def dates(xs: Iterable[str | date] | str) -> frozenset[date]:
            if isinstance(xs, str):  # NOFEI_HOLIDAYS=2024-10-01,2024-10-02 (a JSON list works too)
                xs = [x for x in (p.strip() for p in xs.split(",")) if x]
            return frozenset(x if isinstance(x, date) else date.fromisoformat(str(x)) for x in xs)

        return cls(DEFAULT_HOLIDAYS if holidays is None else dates(holidays),
                   DEFAULT_EXTRA_WORKDAYS if extra_workdays is None else dates(extra_workdays))

    def is_working_day(self, d: date) -> bool:
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


def receipt_deadline(shipped: date, cal: WorkCalendar, working_days: int = 5) -> date:
    """The last day on which receipt may still be confirmed: ``working_days`` working days after shipping.

    Source: regulations.md §2.3 ★ (confirmation within 5 working days); the issue counts from shipping."""
    return cal.add_working_days(shipped, working_days)


# --- numbers ------------------------------------------------------------------------------
NUMBER_RE = re.compile(r"^\d{14}$")


def region_prefix(credit_code: str, district: str) -> str:
    """The 4-digit 移出地 prefix (province + prefecture, GB/T 2260): the credit code's administrative-division
    digits 3–6, else the registered district's first four (regulations.md §2.3 numbering ★)."""
    adm = credit_code[2:6]
    return adm if len(adm) == 4 and adm.isdigit() else district[:4]


def format_number(year: int, prefix: str, serial: int) -> str:
    """year(4) + region prefix(4) + serial(6), e.g. ``20246301000123``."""
    if not (1000 <= year <= 9999 and len(prefix) == 4 and prefix.isdigit() and 1 <= serial <= 999_999):
        raise ValueError(f"cannot number manifest: {year} {prefix} {serial}")
    return f"{year:04d}{prefix}{serial:06d}"


def is_well_formed_number(raw: object) -> bool:
    return isinstance(raw, str) and NUMBER_RE.match(raw) is not None


def parse_number(no: str) -> tuple[int, str, int]:
    """(year, prefix, serial) of a well-formed number."""
    if not is_well_formed_number(no):
        raise ValueError(f"not a 14-digit manifest number: {no!r}")
    return int(no[:4]), no[4:8], int(no[8:])
