"""What every manifest use case shares: Beijing times, field-named problems, who may read a manifest and who
takes which step, the history entry each step writes, and the typed view of a stored manifest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, overload

from nofei.access import Actor
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import CST
from nofei.errors import Conflict, NotFound, PermissionDenied
from nofei.problems import Problem
from nofei.storage import flowstore
from nofei.storage import manifests as repo
from nofei.storage.repo import unit_rows_by_code
from nofei.storage.tables import ManifestEventRow, ManifestRow, UnitRow
from nofei.storage.uow import UnitOfWork

from .results import Event, History, Line, Manifest, Party, Version

__all__ = ["CST", "HAZ_STREAMS", "as_aware", "local_date"]

HAZ_STREAMS = ("hazardous", "medical")
"""The streams a transfer manifest is for. Manifest times without an offset are Beijing time (``CST``);
working days are counted on Beijing dates (``local_date``)."""


def now() -> datetime:
    return datetime.now(UTC)


@overload
def as_aware(t: datetime) -> datetime: ...
@overload
def as_aware(t: datetime | None) -> datetime | None: ...
def as_aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=CST) if t.tzinfo is None else t


def local_date(t: datetime) -> date:
    """The Beijing calendar date of a stored time (stored times are UTC)."""
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)
    return aware.astimezone(CST).date()


def problem(field: str, code: str, zh: str, en: str, value: Any = None) -> Problem:
    return Problem(code=code, message=zh, message_en=en, field=field, value=value)


def no_such(number: str) -> NotFound:
    return NotFound(f"联单 {number} 不存在 (no such manifest)", code="unknown_manifest")


# --- who may read, who takes which step ------------------------------------------------------------------
def current(uow: UnitOfWork, number: str, *, lock: bool = False) -> ManifestRow:
    row = repo.current(uow.session, number, lock=lock)
    if row is None:
        raise no_such(number)
    return row


def shipper_of(uow: UnitOfWork, row: ManifestRow) -> UnitRow:
    return repo.unit_by_id(uow.session, row.shipper_id)


def _ends(uow: UnitOfWork, row: ManifestRow) -> tuple[UnitRow | None, UnitRow | None]:
    ends = unit_rows_by_code(uow.session, [c for c in (row.receiver_code, row.carrier_code) if c])
    return ends.get(row.receiver_code), ends.get(row.carrier_code) if row.carrier_code else None


def _place(code: str | None, u: UnitRow | None) -> M.PartyPlace:
    return code, (u.district if u else None), (u.park if u else None)


def readable(uow: UnitOfWork, actor: Actor, row: ManifestRow) -> bool:
    """``M.may_read`` with the parties looked up: the one visibility rule of a manifest for pages, API and
    trace."""
    if actor.is_admin:
        return True
    shipper = shipper_of(uow, row)
    receiver, carrier = _ends(uow, row)
    return M.may_read(actor, (_place(shipper.credit_code, shipper), _place(row.receiver_code, receiver),
                              _place(row.carrier_code, carrier)))


def readable_current(uow: UnitOfWork, actor: Actor, number: str) -> ManifestRow:
    """The current version, or 404 (exactly as for a number that does not exist) when the caller may not read
    it."""
    row = current(uow, number)
    if not readable(uow, actor, row):
        raise no_such(number)
    return row


PARTY_ZH_OF_STEP = {"carrier": "承运人", "receiver": "接受人", "shipper": "移出人"}


def authorise_step(uow: UnitOfWork, actor: Actor, action: str, row: ManifestRow, shipper: UnitRow) -> None:
    """404 (exactly as for a number that does not exist) when the caller may not read the manifest, so that
    counting through the sequential numbers tells an outsider nothing; 403 when it may read it but is not the
    party the step belongs to (or an admin); then 409 if out of order."""
    if not actor.is_admin:
        if not readable(uow, actor, row):
            raise no_such(row.number)
        parties = M.parties_of_actor(actor.units, shipper=shipper.credit_code, receiver=row.receiver_code,
                                     carrier=row.carrier_code) if actor.role == "enterprise" else set()
        need = M.party_of(action)
        if need not in parties:
            raise PermissionDenied(f"只有联单所列的{PARTY_ZH_OF_STEP[need]}可执行此操作 "
                                   f"(only the manifest's {need} may {action} it)", code="not_your_step")
    if not M.allowed(action, row.status):
        raise Conflict(
            f"联单 {row.number} 当前状态为 {row.status}（{M.STATUS_ZH.get(row.status, '')}），不能执行 {action} "
            f"(manifest is {row.status}; {action} is not allowed)", code="wrong_status",
            problems=[problem("status", "wrong_status", f"当前状态 {row.status}", f"current status is {row.status}",
                              row.status)])


def event(uow: UnitOfWork, actor: Actor, row: ManifestRow, action: str, from_status: str | None,
          detail: dict[str, Any] | None = None, time: datetime | None = None, event_time: datetime | None = None,
          unit: str | None = None) -> None:
    """One history entry: ``time`` when nofei recorded it, ``event_time`` when it happened; ``unit`` the party's
    credit code (shown with its name and role in Chinese)."""
    d = dict(detail or {})
    if unit:
        d.setdefault("unit", unit)
    repo.add(uow.session, ManifestEventRow(manifest_id=row.id or 0, time=time or now(), actor=actor.label,
                                           action=action, from_status=from_status, to_status=row.status, detail=d,
                                           event_time=event_time))
    manifest_changed(uow, row)


def manifest_changed(uow: UnitOfWork, row: ManifestRow) -> None:
    """The flow graph of the manifest's planned year changed: the live model reads this shipper's manifests of
    that year again (a correction that moves the planned date notes the year it left too)."""
    flowstore.note_change(uow.session, row.planned_date.year, "manifest", row.shipper_id)


# --- the typed view of a stored manifest -----------------------------------------------------------------
ROLE_ZH = {"admin": "管理员", "regulator": "监管部门", "enterprise": "企业"}


def actor_zh(label: str) -> str:
    """``enterprise:张三`` → ``企业 张三``; ``admin:system`` → ``管理员（系统）``."""
    role, _, name = label.partition(":")
    if role == "admin" and name == "system":
        return "管理员（系统）"
    return f"{ROLE_ZH.get(role, role)} {name}".strip()


def _history_party(action: str) -> str:
    return "shipper" if action in ("create", "correct") else M.party_of(action)


def _event_view(e: ManifestEventRow, version: int, parties: dict[str, str], names: dict[str, str]) -> Event:
    party = "receiver" if e.detail.get("follow_on") else _history_party(e.action)
    unit = e.detail.get("unit") or parties[party]
    flags = tuple(e.detail.get("flags") or [])
    return Event(
        version=version, time=as_aware(e.time), event_time=as_aware(e.event_time), actor=e.actor,
        actor_zh=actor_zh(e.actor), action=e.action, action_zh=M.ACTION_ZH.get(e.action, e.action), party=party,
        party_zh=M.PARTY_ZH[party], unit=unit, unit_name=names.get(unit) if unit else None,
        from_status=e.from_status, to_status=e.to_status,
        from_status_zh=M.STATUS_ZH.get(e.from_status or "", "") or None, to_status_zh=M.STATUS_ZH.get(e.to_status, ""),
        flags=flags, flags_zh=tuple(M.TIME_FLAGS_ZH.get(f, f) for f in flags), detail=e.detail)


def _history(uow: UnitOfWork, row: ManifestRow, shipper: str) -> History:
    versions = repo.versions_of(uow.session, row.number)
    ids = {v.id: v.version for v in versions}
    events = repo.events_of(uow.session, [i for i in ids if i is not None])
    parties = {"shipper": shipper, "receiver": row.receiver_code, "carrier": row.carrier_code or shipper}
    names = repo.unit_names(uow.session, {str(e.detail.get("unit")) for e in events if e.detail.get("unit")}
                            | {c for c in (shipper, row.receiver_code, row.carrier_code) if c})
    return History(
        events=tuple(_event_view(e, ids[e.manifest_id], parties, names) for e in events),
        versions=tuple(Version(v.version, v.is_current, v.status, as_aware(v.updated_at), v.reason) for v in versions),
        follow_ons=tuple(repo.follow_on_numbers(uow.session, row.number)))


def _party(code: str, u: UnitRow | None) -> Party:
    return Party(code, u.name if u else None, u.district if u else None, u is not None)


def view(uow: UnitOfWork, row: ManifestRow, *, history: bool = False,
         follow_ons: tuple[str, ...] | None = None) -> Manifest:
    """The typed result of a stored manifest version (with its history, versions and follow-ons when asked)."""
    shipper = shipper_of(uow, row)
    receiver, carrier = _ends(uow, row)
    lines = tuple(Line(ln.line_no, ln.waste_code, ln.quantity_kg, ln.packaging, ln.container_count,
                       ln.planned_method, ln.received_kg, ln.method, ln.rejected_kg, ln.discrepancy,
                       tuple(ln.mismatch or ())) for ln in repo.lines_of(uow.session, row.id or 0))
    return Manifest(
        number=row.number, version=row.version, is_current=row.is_current, status=row.status,
        status_zh=M.STATUS_ZH.get(row.status, ""),
        shipper=Party(shipper.credit_code, shipper.name, shipper.district, True),
        receiver=_party(row.receiver_code, receiver),
        carrier=None if not row.carrier_code else _party(row.carrier_code, carrier),
        planned_date=row.planned_date, shipped_at=as_aware(row.shipped_at), received_at=as_aware(row.received_at),
        vehicle=row.vehicle, driver=row.driver, permit_no=row.permit_no, accepted_on=row.accepted_on,
        shipped_entered_at=as_aware(row.shipped_entered_at), received_entered_at=as_aware(row.received_entered_at),
        parent_number=row.parent_number, reason=row.reason,
        is_return=M.is_return(parent_number=row.parent_number, shipper=shipper.credit_code, receiver=row.receiver_code),
        lines=lines, created_at=as_aware(row.created_at), created_by=row.created_by,
        updated_at=as_aware(row.updated_at), history=_history(uow, row, shipper.credit_code) if history else None,
        follow_ons=follow_ons)
