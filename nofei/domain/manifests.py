"""Transfer manifests (电子转移联单): statuses, the lifecycle state machine, the discrepancy rule,
working-day arithmetic and the 14-digit number. Pure: no database, no web.

Sources: regulations.md §2.3 (numbering ★, receipt within 5 working days ★, discrepancies and refusal ★,
lifecycle [M]); ledger-workbook.md "Counterparts" (5 % and 0.1 t).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, TypeGuard

from nofei.access import Actor
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
ACTION_ZH: dict[str, str] = {
    "create": "提交联单", "ship": "发运", "receive": "确认接收", "reject": "拒收", "correct": "更正",
}
PARTY_ZH: dict[str, str] = {"shipper": "移出人", "carrier": "承运人", "receiver": "接受人"}

RETURN_METHOD = "S"
"""The method of a returned load received back by its shipper: 退回移出人贮存 (back into its own storage). Not a
利用/处置 method (HJ 1259 lists none for this), so it is accepted only on a return manifest."""
RETURN_METHOD_ZH = "退回移出人贮存"


def is_return(*, parent_number: str | None, shipper: str, receiver: str) -> bool:
    """A follow-on of a refusal that carries the waste back to the shipper that sent it (the 拒收 return)."""
    return parent_number is not None and receiver == shipper


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


PartyPlace = tuple[str | None, str | None, str | None]
"""A party of a manifest for the visibility rule: credit code, district, park (None, None when unregistered)."""


def may_read(actor: Actor, parties: Iterable[PartyPlace]) -> bool:
    """Who sees a manifest — the one definition (its SQL form is ``nofei.storage.manifests.visible_clause``):
    an actor reads it when it may read one of its parties (shipper, receiver, carrier): admins all; a regulator
    when a party is registered in its district or park (issue 13: the carrier's office reads what its carriers
    move); an enterprise when one of its units is a party."""
    return actor.is_admin or any(actor.can_view_unit_at(c, d, p) for c, d, p in parties if c)


# --- discrepancy --------------------------------------------------------------------------
def is_discrepancy(shipped_kg: int, received_kg: int, *, ratio: Decimal | str = "0.05", min_kg: int = 100) -> bool:
    """Received differs from shipped by more than ``ratio`` of shipped AND by more than ``min_kg``.

    A LOCAL SETTING (DISCREPANCY_RATIO, DISCREPANCY_MIN_KG; default 5 % and 0.1 t, ledger-workbook.md
    "Counterparts"): 第十八条 names the mismatch but sets no tolerance (official-check.md §2).
    Exact: integer kilograms against a Decimal ratio, no floats."""
    return discrepant(int(received_kg), int(shipped_kg), ratio_fraction(ratio), int(min_kg))


def discrepant(kg: int, against: int, ratio: tuple[int, int], min_kg: int) -> bool:
    """``is_discrepancy`` with the ratio as an integer fraction (p, q): ``kg`` differs from ``against`` by more than
    ``min_kg`` and by more than p/q of ``against`` (``diff*q > p*against``; exact, and cheap enough to run over
    a million manifests in the reconciliation)."""
    diff = abs(kg - against)
    return diff > min_kg and diff * ratio[1] > ratio[0] * against


def ratio_fraction(ratio: Decimal | str) -> tuple[int, int]:
    """``ratio`` as an integer fraction (p, q), the form ``discrepant`` takes."""
    d = Decimal(str(ratio))
    n, q = d.as_integer_ratio()
    return int(n), int(q)


# --- working days --------------------------------------------------------------------------
# The calendar lives in ``nofei.domain.calendar`` (``chinesecalendar`` plus the HOLIDAYS / EXTRA_WORKDAYS
# overrides); these names are kept here for the callers that import them from the manifests module.


def receipt_deadline(accepted: date, cal: WorkCalendar, working_days: int = 5) -> date:
    """The last day on which receipt may still be confirmed: ``working_days`` working days after acceptance.

    Source: 危险废物转移管理办法 第十八条 (official-check.md §2): the 接受人 confirms within 五个工作日
    "在接受之日起", i.e. from the day it accepted the waste (while the load is still in transit, callers pass the
    shipping date instead and say so)."""
    return cal.add_working_days(accepted, working_days)


# --- event time against entry time ------------------------------------------------------------
LATE_ENTRY_WORKING_DAYS = 10
"""第二十条: a paper 联单 is 补录 into the electronic system within 10 working days of the transfer."""
FUTURE_SLACK = timedelta(minutes=10)
"""Clock skew allowed between a phone and the server before an event counts as "in the future"."""

TIME_FLAGS_ZH: dict[str, str] = {
    "late_entry": "补录超过10个工作日", "before_submission": "发生时间早于联单提交",
}


@dataclass(frozen=True, slots=True)
class TimeCheck:
    """What the time rules say about one step: refusals (the step is not recorded) and flags (it is, marked)."""

    refused: tuple[tuple[str, str, str], ...] = ()  # (code, 中文, English)
    flags: tuple[str, ...] = ()


def check_step_time(event: datetime, *, entered: datetime, previous: datetime | None, cal: WorkCalendar,
                    event_day: date, entered_day: date, previous_is_submission: bool = False) -> TimeCheck:
    """The time rules of issue 16 for a step dated ``event`` and entered at ``entered``.

    Refused (cannot be true): an event in the future (beyond ``FUTURE_SLACK``), or before the previous step's
    event (receipt before shipping). Flagged (true but late, 第二十条 allows 补录): an event more than
    ``LATE_ENTRY_WORKING_DAYS`` working days before its entry, and a shipping dated before the 联单 was submitted
    in nofei (the paper fallback). ``event_day``/``entered_day`` are the Beijing dates of the two times."""
    refused: list[tuple[str, str, str]] = []
    flags: list[str] = []
    if event > entered + FUTURE_SLACK:
        refused.append(("in_future", "发生时间晚于当前时间", "the event time is in the future"))
    # forms give minutes: an event in the same minute as the previous step is not before it
    if previous is not None and event < previous.replace(second=0, microsecond=0):
        if previous_is_submission:
            flags.append("before_submission")
        else:
            refused.append(("before_previous_step", "发生时间早于上一环节", "the event is dated before the previous step"))
    try:
        if cal.working_days_between(event_day, entered_day) > LATE_ENTRY_WORKING_DAYS:
            flags.append("late_entry")
    except CalendarNotCovered:  # a year whose holidays are not loaded yet: not judged, never refused for it
        pass
    return TimeCheck(tuple(refused), tuple(flags))


# --- mismatches the receiver finds (第十八条) ---------------------------------------------------
MISMATCH_KINDS: dict[str, str] = {
    "name": "名称", "quantity": "数量", "characteristics": "危险特性", "form": "形态", "packaging": "包装方式",
}


# --- numbers ------------------------------------------------------------------------------
NUMBER_RE = re.compile(r"[0-9]{14}")  # ASCII digits only: \d would take other scripts' digits too


def region_prefix(district: str) -> str:
    """The 4-digit 移出地 prefix of a number: province (2) + 设区的市 (2) of the shipping site's district.

    第十五条 (official-check.md §2): digits 5-6 the 移出地 province, 7-8 its 设区的市, so a site in any district
    or county of Xining (城东 630102 … 湟中 630106, 大通 630121, 湟源 630123) numbers 6301. Not the credit code:
    its digits 3-8 name the registration authority, which may be elsewhere."""
    d = str(district or "")
    if len(d) < 4 or not d[:4].isdigit():
        raise ValueError(f"cannot number a manifest from district {district!r}")
    return d[:4]


def format_number(year: int, prefix: str, serial: int) -> str:
    """year(4) + region prefix(4) + serial(6), e.g. ``20246301000123``."""
    if not (1000 <= year <= 9999 and len(prefix) == 4 and prefix.isdigit() and 1 <= serial <= 999_999):
        raise ValueError(f"cannot number manifest: {year} {prefix} {serial}")
    return f"{year:04d}{prefix}{serial:06d}"


def is_well_formed_number(raw: object) -> TypeGuard[str]:
    # the same as NUMBER_RE.fullmatch, without the regex machinery (it runs once per 转出 row of an upload)
    return isinstance(raw, str) and len(raw) == 14 and raw.isascii() and raw.isdigit()


def parse_number(no: str) -> tuple[int, str, int]:
    """(year, prefix, serial) of a well-formed number."""
    if not is_well_formed_number(no):
        raise ValueError(f"not a 14-digit manifest number: {no!r}")
    return int(no[:4]), no[4:8], int(no[8:])
