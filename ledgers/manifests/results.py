"""The typed results of the manifest use cases, and their one mapping form.

The use cases return these frozen records; ``as_dict`` gives the mapping the API's ``ManifestOut`` schema
serialises (the JSON contract) and the pages' templates read — one definition of a manifest's shape.
Quantities are exact kilograms here; the mapping shows tonnes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from nofei.quantity import kg_to_t_float


def _t(kg: int | None) -> float | None:
    return None if kg is None else kg_to_t_float(kg)


@dataclass(frozen=True, slots=True)
class Party:
    """A party of a manifest: its credit code and, when registered, its name and district."""

    credit_code: str
    name: str | None
    district: str | None
    registered: bool


@dataclass(frozen=True, slots=True)
class Line:
    line_no: int
    waste_code: str
    quantity_kg: int
    packaging: str | None
    container_count: int | None
    planned_method: str | None
    received_kg: int | None
    method: str | None
    rejected_kg: int | None
    discrepancy: bool
    mismatch: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"line_no": self.line_no, "waste_code": self.waste_code, "quantity_t": _t(self.quantity_kg),
                "packaging": self.packaging, "container_count": self.container_count,
                "planned_method": self.planned_method, "received_t": _t(self.received_kg), "method": self.method,
                "rejected_t": _t(self.rejected_kg), "discrepancy": self.discrepancy, "mismatch": list(self.mismatch)}


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the history: who (actor, party, unit) did what (action, status change), when it was entered
    (``time``) and when it happened (``event_time``), with the time-rule flags."""

    version: int
    time: datetime | None
    event_time: datetime | None
    actor: str
    actor_zh: str
    action: str
    action_zh: str
    party: str
    party_zh: str
    unit: str | None
    unit_name: str | None
    from_status: str | None
    to_status: str
    from_status_zh: str | None
    to_status_zh: str
    flags: tuple[str, ...]
    flags_zh: tuple[str, ...]
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "time": self.time, "event_time": self.event_time, "actor": self.actor,
                "actor_zh": self.actor_zh, "action": self.action, "action_zh": self.action_zh, "party": self.party,
                "party_zh": self.party_zh, "unit": self.unit, "unit_name": self.unit_name,
                "from_status": self.from_status, "to_status": self.to_status, "from_status_zh": self.from_status_zh,
                "to_status_zh": self.to_status_zh, "flags": list(self.flags), "flags_zh": list(self.flags_zh),
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    is_current: bool
    status: str
    updated_at: datetime | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "is_current": self.is_current, "status": self.status,
                "updated_at": self.updated_at, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class History:
    """A manifest's history, its versions and the current follow-on manifests (of a refusal)."""

    events: tuple[Event, ...]
    versions: tuple[Version, ...]
    follow_ons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest version as the use cases return it (``history`` when asked for)."""

    number: str
    version: int
    is_current: bool
    status: str
    status_zh: str
    shipper: Party
    receiver: Party
    carrier: Party | None
    planned_date: date
    shipped_at: datetime | None
    received_at: datetime | None
    vehicle: str | None
    driver: str | None
    permit_no: str | None
    accepted_on: date | None
    shipped_entered_at: datetime | None
    received_entered_at: datetime | None
    parent_number: str | None
    reason: str | None
    is_return: bool
    lines: tuple[Line, ...]
    created_at: datetime | None
    created_by: str
    updated_at: datetime | None
    history: History | None = None
    follow_ons: tuple[str, ...] | None = None  # without a history: the follow-on a refusal just made

    @property
    def discrepancy(self) -> bool:
        return any(ln.discrepancy for ln in self.lines)

    def as_dict(self) -> dict[str, Any]:
        s, r, c = self.shipper, self.receiver, self.carrier
        out: dict[str, Any] = {
            "number": self.number, "version": self.version, "is_current": self.is_current, "status": self.status,
            "status_zh": self.status_zh,
            "shipper": {"credit_code": s.credit_code, "name": s.name, "district": s.district},
            "receiver": {"credit_code": r.credit_code, "name": r.name, "district": r.district,
                         "registered": r.registered},
            "carrier": None if c is None else {"credit_code": c.credit_code, "name": c.name},
            "planned_date": self.planned_date, "shipped_at": self.shipped_at, "received_at": self.received_at,
            "vehicle": self.vehicle, "driver": self.driver, "permit_no": self.permit_no,
            "accepted_on": self.accepted_on, "shipped_entered_at": self.shipped_entered_at,
            "received_entered_at": self.received_entered_at, "parent_number": self.parent_number,
            "reason": self.reason, "is_return": self.is_return, "lines": [ln.as_dict() for ln in self.lines],
            "discrepancy": self.discrepancy, "created_at": self.created_at, "created_by": self.created_by,
            "updated_at": self.updated_at,
        }
        if self.history is not None:
            out["history"] = [e.as_dict() for e in self.history.events]
            out["versions"] = [v.as_dict() for v in self.history.versions]
            out["follow_ons"] = list(self.history.follow_ons)
        if self.follow_ons is not None:
            out["follow_ons"] = list(self.follow_ons)
        return out


@dataclass(frozen=True, slots=True)
class ManifestPage:
    items: tuple[Manifest, ...]
    total: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    numbers: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"created": len(self.numbers), "numbers": list(self.numbers)}


@dataclass(frozen=True, slots=True)
class Draft:
    """A saved, unnumbered manifest: the form's fields as the producer left them."""

    id: int
    shipper: str
    data: dict[str, Any]
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.data, "shipper": self.shipper, "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class ReceiverOption:
    """A registered unit whose permit covers the code: what the producer's receiver search shows."""

    credit_code: str
    name: str
    district: str
    permits: tuple[str, ...] = ()
    methods: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"credit_code": self.credit_code, "name": self.name, "district": self.district,
                "permits": list(self.permits), "methods": list(self.methods)}


@dataclass(frozen=True, slots=True)
class CarrierOption:
    credit_code: str
    name: str
    district: str

    def as_dict(self) -> dict[str, Any]:
        return {"credit_code": self.credit_code, "name": self.name, "district": self.district}
