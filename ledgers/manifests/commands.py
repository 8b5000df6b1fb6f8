"""The typed commands of the manifest use cases: what a caller asks for, as given.

A command carries the caller's values unchecked (a form sends text, the API a ``Decimal``, a workbook either):
the rules that check them are in ``validation`` and name each problem by its field. ``from_mapping`` reads the
loose shape the API schemas, the pages, the workbook import and the demo produce, so every caller builds the
same command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

Raw = str | int | float | Decimal | None
"""A quantity, count or line number as the caller typed it: checked (and refused by field) by the use case."""


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


@dataclass(frozen=True, slots=True)
class NewLine:
    """One line of a new manifest: waste code, quantity (t), packaging, planned method, container count."""

    waste_code: str | None
    quantity_t: Raw
    packaging: str | None = None
    planned_method: str | None = None
    container_count: Raw = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> NewLine:
        return cls(waste_code=_text(d.get("waste_code")), quantity_t=d.get("quantity_t"),
                   packaging=d.get("packaging") or None, planned_method=_text(d.get("planned_method")),
                   container_count=d.get("container_count"))


@dataclass(frozen=True, slots=True)
class NewManifest:
    """提交联单: the shipper (an enterprise's single unit when None), receiver, carrier (None: the shipper
    carries), planned date and lines."""

    receiver: str | None
    planned_date: date | str | None
    lines: tuple[NewLine, ...]
    shipper: str | None = None
    carrier: str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> NewManifest:
        return cls(receiver=_text(d.get("receiver")), planned_date=d.get("planned_date"),
                   lines=tuple(NewLine.from_mapping(ln) for ln in d.get("lines") or []),
                   shipper=_text(d.get("shipper")) or None, carrier=_text(d.get("carrier")) or None)


@dataclass(frozen=True, slots=True)
class Shipment:
    """发运: vehicle plate, driver, 营运证件号 and the departure time (None: when it is entered)."""

    vehicle: str | None
    driver: str | None
    permit_no: str | None = None
    time: datetime | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Shipment:
        return cls(vehicle=_text(d.get("vehicle")), driver=_text(d.get("driver")),
                   permit_no=_text(d.get("permit_no")), time=d.get("time") or None)


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """What the receiver says of one line: received and refused quantity (t), method, the 第十八条 mismatch
    kinds it found, and (refusing) the line's own reason."""

    line_no: Any
    received_t: Raw = None
    rejected_t: Raw = None
    method: str | None = None
    mismatch: tuple[str, ...] = ()
    reason: str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> ReceiptLine:
        return cls(line_no=d.get("line_no"), received_t=d.get("received_t"), rejected_t=d.get("rejected_t"),
                   method=_text(d.get("method")), mismatch=tuple(str(k) for k in d.get("mismatch") or ()),
                   reason=_text(d.get("reason")))


def _lines(d: Mapping[str, Any]) -> tuple[ReceiptLine, ...]:
    return tuple(ReceiptLine.from_mapping(g) for g in d.get("lines") or [])


@dataclass(frozen=True, slots=True)
class Receipt:
    """确认接收: every line's received quantity and method, the receipt time and the 接受日期."""

    lines: tuple[ReceiptLine, ...]
    time: datetime | None = None
    accepted_on: date | str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Receipt:
        return cls(lines=_lines(d), time=d.get("time") or None, accepted_on=d.get("accepted_on"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """拒收: the reason, what is accepted per line (unlisted lines are refused in full), where the refused
    waste goes (None: back to the shipper), the time and the 接受日期 of the part accepted."""

    reason: str | None
    lines: tuple[ReceiptLine, ...] = ()
    destination: str | None = None
    time: datetime | None = None
    accepted_on: date | str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Rejection:
        return cls(reason=_text(d.get("reason")), lines=_lines(d), destination=_text(d.get("destination")) or None,
                   time=d.get("time") or None, accepted_on=d.get("accepted_on"))


CORRECTABLE = ("receiver", "carrier", "planned_date", "lines", "vehicle", "driver")


@dataclass(frozen=True, slots=True)
class Correction:
    """更正: the reason and the fields given (``given`` names them: a carrier given as None removes it)."""

    reason: str | None
    given: frozenset[str] = frozenset()
    receiver: str | None = None
    carrier: str | None = None
    planned_date: date | str | None = None
    lines: tuple[NewLine, ...] | None = None
    vehicle: str | None = None
    driver: str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Correction:
        lines = d.get("lines")
        return cls(reason=_text(d.get("reason")), given=frozenset(k for k in CORRECTABLE if k in d),
                   receiver=_text(d.get("receiver")), carrier=_text(d.get("carrier")),
                   planned_date=d.get("planned_date"),
                   lines=None if lines is None else tuple(NewLine.from_mapping(ln) for ln in lines),
                   vehicle=_text(d.get("vehicle")), driver=_text(d.get("driver")))
