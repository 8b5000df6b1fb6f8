"""Transfer manifests (电子转移联单): statuses, the lifecycle state machine, the discrepancy rule,
working-day arithmetic and the 14-digit number. Pure: no database, no web.

Sources: regulations.md §2.3 (numbering ★, receipt within 5 working days ★, discrepancies and refusal ★,
lifecycle [M]); ledger-workbook.md "Counterparts" (5 % and 0.1 t).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from nofei.domain.calendar import DEFAULT_EXTRA_WORKDAYS as DEFAULT_EXTRA_WORKDAYS
from nofei.domain.calendar import DEFAULT_HOLIDAYS as DEFAULT_HOLIDAYS
from nofei.domain.calendar import CalendarNotCovered as CalendarNotCovered
from nofei.domain.calendar import WorkCalendar
from nofei.domain.calendar import add_working_days as add_working_days
from nofei.domain.calendar import working_days_between as working_days_between

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
# The calendar lives in ``nofei.domain.calendar`` (``chinesecalendar`` plus the HOLIDAYS / EXTRA_WORKDAYS
# overrides); these names are kept here for the callers that import them from the manifests module.


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
