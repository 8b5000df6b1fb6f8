"""The lifecycle of a transfer manifest (电子转移联单): create, ship, receive, reject (and its return), correct.

Every step is taken only by the party the manifest names (regulations.md §2.2): the carrier ships (the shipper
when no carrier is named), the receiver receives or rejects, the shipper corrects; admins may take any step.
A step out of order is a Conflict naming the current status; anyone else is PermissionDenied. Each step writes
its history event and its audit entry in the same transaction, and returns the typed ``Manifest``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from nofei.access import Actor
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.units import is_valid_credit_code, normalise_credit_code
from nofei.errors import InputRejected, PermissionDenied, Unavailable
from nofei.problems import Problem
from nofei.storage import manifests as repo
from nofei.storage.manifests import LineValues
from nofei.storage.tables import ManifestLineRow, ManifestRow, UnitRow
from nofei.storage.uow import UnitOfWork

from .commands import Correction, NewLine, NewManifest, Receipt, Rejection, Shipment
from .common import (
    as_aware,
    authorise_step,
    current,
    event,
    local_date,
    manifest_changed,
    now,
    shipper_of,
    view,
)
from .common import problem as _p
from .results import ImportResult, Manifest
from .validation import LineInput, accepted_on, check_time, line_inputs, validate_new_manifest


# --- numbers -------------------------------------------------------------------------------------
def next_number(uow: UnitOfWork, year: int, prefix: str) -> str:
    """Allocate the next serial for (year, prefix) in this transaction (``repo.next_serial`` holds the lock)."""
    key = f"{year:04d}{prefix}"
    got = repo.next_serial(uow.session, key)
    if got > 999_999:
        raise Unavailable(f"联单流水号已用尽 {key} (serials exhausted)")
    return M.format_number(year, prefix, got)


def _write(uow: UnitOfWork, actor: Actor, *, shipper: UnitRow, receiver: str, carrier: str | None,
           planned_date: date | None, lines: tuple[LineValues, ...] | list[LineValues],
           status: str = "submitted", parent: str | None = None, reason: str | None = None,
           number: str | None = None, version: int = 1, **extra: Any) -> ManifestRow:
    """A new manifest version and its lines: a fresh number from the shipper's district, unless ``number`` is
    given (a correction keeps it, one version up)."""
    t = now()
    assert planned_date is not None  # checked before anything is written
    if number is None:
        number = next_number(uow, planned_date.year, M.region_prefix(shipper.district))
    row = ManifestRow(number=number, version=version, is_current=True, shipper_id=shipper.id or 0,
                      receiver_code=receiver, carrier_code=carrier, status=status, planned_date=planned_date,
                      parent_number=parent, reason=reason, created_at=t, created_by=actor.label, updated_at=t,
                      **extra)
    return repo.add_manifest(uow.session, row, lines)


# --- create --------------------------------------------------------------------------------------
def create_row(uow: UnitOfWork, actor: Actor, cmd: NewManifest) -> ManifestRow:
    """提交联单 without committing: checked, numbered, written, its history entry and audit (the import and a
    draft's submission create several or delete the draft in the same transaction)."""
    problems, v = validate_new_manifest(uow, actor, cmd)
    if v.shipper is not None and not actor.can_submit_for(v.shipper.credit_code):
        raise PermissionDenied("只有移出单位可创建联单 (only the shipper may create its manifest)", code="not_your_unit")
    if problems:
        raise InputRejected("联单信息有误 (invalid manifest)", problems=problems)
    shipper = v.shipper
    assert shipper is not None
    row = _write(uow, actor, shipper=shipper, receiver=v.receiver, carrier=v.carrier, planned_date=v.planned_date,
                 lines=v.lines)
    event(uow, actor, row, "create", None, {"lines": len(v.lines)}, unit=shipper.credit_code)
    uow.audit(actor, "manifest.create", f"manifest:{row.number}",
              detail={"receiver": row.receiver_code, "carrier": row.carrier_code,
                      "kg": sum(ln.quantity_kg for ln in v.lines)}, district=shipper.district)
    return row


def create(*, uow: UnitOfWork, actor: Actor, cmd: NewManifest) -> Manifest:
    """Create a manifest (status ``submitted``) with a fresh 14-digit number; the shipper or an admin."""
    with uow:
        row = create_row(uow, actor, cmd)
        out = view(uow, row)
        uow.commit()
        return out


Refs = dict[str, dict[str, Any]]


def _pinned(p: Problem, refs: Refs) -> Problem:
    loc = refs.get(p.field or "") or refs.get((p.field or "").split(".")[0]) or refs.get("*") or {}
    return Problem(code=p.code, message=p.message, message_en=p.message_en, value=p.value, field=p.field,
                   sheet=loc.get("sheet"), row=loc.get("row"), column=loc.get("column"), header=loc.get("header"))


def import_manifests(*, uow: UnitOfWork, actor: Actor, items: list[tuple[NewManifest, Refs]]) -> ImportResult:
    """Bulk create, all or nothing. Each command comes with its refs: {field path → Problem location} so that
    every problem is pinned to the workbook cell it came from. Only enterprises (for their units) and admins
    create manifests: anyone else is refused as a whole, not row by row."""
    if not (actor.is_admin or actor.role == "enterprise"):
        raise PermissionDenied("只有移出单位可导入联单 (only shippers import manifests)", code="not_a_shipper")
    with uow:
        problems: list[Problem] = []
        for cmd, refs in items:
            ps, v = validate_new_manifest(uow, actor, cmd)
            if v.shipper is not None and not actor.can_submit_for(v.shipper.credit_code):
                ps.append(_p("shipper", "not_your_unit", "只能为本单位创建联单", "not one of your units",
                             v.shipper.credit_code))
            problems += [_pinned(p, refs) for p in ps]
        if problems:
            raise InputRejected("联单导入失败 (manifest import rejected)", problems=problems)
        numbers = tuple(create_row(uow, actor, cmd).number for cmd, _refs in items)
        uow.commit()
        return ImportResult(numbers)


# --- ship -----------------------------------------------------------------------------------------
def _times(cmd_time: datetime | None, entered_at: datetime | None) -> tuple[datetime, datetime]:
    """(event time, entry time): the entry is now unless a trusted caller says when; the event defaults to it."""
    entered = as_aware(entered_at) or now()
    return (as_aware(cmd_time) if cmd_time else entered), entered


def ship(*, uow: UnitOfWork, actor: Actor, number: str, cmd: Shipment, entered_at: datetime | None = None
         ) -> Manifest:
    """The carrier picks up: vehicle plate, driver, 营运证件号, time → ``in_transit``.

    ``entered_at`` (trusted callers only: the demo, tests) is when the entry is deemed made; default now."""
    with uow:
        row = current(uow, number, lock=True)
        shipper = shipper_of(uow, row)
        authorise_step(uow, actor, "ship", row, shipper)
        given = {"vehicle": str(cmd.vehicle or "").strip(), "driver": str(cmd.driver or "").strip()}
        zh = {"vehicle": "车牌号", "driver": "驾驶员"}
        problems = [_p(f, "required", f"请填写{zh[f]}", f"{f} is required") for f, v in given.items() if not v]
        if problems:
            raise InputRejected("运输信息不完整 (vehicle and driver are required)", problems=problems)
        t, entered = _times(cmd.time, entered_at)
        flags = check_time(uow, t, entered, row.created_at, previous_is_submission=True)
        before = row.status
        row.vehicle, row.driver = given["vehicle"], given["driver"]
        row.permit_no = str(cmd.permit_no or "").strip() or None
        row.shipped_at, row.shipped_entered_at, row.status, row.updated_at = t, entered, "in_transit", now()
        repo.add(uow.session, row)
        event(uow, actor, row, "ship", before, {"vehicle": row.vehicle, "driver": row.driver,
                                                "permit_no": row.permit_no, "time": t.isoformat(), "flags": flags},
              time=entered, event_time=t, unit=row.carrier_code or shipper.credit_code)
        uow.audit(actor, "manifest.ship", f"manifest:{number}", detail={"vehicle": row.vehicle},
                  district=shipper.district)
        out = view(uow, row)
        uow.commit()
        return out


# --- receive ---------------------------------------------------------------------------------------
def _receipt_context(uow: UnitOfWork, actor: Actor, number: str, action: str
                     ) -> tuple[ManifestRow, UnitRow, list[ManifestLineRow], bool]:
    row = current(uow, number, lock=True)
    shipper = shipper_of(uow, row)
    authorise_step(uow, actor, action, row, shipper)
    ret = M.is_return(parent_number=row.parent_number, shipper=shipper.credit_code, receiver=row.receiver_code)
    return row, shipper, repo.lines_of(uow.session, row.id or 0), ret


def _mismatch_of(lines: list[ManifestLineRow]) -> dict[str, list[str]]:
    return {str(ln.line_no): ln.mismatch for ln in lines if ln.mismatch}


def _record_receipt(uow: UnitOfWork, lines: list[ManifestLineRow], got: dict[int, LineInput]) -> list[int]:
    """Write each line's receipt and its discrepancy (the quantity mismatch is then named); the flagged lines."""
    ratio, min_kg = uow.rules.discrepancy
    flagged = []
    for ln in lines:
        g = got[ln.line_no]
        ln.received_kg, ln.method, ln.rejected_kg = g.received_kg, g.method, 0
        ln.discrepancy = M.is_discrepancy(ln.quantity_kg, ln.received_kg or 0, ratio=ratio, min_kg=min_kg)
        mis = list(g.mismatch)
        if ln.discrepancy and "quantity" not in mis:
            mis.insert(0, "quantity")
        ln.mismatch = mis or None
        if ln.discrepancy:
            flagged.append(ln.line_no)
        repo.add(uow.session, ln)
    return flagged


def receive(*, uow: UnitOfWork, actor: Actor, number: str, cmd: Receipt, entered_at: datetime | None = None
            ) -> Manifest:
    """The receiver confirms: received quantity and method per line, 接受日期 → ``received``; discrepancies and
    the kinds of mismatch it found (第十八条) are recorded per line.

    A returned load (the follow-on of a refusal, back to its shipper) is received into the shipper's storage:
    method ``S`` by default. ``entered_at``: as in ``ship``."""
    with uow:
        row, shipper, lines, ret = _receipt_context(uow, actor, number, "receive")
        got, problems = line_inputs(uow.catalogue, lines, cmd.lines, require_all=True, require_method=True,
                                    is_return=ret)
        problems += [_p(f"lines.{i}.received_t", "required", "请填写实收量", "received_t is required")
                     for i, g in enumerate(cmd.lines) if g.received_t is None]
        if problems:
            raise InputRejected("接收信息有误 (invalid receipt)", problems=problems)
        t, entered = _times(cmd.time, entered_at)
        if row.shipped_at and t < as_aware(row.shipped_at):
            raise InputRejected("接收时间早于运输时间", problems=[_p("time", "before_shipping", "接收时间早于运输时间",
                                                                     "receipt time is before shipping", t.isoformat())])
        flags = check_time(uow, t, entered, row.shipped_at)
        accepted = accepted_on(row, cmd.accepted_on, t, entered)
        flagged = _record_receipt(uow, lines, got)
        before = row.status
        row.status, row.received_at, row.updated_at = "received", t, now()
        row.accepted_on, row.received_entered_at = accepted, entered
        repo.add(uow.session, row)
        event(uow, actor, row, "receive", before,
              {"time": t.isoformat(), "accepted_on": accepted.isoformat(), "discrepancy_lines": flagged,
               "mismatch": _mismatch_of(lines), "flags": flags, "return": ret},
              time=entered, event_time=t, unit=row.receiver_code)
        uow.audit(actor, "manifest.receive", f"manifest:{number}", detail={"discrepancy_lines": flagged},
                  district=shipper.district)
        out = view(uow, row)
        uow.commit()
        return out


# --- reject ----------------------------------------------------------------------------------------
def _refusal_problems(cmd: Rejection, reason: str, ret: bool, dest: str) -> list[Problem]:
    problems: list[Problem] = []
    if not reason:
        problems.append(_p("reason", "required", "请填写拒收原因", "reason is required"))
    if ret:
        problems.append(_p("reason", "return_refused", "退回的联单由移出人接收入库，不能再拒收",
                           "a returned load is received back by its shipper, not refused again"))
    if not is_valid_credit_code(dest):
        problems.append(_p("destination", "bad_credit_code", "去向单位统一社会信用代码校验失败",
                           "destination credit code fails the check", cmd.destination))
    return problems


def _split(lines: list[ManifestLineRow], got: dict[int, LineInput]) -> dict[int, LineInput]:
    """Each line's accepted and refused kilograms: refused defaults to the rest of what was shipped (none when
    more than shipped was accepted); an unlisted line is refused in full."""
    out = {}
    for ln in lines:
        g = got.get(ln.line_no, LineInput())
        rec = g.received_kg or 0
        rej = g.rejected_kg
        if rej is None:
            rej = 0 if rec > ln.quantity_kg else max(0, ln.quantity_kg - rec)
        out[ln.line_no] = replace(g, received_kg=rec, rejected_kg=rej)
    return out


def _record_refusal(uow: UnitOfWork, lines: list[ManifestLineRow], got: dict[int, LineInput], partial: bool
                    ) -> list[LineValues]:
    """Write each line's accepted and refused part; the lines of the follow-on manifest (what was refused)."""
    ratio, min_kg = uow.rules.discrepancy
    follow: list[LineValues] = []
    for ln in lines:
        g = got[ln.line_no]
        ln.received_kg, ln.rejected_kg, ln.method = g.received_kg, g.rejected_kg, g.method
        ln.discrepancy = M.is_discrepancy(ln.quantity_kg, (ln.received_kg or 0) + (ln.rejected_kg or 0),
                                          ratio=ratio, min_kg=min_kg)
        ln.mismatch = list(g.mismatch) or None
        repo.add(uow.session, ln)
        if (ln.rejected_kg or 0) > 0:
            follow.append(LineValues(ln.waste_code, ln.rejected_kg or 0, ln.packaging, ln.planned_method,
                                     ln.container_count if not partial else None))
    return follow


def reject(*, uow: UnitOfWork, actor: Actor, number: str, cmd: Rejection, entered_at: datetime | None = None
           ) -> Manifest:
    """The receiver refuses all (``rejected``) or part (``partially_received``) with a reason.

    ``cmd.lines`` gives, per line, what is accepted (``received_t``, ``method``), optionally what is refused
    (``rejected_t``, default the rest), the line's own ``reason`` and the ``mismatch`` kinds found; unlisted
    lines are refused in full. What is refused goes on a follow-on manifest (``parent_number`` = this one) from
    the same shipper to ``destination`` (default: back to the shipper), already ``in_transit`` on the same
    vehicle: the shipper receives it back into its storage (method ``S``)."""
    with uow:
        row, shipper, lines, ret = _receipt_context(uow, actor, number, "reject")
        reason = str(cmd.reason or "").strip()
        dest = normalise_credit_code(cmd.destination) if cmd.destination else shipper.credit_code
        problems = _refusal_problems(cmd, reason, ret, dest)
        got, ps = line_inputs(uow.catalogue, lines, cmd.lines, require_all=False, require_method=True)
        problems += ps
        got = _split(lines, got)
        if not problems and all(g.rejected_kg == 0 for g in got.values()):
            problems.append(_p("lines", "nothing_rejected", "没有拒收任何数量，请用接收", "nothing is rejected: use receive"))
        if problems:
            raise InputRejected("拒收信息有误 (invalid rejection)", problems=problems)
        t, entered = _times(cmd.time, entered_at)
        flags = check_time(uow, t, entered, row.shipped_at)
        accepted = accepted_on(row, cmd.accepted_on, t, entered)
        partial = any((g.received_kg or 0) > 0 for g in got.values())
        follow_lines = _record_refusal(uow, lines, got, partial)
        before = row.status
        row.status = "partially_received" if partial else "rejected"
        row.received_at, row.reason, row.updated_at = t, reason, now()
        row.accepted_on, row.received_entered_at = accepted, entered
        repo.add(uow.session, row)
        follow = _write(uow, actor, shipper=shipper, receiver=dest, carrier=row.carrier_code,
                        planned_date=local_date(t), lines=follow_lines, status="in_transit", parent=row.number,
                        reason=f"拒收退回/转移 ({reason})", shipped_at=t, shipped_entered_at=entered,
                        vehicle=row.vehicle, driver=row.driver, permit_no=row.permit_no)
        event(uow, actor, follow, "create", None, {"parent": row.number, "follow_on": True},
              time=entered, event_time=t, unit=row.receiver_code)
        event(uow, actor, row, "reject", before,
              {"reason": reason, "line_reasons": {str(no): g.reason for no, g in got.items() if g.reason},
               "follow_on": follow.number, "time": t.isoformat(), "accepted_on": accepted.isoformat(),
               "flags": flags, "mismatch": _mismatch_of(lines)},
              time=entered, event_time=t, unit=row.receiver_code)
        uow.audit(actor, "manifest.reject", f"manifest:{number}",
                  detail={"reason": reason, "partial": partial, "follow_on": follow.number},
                  district=shipper.district)
        uow.audit(actor, "manifest.create", f"manifest:{follow.number}", detail={"parent": number, "follow_on": True},
                  district=shipper.district)
        out = view(uow, row, follow_ons=(follow.number,))
        uow.commit()
        return out


# --- correct ---------------------------------------------------------------------------------------
def _as_new(row: ManifestRow, shipper: UnitRow, lines: list[ManifestLineRow], cmd: Correction) -> NewManifest:
    """The manifest as corrected: the fields given, the current version's for the rest."""
    kept = tuple(NewLine(ln.waste_code, str(Decimal(ln.quantity_kg) / 1000), ln.packaging, ln.planned_method,
                         ln.container_count) for ln in lines)
    return NewManifest(receiver=cmd.receiver or row.receiver_code,
                       planned_date=cmd.planned_date or row.planned_date,
                       lines=cmd.lines if cmd.lines is not None else kept, shipper=shipper.credit_code,
                       carrier=cmd.carrier if "carrier" in cmd.given else row.carrier_code)


def correct(*, uow: UnitOfWork, actor: Actor, number: str, cmd: Correction) -> Manifest:
    """The shipper corrects a manifest not yet arrived: a new version becomes current, the old one is kept."""
    with uow:
        row = current(uow, number, lock=True)
        shipper = shipper_of(uow, row)
        authorise_step(uow, actor, "correct", row, shipper)
        reason = str(cmd.reason or "").strip()
        problems = [] if reason else [_p("reason", "required", "请填写更正原因", "reason is required")]
        ps, v = validate_new_manifest(uow, actor, _as_new(row, shipper, repo.lines_of(uow.session, row.id or 0), cmd))
        problems += ps
        if problems:
            raise InputRejected("更正信息有误 (invalid correction)", problems=problems)
        changed = sorted(cmd.given)
        repo.retire(uow.session, row)
        new = _write(uow, actor, shipper=shipper, receiver=v.receiver, carrier=v.carrier, planned_date=v.planned_date,
                     lines=v.lines, status=row.status, parent=row.parent_number, reason=reason, number=row.number,
                     version=row.version + 1, shipped_at=row.shipped_at, vehicle=cmd.vehicle or row.vehicle,
                     driver=cmd.driver or row.driver)
        event(uow, actor, new, "correct", row.status, {"reason": reason, "fields": changed,
                                                        "from_version": row.version})
        if row.planned_date.year != new.planned_date.year:
            manifest_changed(uow, row)  # the year it left no longer holds it
        uow.audit(actor, "manifest.correct", f"manifest:{number}",
                  detail={"version": new.version, "fields": changed, "reason": reason}, district=shipper.district)
        out = view(uow, new, history=True)
        uow.commit()
        return out
