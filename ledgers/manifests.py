"""Use cases on transfer manifests (电子转移联单): create, ship, receive, reject, correct, read, list, import.

Every step is taken only by the party the manifest names (regulations.md §2.2): the carrier ships (the shipper
when no carrier is named), the receiver receives or rejects, the shipper corrects; admins may take any step.
A step out of order is a Conflict naming the current status; anyone else is PermissionDenied. Each step writes
its history event and its audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, overload

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col

from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import CST
from nofei.domain.regions import in_region
from nofei.domain.units import is_valid_credit_code, normalise_credit_code
from nofei.errors import Conflict, InputRejected, NotFound, PermissionDenied, Unavailable
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float, tonnes_to_kg
from nofei.storage import flowstore
from nofei.storage.repo import unit_rows_by_code
from nofei.storage.tables import (
    ManifestDraftRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    ManifestSerialRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

"""Manifest times without an offset are Beijing time; working days are counted on Beijing dates."""

HAZ_STREAMS = ("hazardous", "medical")


def _now() -> datetime:
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


def _p(field: str, code: str, zh: str, en: str, value: Any = None) -> Problem:
    return Problem(code=code, message=zh, message_en=en, field=field, value=value)


# --- reading helpers ---------------------------------------------------------------------------
def _current(uow: UnitOfWork, number: str, *, lock: bool = False) -> ManifestRow:
    stmt = select(ManifestRow).where(col(ManifestRow.number) == number, col(ManifestRow.is_current).is_(True))
    if lock:
        stmt = stmt.with_for_update()
    row = uow.session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"联单 {number} 不存在 (no such manifest)", code="unknown_manifest")
    return row


def _lines(uow: UnitOfWork, manifest_id: int) -> list[ManifestLineRow]:
    return list(uow.session.execute(
        select(ManifestLineRow).where(col(ManifestLineRow.manifest_id) == manifest_id).order_by(col(ManifestLineRow.line_no))
    ).scalars())


def _shipper(uow: UnitOfWork, row: ManifestRow) -> UnitRow:
    u = uow.session.get(UnitRow, row.shipper_id)
    assert u is not None
    return u


def _districts(uow: UnitOfWork, row: ManifestRow) -> tuple[str, str | None, UnitRow, UnitRow | None]:
    shipper = _shipper(uow, row)
    receiver = unit_rows_by_code(uow.session, [row.receiver_code]).get(row.receiver_code)
    return shipper.district, receiver.district if receiver else None, shipper, receiver


def _in_region(unit: UnitRow | None, region: str | None) -> bool:
    return unit is not None and in_region(region, unit.district, unit.park)


def can_read(actor: Actor, row: ManifestRow, shipper: UnitRow, receiver: UnitRow | None,
             carrier: UnitRow | None = None) -> bool:
    """Admins all; regulators when a party (shipper, receiver or carrier) is in their district; enterprises
    when they are a party (issue 13: the carrier's district office reads the manifests its carriers move)."""
    if actor.is_admin:
        return True
    if actor.role == "regulator":
        return (_in_region(shipper, actor.district) or _in_region(receiver, actor.district)
                or _in_region(carrier, actor.district))
    return bool(M.parties_of_actor(actor.units, shipper=shipper.credit_code, receiver=row.receiver_code,
                                   carrier=row.carrier_code))


def readable(uow: UnitOfWork, actor: Actor, row: ManifestRow) -> bool:
    """``can_read`` with the parties looked up: the one visibility rule of a manifest for pages, API and trace."""
    if actor.is_admin:
        return True
    shipper = _shipper(uow, row)
    ends = unit_rows_by_code(uow.session, [c for c in (row.receiver_code, row.carrier_code) if c])
    return can_read(actor, row, shipper, ends.get(row.receiver_code), ends.get(row.carrier_code or ""))


def _authorise_step(uow: UnitOfWork, actor: Actor, action: str, row: ManifestRow, shipper: UnitRow) -> None:
    """404 (exactly as for a number that does not exist) when the caller may not read the manifest, so that
    counting through the sequential numbers tells an outsider nothing; 403 when it may read it but is not the
    party the step belongs to (or an admin); then 409 if out of order."""
    if not actor.is_admin:
        if not readable(uow, actor, row):
            raise NotFound(f"联单 {row.number} 不存在 (no such manifest)", code="unknown_manifest")
        parties = M.parties_of_actor(actor.units, shipper=shipper.credit_code, receiver=row.receiver_code,
                                     carrier=row.carrier_code) if actor.role == "enterprise" else set()
        need = M.party_of(action)
        if need not in parties:
            raise PermissionDenied(
                f"只有联单所列的{ {'carrier': '承运人', 'receiver': '接受人', 'shipper': '移出人'}[need] }可执行此操作 "
                f"(only the manifest's {need} may {action} it)", code="not_your_step")
    if not M.allowed(action, row.status):
        raise Conflict(
            f"联单 {row.number} 当前状态为 {row.status}（{M.STATUS_ZH.get(row.status, '')}），不能执行 {action} "
            f"(manifest is {row.status}; {action} is not allowed)", code="wrong_status",
            problems=[_p("status", "wrong_status", f"当前状态 {row.status}", f"current status is {row.status}",
                         row.status)])


def _event(uow: UnitOfWork, actor: Actor, row: ManifestRow, action: str, from_status: str | None,
           detail: dict[str, Any] | None = None, time: datetime | None = None, event_time: datetime | None = None,
           unit: str | None = None) -> None:
    """One history entry: ``time`` when nofei recorded it, ``event_time`` when it happened; ``unit`` the party's
    credit code (shown with its name and role in Chinese)."""
    d = dict(detail or {})
    if unit:
        d.setdefault("unit", unit)
    uow.session.add(ManifestEventRow(manifest_id=row.id or 0, time=time or _now(), actor=actor.label, action=action,
                                     from_status=from_status, to_status=row.status, detail=d,
                                     event_time=event_time))
    flowstore.note_change(uow.session, row.planned_date.year, "manifest")  # the year's flow graph changed


ROLE_ZH = {"admin": "管理员", "regulator": "监管部门", "enterprise": "企业"}


def actor_zh(label: str) -> str:
    """``enterprise:张三`` → ``企业 张三``; ``admin:system`` → ``管理员（系统）``."""
    role, _, name = label.partition(":")
    if role == "admin" and name == "system":
        return "管理员（系统）"
    return f"{ROLE_ZH.get(role, role)} {name}".strip()


def _history_party(action: str) -> str:
    return "shipper" if action in ("create", "correct") else M.party_of(action)


def manifest_dict(uow: UnitOfWork, row: ManifestRow, *, history: bool = False) -> dict[str, Any]:
    shipper = _shipper(uow, row)
    others = unit_rows_by_code(uow.session, [c for c in (row.receiver_code, row.carrier_code) if c])
    receiver = others.get(row.receiver_code)
    carrier = others.get(row.carrier_code) if row.carrier_code else None
    lines = _lines(uow, row.id or 0)

    def t(kg: int | None) -> float | None:
        return None if kg is None else kg_to_t_float(kg)

    out: dict[str, Any] = {
        "number": row.number, "version": row.version, "is_current": row.is_current, "status": row.status,
        "status_zh": M.STATUS_ZH.get(row.status, ""),
        "shipper": {"credit_code": shipper.credit_code, "name": shipper.name, "district": shipper.district},
        "receiver": {"credit_code": row.receiver_code, "name": receiver.name if receiver else None,
                     "district": receiver.district if receiver else None, "registered": receiver is not None},
        "carrier": None if not row.carrier_code else {
            "credit_code": row.carrier_code, "name": carrier.name if carrier else None},
        "planned_date": row.planned_date, "shipped_at": as_aware(row.shipped_at),
        "received_at": as_aware(row.received_at), "vehicle": row.vehicle, "driver": row.driver,
        "permit_no": row.permit_no, "accepted_on": row.accepted_on,
        "shipped_entered_at": as_aware(row.shipped_entered_at), "received_entered_at": as_aware(row.received_entered_at),
        "parent_number": row.parent_number, "reason": row.reason,
        "is_return": M.is_return(parent_number=row.parent_number, shipper=shipper.credit_code,
                                 receiver=row.receiver_code),
        "lines": [{"line_no": ln.line_no, "waste_code": ln.waste_code, "quantity_t": t(ln.quantity_kg),
                   "packaging": ln.packaging, "container_count": ln.container_count,
                   "planned_method": ln.planned_method, "received_t": t(ln.received_kg),
                   "method": ln.method, "rejected_t": t(ln.rejected_kg), "discrepancy": ln.discrepancy,
                   "mismatch": list(ln.mismatch or [])}
                  for ln in lines],
        "discrepancy": any(ln.discrepancy for ln in lines),
        "created_at": as_aware(row.created_at), "created_by": row.created_by, "updated_at": as_aware(row.updated_at),
    }
    if history:
        versions = list(uow.session.execute(
            select(ManifestRow).where(col(ManifestRow.number) == row.number).order_by(col(ManifestRow.version))).scalars())
        ids = {v.id: v.version for v in versions}
        events = list(uow.session.execute(
            select(ManifestEventRow).where(col(ManifestEventRow.manifest_id).in_(list(ids)))
            .order_by(col(ManifestEventRow.time), col(ManifestEventRow.id))).scalars())
        names = {u.credit_code: u.name for u in unit_rows_by_code(uow.session, sorted(
            {str(e.detail.get("unit")) for e in events if e.detail.get("unit")}
            | {c for c in (shipper.credit_code, row.receiver_code, row.carrier_code) if c})).values()}
        out["history"] = []
        for e in events:
            party = "receiver" if e.detail.get("follow_on") else _history_party(e.action)
            unit = e.detail.get("unit") or {"shipper": shipper.credit_code, "receiver": row.receiver_code,
                                             "carrier": row.carrier_code or shipper.credit_code}[party]
            out["history"].append({
                "version": ids[e.manifest_id], "time": as_aware(e.time), "event_time": as_aware(e.event_time),
                "actor": e.actor, "actor_zh": actor_zh(e.actor), "action": e.action,
                "action_zh": M.ACTION_ZH.get(e.action, e.action), "party": party, "party_zh": M.PARTY_ZH[party],
                "unit": unit, "unit_name": names.get(unit) if unit else None,
                "from_status": e.from_status, "to_status": e.to_status,
                "from_status_zh": M.STATUS_ZH.get(e.from_status or "", "") or None,
                "to_status_zh": M.STATUS_ZH.get(e.to_status, ""),
                "flags": list(e.detail.get("flags") or []),
                "flags_zh": [M.TIME_FLAGS_ZH.get(f, f) for f in e.detail.get("flags") or []],
                "detail": e.detail})
        out["versions"] = [{"version": v.version, "is_current": v.is_current, "status": v.status,
                            "updated_at": as_aware(v.updated_at), "reason": v.reason} for v in versions]
        out["follow_ons"] = list(uow.session.execute(
            select(col(ManifestRow.number)).where(col(ManifestRow.parent_number) == row.number,
                                             col(ManifestRow.is_current).is_(True)).order_by(col(ManifestRow.number))).scalars())
    return out


# --- numbers -------------------------------------------------------------------------------------
def next_number(uow: UnitOfWork, year: int, prefix: str) -> str:
    """Allocate the next serial for (year, prefix) in this transaction.

    ``UPDATE … SET last = last + 1 … RETURNING last`` takes the row lock, so concurrent transactions queue on
    PostgreSQL until the first commits (SQLite serialises writers with BEGIN IMMEDIATE). The row is created
    once, under a savepoint so that a concurrent creator's IntegrityError does not spoil the transaction."""
    key = f"{year:04d}{prefix}"
    s = uow.session
    stmt = update(ManifestSerialRow).where(col(ManifestSerialRow.key) == key).values(
        last=col(ManifestSerialRow.last) + 1).returning(col(ManifestSerialRow.last))
    got = s.execute(stmt).scalar_one_or_none()
    if got is None:
        try:
            with s.begin_nested():
                s.execute(insert(ManifestSerialRow).values(key=key, last=0))
        except IntegrityError:
            pass
        got = s.execute(stmt).scalar_one()
    if got > 999_999:
        raise Unavailable(f"联单流水号已用尽 {key} (serials exhausted)")
    return M.format_number(year, prefix, int(got))


# --- create --------------------------------------------------------------------------------------
def _check_lines(uow: UnitOfWork, lines: list[dict[str, Any]], problems: list[Problem]) -> list[dict[str, Any]]:
    cat = uow.catalogue
    out: list[dict[str, Any]] = []
    if not lines:
        problems.append(_p("lines", "no_lines", "联单至少需要一行废物", "a manifest needs at least one line"))
    for i, ln in enumerate(lines):
        chk = cat.classify(ln.get("waste_code"))
        code = chk.code
        if chk.error or code is None:
            problems.append(_p(f"lines.{i}.waste_code", "unknown_code", f"未知的废物代码 {ln.get('waste_code')}",
                               "unknown waste code", ln.get("waste_code")))
        elif chk.stream not in HAZ_STREAMS:
            problems.append(_p(f"lines.{i}.waste_code", "not_hazardous", "转移联单仅用于危险废物和医疗废物",
                               "manifests are for hazardous and medical waste", ln.get("waste_code")))
        kg = 0
        try:
            kg = tonnes_to_kg(Decimal(str(ln.get("quantity_t"))))
        except (ValueError, ArithmeticError):
            kg = 0
        if kg <= 0:
            problems.append(_p(f"lines.{i}.quantity_t", "bad_quantity", "数量须大于 0（吨，精确到千克）",
                               "quantity must be > 0 t (to the kilogram)", str(ln.get("quantity_t"))))
        pm = ln.get("planned_method")
        pm = str(pm).strip().upper() if pm else None
        if pm and cat.method_class(pm) is None:
            problems.append(_p(f"lines.{i}.planned_method", "unknown_method", f"未知的方式代码 {pm}",
                               "unknown method code", pm))
        cc = ln.get("container_count")
        if cc not in (None, ""):
            try:
                cc = int(str(cc))
            except ValueError:
                cc = -1
            if not 0 <= cc <= 1_000_000:
                problems.append(_p(f"lines.{i}.container_count", "bad_count", "包装数量须为不小于 0 的整数",
                                   "container count must be a whole number ≥ 0", str(ln.get("container_count"))))
        else:
            cc = None
        out.append({"waste_code": code, "quantity_kg": kg, "packaging": ln.get("packaging") or None,
                    "planned_method": pm, "container_count": cc})
    return out


def _check_parties(uow: UnitOfWork, actor: Actor, data: dict[str, Any], problems: list[Problem]
                   ) -> tuple[UnitRow | None, str, str | None]:
    shipper_code = normalise_credit_code(data.get("shipper")) if data.get("shipper") else None
    if shipper_code is None:
        if actor.role == "enterprise" and len(actor.units) == 1:
            shipper_code = next(iter(actor.units))
        else:
            problems.append(_p("shipper", "missing_shipper", "请指定移出单位", "name the shipper"))
    shipper = None
    if shipper_code:
        shipper = unit_rows_by_code(uow.session, [shipper_code]).get(shipper_code)
        if shipper is None:
            problems.append(_p("shipper", "unknown_unit", f"移出单位 {shipper_code} 未注册",
                               "the shipper is not a registered unit", shipper_code))
    receiver = normalise_credit_code(data.get("receiver"))
    if not is_valid_credit_code(receiver):
        problems.append(_p("receiver", "bad_credit_code", "接受单位统一社会信用代码校验失败",
                           "receiver credit code fails the GB 32100-2015 check", data.get("receiver")))
    elif shipper_code and receiver == shipper_code:
        problems.append(_p("receiver", "same_party", "接受单位不能是移出单位", "receiver is the shipper", receiver))
    carrier = normalise_credit_code(data.get("carrier")) if data.get("carrier") else None
    if carrier and not is_valid_credit_code(carrier):
        problems.append(_p("carrier", "bad_credit_code", "承运单位统一社会信用代码校验失败",
                           "carrier credit code fails the GB 32100-2015 check", data.get("carrier")))
    return shipper, receiver, carrier


def _write_manifest(uow: UnitOfWork, actor: Actor, *, shipper: UnitRow, receiver: str, carrier: str | None,
                    planned_date: date, lines: list[dict[str, Any]], status: str = "submitted",
                    parent: str | None = None, reason: str | None = None, number: str | None = None,
                    version: int = 1, extra: dict[str, Any] | None = None) -> ManifestRow:
    now = _now()
    if number is None:
        number = next_number(uow, planned_date.year, M.region_prefix(shipper.district))
    row = ManifestRow(number=number, version=version, is_current=True, shipper_id=shipper.id or 0,
                      receiver_code=receiver, carrier_code=carrier, status=status, planned_date=planned_date,
                      parent_number=parent, reason=reason, created_at=now, created_by=actor.label, updated_at=now,
                      **(extra or {}))
    uow.session.add(row)
    uow.session.flush()
    uow.session.execute(insert(ManifestLineRow), [
        {"manifest_id": row.id, "line_no": i + 1, "waste_code": ln["waste_code"], "quantity_kg": ln["quantity_kg"],
         "packaging": ln.get("packaging"), "planned_method": ln.get("planned_method"),
         "container_count": ln.get("container_count"), "mismatch": None,
         "received_kg": ln.get("received_kg"), "method": ln.get("method"), "rejected_kg": ln.get("rejected_kg"),
         "discrepancy": bool(ln.get("discrepancy", False))}
        for i, ln in enumerate(lines)])
    return row


def validate_new_manifest(uow: UnitOfWork, actor: Actor, data: dict[str, Any]
                          ) -> tuple[list[Problem], dict[str, Any]]:
    """All problems of a create request (field-named), and the cleaned values when there are none."""
    problems: list[Problem] = []
    shipper, receiver, carrier = _check_parties(uow, actor, data, problems)
    lines = _check_lines(uow, list(data.get("lines") or []), problems)
    pd = data.get("planned_date")
    if not isinstance(pd, date):
        try:
            pd = date.fromisoformat(str(pd))
        except ValueError:
            problems.append(_p("planned_date", "bad_date", "计划转移日期无效", "planned_date is not a date", str(pd)))
    return problems, {"shipper": shipper, "receiver": receiver, "carrier": carrier, "planned_date": pd, "lines": lines}


def _create(uow: UnitOfWork, actor: Actor, data: dict[str, Any]) -> ManifestRow:
    problems, v = validate_new_manifest(uow, actor, data)
    shipper: UnitRow | None = v["shipper"]
    if shipper is not None and not actor.can_submit_for(shipper.credit_code):
        raise PermissionDenied("只有移出单位可创建联单 (only the shipper may create its manifest)", code="not_your_unit")
    if problems:
        raise InputRejected("联单信息有误 (invalid manifest)", problems=problems)
    assert shipper is not None
    row = _write_manifest(uow, actor, shipper=shipper, receiver=v["receiver"], carrier=v["carrier"],
                          planned_date=v["planned_date"], lines=v["lines"])
    _event(uow, actor, row, "create", None, {"lines": len(v["lines"])}, unit=shipper.credit_code)
    uow.audit(actor, "manifest.create", f"manifest:{row.number}",
              detail={"receiver": row.receiver_code, "carrier": row.carrier_code,
                      "kg": sum(ln["quantity_kg"] for ln in v["lines"])}, district=shipper.district)
    return row


def create_manifest(*, uow: UnitOfWork, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Create a manifest (status ``submitted``) with a fresh 14-digit number; the shipper or an admin."""
    row = _create(uow, actor, data)
    out = manifest_dict(uow, row)
    uow.commit()
    return out


def import_manifests(*, uow: UnitOfWork, actor: Actor, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Bulk create, all or nothing. Each item may carry ``_refs``: {field path → Problem location dict}
    so that every problem is pinned to the workbook cell it came from. Only enterprises (for their units) and
    admins create manifests: anyone else is refused as a whole, not row by row."""
    if not (actor.is_admin or actor.role == "enterprise"):
        raise PermissionDenied("只有移出单位可导入联单 (only shippers import manifests)", code="not_a_shipper")
    problems: list[Problem] = []
    for item in items:
        ps, v = validate_new_manifest(uow, actor, item)
        sh = v["shipper"]
        if sh is not None and not actor.can_submit_for(sh.credit_code):
            ps.append(_p("shipper", "not_your_unit", "只能为本单位创建联单", "not one of your units", sh.credit_code))
        refs = item.get("_refs") or {}
        for p in ps:
            loc = refs.get(p.field) or refs.get((p.field or "").split(".")[0]) or refs.get("*") or {}
            problems.append(Problem(code=p.code, message=p.message, message_en=p.message_en, value=p.value,
                                    field=p.field, sheet=loc.get("sheet"), row=loc.get("row"),
                                    column=loc.get("column"), header=loc.get("header")))
    if problems:
        raise InputRejected("联单导入失败 (manifest import rejected)", problems=problems)
    numbers = [_create(uow, actor, {k: v for k, v in item.items() if k != "_refs"}).number for item in items]
    uow.commit()
    return {"created": len(numbers), "numbers": numbers}


# --- steps -----------------------------------------------------------------------------------------
def _step_time(data: dict[str, Any], field: str = "time") -> datetime:
    t = as_aware(data.get(field)) or _now()
    return t


def _check_time(uow: UnitOfWork, t: datetime, entered: datetime, previous: datetime | None, *,
                previous_is_submission: bool = False, field: str = "time") -> list[str]:
    """Apply the time rules (``M.check_step_time``): refuse what cannot be true, return the flags of the rest."""
    chk = M.check_step_time(t, entered=entered, previous=as_aware(previous), cal=uow.rules.calendar,
                            event_day=local_date(t), entered_day=local_date(entered),
                            previous_is_submission=previous_is_submission)
    if chk.refused:
        raise InputRejected(f"{chk.refused[0][1]} (invalid {field})", problems=[
            _p(field, code, zh, en, t.isoformat()) for code, zh, en in chk.refused])
    return list(chk.flags)


def _accepted_on(uow: UnitOfWork, row: ManifestRow, data: dict[str, Any], t: datetime, entered: datetime) -> date:
    """接受日期: given, else the Beijing date of ``time``; not before the shipping date, not after the receipt
    time, not in the future (refused: 第十八条's five days run from it, so it must be true)."""
    raw = data.get("accepted_on")
    if raw is None:
        return local_date(t)
    if not isinstance(raw, date):
        try:
            raw = date.fromisoformat(str(raw))
        except ValueError:
            raise InputRejected("接受日期无效", problems=[
                _p("accepted_on", "bad_date", "接受日期无效", "accepted_on is not a date", str(raw))]) from None
    problems = []
    if row.shipped_at is not None and raw < local_date(row.shipped_at):
        problems.append(_p("accepted_on", "before_shipping", "接受日期早于运输日期", "accepted_on is before shipping",
                           raw.isoformat()))
    if raw > local_date(t):
        problems.append(_p("accepted_on", "after_receipt", "接受日期晚于确认时间", "accepted_on is after the receipt time",
                           raw.isoformat()))
    if raw > local_date(entered):
        problems.append(_p("accepted_on", "in_future", "接受日期晚于今天", "accepted_on is in the future",
                           raw.isoformat()))
    if problems:
        raise InputRejected("接受日期有误 (invalid accepted_on)", problems=problems)
    return raw


def ship_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: dict[str, Any],
                  entered_at: datetime | None = None) -> dict[str, Any]:
    """The carrier picks up: vehicle plate, driver, 营运证件号, time → ``in_transit``.

    ``entered_at`` (trusted callers only: the demo, tests) is when the entry is deemed made; default now."""
    row = _current(uow, number, lock=True)
    shipper = _shipper(uow, row)
    _authorise_step(uow, actor, "ship", row, shipper)
    zh = {"vehicle": "车牌号", "driver": "驾驶员"}
    problems = [_p(f, "required", f"请填写{zh[f]}", f"{f} is required") for f in ("vehicle", "driver")
                if not str(data.get(f) or "").strip()]
    if problems:
        raise InputRejected("运输信息不完整 (vehicle and driver are required)", problems=problems)
    entered = as_aware(entered_at) or _now()
    t = _step_time(data) if data.get("time") else entered
    flags = _check_time(uow, t, entered, row.created_at, previous_is_submission=True)
    before = row.status
    row.vehicle, row.driver = str(data["vehicle"]).strip(), str(data["driver"]).strip()
    row.permit_no = str(data.get("permit_no") or "").strip() or None
    row.shipped_at, row.shipped_entered_at, row.status, row.updated_at = t, entered, "in_transit", _now()
    uow.session.add(row)
    _event(uow, actor, row, "ship", before, {"vehicle": row.vehicle, "driver": row.driver, "permit_no": row.permit_no,
                                            "time": t.isoformat(), "flags": flags},
           time=entered, event_time=t, unit=row.carrier_code or shipper.credit_code)
    uow.audit(actor, "manifest.ship", f"manifest:{number}", detail={"vehicle": row.vehicle}, district=shipper.district)
    out = manifest_dict(uow, row)
    uow.commit()
    return out


def _line_inputs(uow: UnitOfWork, lines: list[ManifestLineRow], given: list[dict[str, Any]], *, require_all: bool,
                 require_method: bool, is_return: bool = False) -> tuple[dict[int, dict[str, Any]], list[Problem]]:
    """Per-line receipt input. On a return (``is_return``) the method defaults to ``S`` (back into the shipper's
    storage), the only place ``S`` is accepted."""
    problems: list[Problem] = []
    by_no = {ln.line_no: ln for ln in lines}
    got: dict[int, dict[str, Any]] = {}
    for i, g in enumerate(given):
        no = g.get("line_no")
        if no not in by_no:
            problems.append(_p(f"lines.{i}.line_no", "unknown_line", f"联单没有第 {no} 行", f"no line {no}", no))
            continue
        if no in got:
            problems.append(_p(f"lines.{i}.line_no", "duplicate_line", f"第 {no} 行重复", f"line {no} twice", no))
        rec: dict[str, Any] = {}
        for key in ("received_t", "rejected_t"):
            if g.get(key) is None:
                continue
            try:
                kg = tonnes_to_kg(Decimal(str(g[key])))
            except (ValueError, ArithmeticError):
                kg = -1
            if kg < 0:
                problems.append(_p(f"lines.{i}.{key}", "bad_quantity", "数量须不小于 0", "must be ≥ 0", str(g[key])))
            rec[key[:-2] + "_kg"] = kg
        m = str(g.get("method") or "").strip().upper() or None
        if is_return and m is None:
            m = M.RETURN_METHOD
        if is_return and m != M.RETURN_METHOD:
            problems.append(_p(f"lines.{i}.method", "return_storage_only", "退回的废物由移出人接收入库，方式为 S（退回贮存）",
                               "a returned load goes back into the shipper's storage: method S", m))
        elif m == M.RETURN_METHOD and not is_return:
            problems.append(_p(f"lines.{i}.method", "return_only", "S（退回贮存）仅用于退回移出人的联单",
                               "S is only for a load returned to its shipper", m))
        elif m and m != M.RETURN_METHOD and uow.catalogue.method_class(m) is None:
            problems.append(_p(f"lines.{i}.method", "unknown_method", f"未知的方式代码 {m}", "unknown method code", m))
        mis = [str(k) for k in (g.get("mismatch") or [])]
        bad = [k for k in mis if k not in M.MISMATCH_KINDS]
        if bad:
            problems.append(_p(f"lines.{i}.mismatch", "unknown_mismatch", f"未知的差异类型 {bad[0]}",
                               f"mismatch kinds are {', '.join(M.MISMATCH_KINDS)}", bad[0]))
        rec["mismatch"] = sorted(set(mis), key=list(M.MISMATCH_KINDS).index) if not bad else []
        rec["reason"] = str(g.get("reason") or "").strip() or None
        if require_method and not m and rec.get("received_kg", 0) > 0:
            problems.append(_p(f"lines.{i}.method", "required", "请填写利用处置方式代码", "method is required"))
        rec["method"] = m
        got[no] = rec
    if require_all:
        for no in by_no:
            if no not in got:
                problems.append(_p("lines", "missing_line", f"缺少第 {no} 行的接收量", f"line {no} is missing", no))
    return got, problems


def _receipt_context(uow: UnitOfWork, actor: Actor, number: str, action: str
                     ) -> tuple[ManifestRow, UnitRow, list[ManifestLineRow], bool]:
    row = _current(uow, number, lock=True)
    shipper = _shipper(uow, row)
    _authorise_step(uow, actor, action, row, shipper)
    ret = M.is_return(parent_number=row.parent_number, shipper=shipper.credit_code, receiver=row.receiver_code)
    return row, shipper, _lines(uow, row.id or 0), ret


def receive_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: dict[str, Any],
                     entered_at: datetime | None = None) -> dict[str, Any]:
    """The receiver confirms: received quantity and method per line, 接受日期 → ``received``; discrepancies and
    the kinds of mismatch it found (第十八条) are recorded per line.

    A returned load (the follow-on of a refusal, back to its shipper) is received into the shipper's storage:
    method ``S`` by default. ``entered_at``: as in ``ship_manifest``."""
    row, shipper, lines, ret = _receipt_context(uow, actor, number, "receive")
    got, problems = _line_inputs(uow, lines, list(data.get("lines") or []), require_all=True, require_method=True,
                                 is_return=ret)
    for i, g in enumerate(data.get("lines") or []):
        if g.get("received_t") is None:
            problems.append(_p(f"lines.{i}.received_t", "required", "请填写实收量", "received_t is required"))
    if problems:
        raise InputRejected("接收信息有误 (invalid receipt)", problems=problems)
    entered = as_aware(entered_at) or _now()
    t = _step_time(data) if data.get("time") else entered
    if row.shipped_at and t < as_aware(row.shipped_at):
        raise InputRejected("接收时间早于运输时间", problems=[_p("time", "before_shipping", "接收时间早于运输时间",
                                                                 "receipt time is before shipping", t.isoformat())])
    flags = _check_time(uow, t, entered, row.shipped_at)
    accepted = _accepted_on(uow, row, data, t, entered)
    ratio, min_kg = uow.rules.discrepancy
    flagged = []
    for ln in lines:
        g = got[ln.line_no]
        ln.received_kg, ln.method, ln.rejected_kg = g["received_kg"], g["method"], 0
        ln.discrepancy = M.is_discrepancy(ln.quantity_kg, ln.received_kg or 0, ratio=ratio, min_kg=min_kg)
        mis = list(g.get("mismatch") or [])
        if ln.discrepancy and "quantity" not in mis:
            mis.insert(0, "quantity")
        ln.mismatch = mis or None
        if ln.discrepancy:
            flagged.append(ln.line_no)
        uow.session.add(ln)
    before = row.status
    row.status, row.received_at, row.updated_at = "received", t, _now()
    row.accepted_on, row.received_entered_at = accepted, entered
    uow.session.add(row)
    _event(uow, actor, row, "receive", before,
           {"time": t.isoformat(), "accepted_on": accepted.isoformat(), "discrepancy_lines": flagged,
            "mismatch": {str(ln.line_no): ln.mismatch for ln in lines if ln.mismatch}, "flags": flags,
            "return": ret},
           time=entered, event_time=t, unit=row.receiver_code)
    uow.audit(actor, "manifest.receive", f"manifest:{number}", detail={"discrepancy_lines": flagged},
              district=shipper.district)
    out = manifest_dict(uow, row)
    uow.commit()
    return out


def reject_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: dict[str, Any],
                    entered_at: datetime | None = None) -> dict[str, Any]:
    """The receiver refuses all (``rejected``) or part (``partially_received``) with a reason.

    ``lines`` (optional) gives, per line, what is accepted (``received_t``, ``method``), optionally what is
    refused (``rejected_t``, default the rest), the line's own ``reason`` and the ``mismatch`` kinds found;
    unlisted lines are refused in full. What is refused goes on a follow-on manifest (``parent_number`` = this
    one) from the same shipper to ``destination`` (default: back to the shipper), already ``in_transit`` on the
    same vehicle: the shipper receives it back into its storage (method ``S``)."""
    row, shipper, lines, ret = _receipt_context(uow, actor, number, "reject")
    reason = str(data.get("reason") or "").strip()
    problems: list[Problem] = []
    if not reason:
        problems.append(_p("reason", "required", "请填写拒收原因", "reason is required"))
    if ret:
        problems.append(_p("reason", "return_refused", "退回的联单由移出人接收入库，不能再拒收",
                           "a returned load is received back by its shipper, not refused again"))
    dest = normalise_credit_code(data.get("destination")) if data.get("destination") else shipper.credit_code
    if not is_valid_credit_code(dest):
        problems.append(_p("destination", "bad_credit_code", "去向单位统一社会信用代码校验失败",
                           "destination credit code fails the check", data.get("destination")))
    got, ps = _line_inputs(uow, lines, list(data.get("lines") or []), require_all=False, require_method=True)
    problems += ps
    for ln in lines:
        g = got.get(ln.line_no, {})
        rec = g.get("received_kg") or 0
        rej = g.get("rejected_kg")
        if rej is None:
            rej = max(0, ln.quantity_kg - rec)
        if rec > ln.quantity_kg and g.get("rejected_kg") is None:
            rej = 0
        g["received_kg"], g["rejected_kg"] = rec, rej
        got[ln.line_no] = g
    if not problems and all(g["rejected_kg"] == 0 for g in got.values()):
        problems.append(_p("lines", "nothing_rejected", "没有拒收任何数量，请用接收", "nothing is rejected: use receive"))
    if problems:
        raise InputRejected("拒收信息有误 (invalid rejection)", problems=problems)
    entered = as_aware(entered_at) or _now()
    t = _step_time(data) if data.get("time") else entered
    flags = _check_time(uow, t, entered, row.shipped_at)
    accepted = _accepted_on(uow, row, data, t, entered)
    ratio, min_kg = uow.rules.discrepancy
    partial = any(g["received_kg"] > 0 for g in got.values())
    follow_lines = []
    for ln in lines:
        g = got[ln.line_no]
        ln.received_kg, ln.rejected_kg, ln.method = g["received_kg"], g["rejected_kg"], g.get("method")
        ln.discrepancy = M.is_discrepancy(ln.quantity_kg, (ln.received_kg or 0) + (ln.rejected_kg or 0),
                                          ratio=ratio, min_kg=min_kg)
        ln.mismatch = list(g.get("mismatch") or []) or None
        uow.session.add(ln)
        if (ln.rejected_kg or 0) > 0:
            follow_lines.append({"waste_code": ln.waste_code, "quantity_kg": ln.rejected_kg,
                                 "packaging": ln.packaging, "planned_method": ln.planned_method,
                                 "container_count": ln.container_count if not partial else None})
    line_reasons = {str(no): g["reason"] for no, g in got.items() if g.get("reason")}
    before = row.status
    row.status = "partially_received" if partial else "rejected"
    row.received_at, row.reason, row.updated_at = t, reason, _now()
    row.accepted_on, row.received_entered_at = accepted, entered
    uow.session.add(row)
    follow = _write_manifest(uow, actor, shipper=shipper, receiver=dest, carrier=row.carrier_code,
                             planned_date=local_date(t), lines=follow_lines, status="in_transit", parent=row.number,
                             reason=f"拒收退回/转移 ({reason})",
                             extra={"shipped_at": t, "shipped_entered_at": entered, "vehicle": row.vehicle,
                                    "driver": row.driver, "permit_no": row.permit_no})
    _event(uow, actor, follow, "create", None, {"parent": row.number, "follow_on": True},
           time=entered, event_time=t, unit=row.receiver_code)
    _event(uow, actor, row, "reject", before,
           {"reason": reason, "line_reasons": line_reasons, "follow_on": follow.number, "time": t.isoformat(),
            "accepted_on": accepted.isoformat(), "flags": flags,
            "mismatch": {str(ln.line_no): ln.mismatch for ln in lines if ln.mismatch}},
           time=entered, event_time=t, unit=row.receiver_code)
    uow.audit(actor, "manifest.reject", f"manifest:{number}",
              detail={"reason": reason, "partial": partial, "follow_on": follow.number}, district=shipper.district)
    uow.audit(actor, "manifest.create", f"manifest:{follow.number}", detail={"parent": number, "follow_on": True},
              district=shipper.district)
    out = manifest_dict(uow, row)
    out["follow_ons"] = [follow.number]
    uow.commit()
    return out


def correct_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: dict[str, Any]) -> dict[str, Any]:
    """The shipper corrects a manifest not yet arrived: a new version becomes current, the old one is kept."""
    row = _current(uow, number, lock=True)
    shipper = _shipper(uow, row)
    _authorise_step(uow, actor, "correct", row, shipper)
    problems: list[Problem] = []
    reason = str(data.get("reason") or "").strip()
    if not reason:
        problems.append(_p("reason", "required", "请填写更正原因", "reason is required"))
    merged = {"shipper": shipper.credit_code, "receiver": data.get("receiver") or row.receiver_code,
              "carrier": data.get("carrier", row.carrier_code), "planned_date": data.get("planned_date") or row.planned_date,
              "lines": data.get("lines") if data.get("lines") is not None else [
                  {"waste_code": ln.waste_code, "quantity_t": str(Decimal(ln.quantity_kg) / 1000),
                   "packaging": ln.packaging, "planned_method": ln.planned_method,
                   "container_count": ln.container_count} for ln in _lines(uow, row.id or 0)]}
    ps, v = validate_new_manifest(uow, actor, merged)
    problems += ps
    if problems:
        raise InputRejected("更正信息有误 (invalid correction)", problems=problems)
    changed = sorted(k for k in ("receiver", "carrier", "planned_date", "lines", "vehicle", "driver") if k in data)
    row.is_current = False
    uow.session.add(row)
    uow.session.flush()
    extra = {"shipped_at": row.shipped_at, "vehicle": data.get("vehicle") or row.vehicle,
             "driver": data.get("driver") or row.driver}
    new = _write_manifest(uow, actor, shipper=shipper, receiver=v["receiver"], carrier=v["carrier"],
                          planned_date=v["planned_date"], lines=v["lines"], status=row.status,
                          parent=row.parent_number, reason=reason, number=row.number, version=row.version + 1,
                          extra=extra)
    _event(uow, actor, new, "correct", row.status, {"reason": reason, "fields": changed, "from_version": row.version})
    uow.audit(actor, "manifest.correct", f"manifest:{number}",
              detail={"version": new.version, "fields": changed, "reason": reason}, district=shipper.district)
    out = manifest_dict(uow, new, history=True)
    uow.commit()
    return out


# --- reads ---------------------------------------------------------------------------------------------
def get_manifest(*, uow: UnitOfWork, actor: Actor, number: str) -> dict[str, Any]:
    """One manifest (current version) with its history, versions and follow-ons; 404 if the caller may not see it."""
    row = _current(uow, number)
    if not readable(uow, actor, row):
        raise NotFound(f"联单 {number} 不存在 (no such manifest)", code="unknown_manifest")
    return manifest_dict(uow, row, history=True)


def _list_stmt(actor: Actor, *, status: str | None, unit: str | None, code: str | None, date_from: date | None,
               date_to: date | None, region: str | None, party: str | None = None) -> Any:
    S = aliased(UnitRow)  # noqa: N806
    R = aliased(UnitRow)  # noqa: N806
    C = aliased(UnitRow)  # noqa: N806
    stmt = (select(ManifestRow).join(S, col(S.id) == col(ManifestRow.shipper_id))
            .outerjoin(R, col(R.credit_code) == col(ManifestRow.receiver_code))
            .outerjoin(C, col(C.credit_code) == col(ManifestRow.carrier_code))
            .where(col(ManifestRow.is_current).is_(True)))
    if actor.role == "enterprise":
        us = sorted(actor.units)
        stmt = stmt.where(or_(col(S.credit_code).in_(us), col(ManifestRow.receiver_code).in_(us),
                              col(ManifestRow.carrier_code).in_(us)))
    elif actor.role == "regulator" and actor.district != CITY:
        stmt = stmt.where(or_(col(S.district) == actor.district, col(R.district) == actor.district,
                              col(C.district) == actor.district))
    if party and actor.role == "enterprise":  # where the caller's units are that party of the manifest
        us = sorted(actor.units)
        stmt = stmt.where({
            "shipper": col(S.credit_code).in_(us),
            "receiver": col(ManifestRow.receiver_code).in_(us),
            "carrier": or_(col(ManifestRow.carrier_code).in_(us),
                           and_(col(ManifestRow.carrier_code).is_(None), col(S.credit_code).in_(us))),
        }[party])
    if status:
        stmt = stmt.where(col(ManifestRow.status) == status)
    if unit:
        u = normalise_credit_code(unit)
        stmt = stmt.where(or_(col(S.credit_code) == u, col(ManifestRow.receiver_code) == u, col(ManifestRow.carrier_code) == u))
    if code:
        stmt = stmt.where(exists().where(col(ManifestLineRow.manifest_id) == col(ManifestRow.id),
                                         col(ManifestLineRow.waste_code) == code))
    if date_from:
        stmt = stmt.where(col(ManifestRow.planned_date) >= date_from)
    if date_to:
        stmt = stmt.where(col(ManifestRow.planned_date) <= date_to)
    if region and region != CITY:
        stmt = stmt.where(or_(col(S.district) == region, col(S.park) == region, col(R.district) == region, col(R.park) == region))
    return stmt


def list_manifests(*, uow: UnitOfWork, actor: Actor, status: str | None = None, unit: str | None = None,
                   code: str | None = None, date_from: date | None = None, date_to: date | None = None,
                   region: str | None = None, page: int = 1, per_page: int = 50, party: str | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
    """Current manifests the caller may see, filtered (planned date range, either end in ``region``; ``party``:
    where an enterprise's units are the shipper, carrier or receiver), paged."""
    stmt = _list_stmt(actor, status=status, unit=unit, code=code, date_from=date_from, date_to=date_to,
                      region=region, party=party)
    total = int(uow.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    rows = uow.session.execute(stmt.order_by(col(ManifestRow.number).desc()).offset((page - 1) * per_page)
                               .limit(per_page)).scalars()
    return [manifest_dict(uow, r) for r in rows], total


EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "联单编号"), ("version", "版本"), ("status", "状态"), ("shipper", "移出单位统一社会信用代码"),
    ("shipper_name", "移出单位名称"), ("receiver", "接受单位统一社会信用代码"), ("carrier", "承运单位统一社会信用代码"),
    ("planned_date", "计划转移日期"), ("shipped_at", "运输时间"), ("received_at", "接收时间"), ("vehicle", "车牌号"),
    ("driver", "驾驶员"), ("line_no", "行号"), ("waste_code", "废物代码"), ("quantity_t", "转移量（吨）"),
    ("received_t", "接收量（吨）"), ("rejected_t", "拒收量（吨）"), ("method", "利用处置方式"),
    ("discrepancy", "差异"), ("parent_number", "原联单编号"),
)


def export_rows(*, uow: UnitOfWork, actor: Actor, limit: int = 200_000, **filters: Any) -> Iterable[dict[str, Any]]:
    """One flat row per manifest line, for CSV/XLSX export (same filters and visibility as the list)."""
    S = aliased(UnitRow)  # noqa: N806
    sub = _list_stmt(actor, **filters).with_only_columns(col(ManifestRow.id)).subquery()
    stmt = (select(ManifestRow, ManifestLineRow, col(S.credit_code), col(S.name))
            .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
            .join(S, col(S.id) == col(ManifestRow.shipper_id))
            .where(col(ManifestRow.id).in_(select(sub.c.id)))
            .order_by(col(ManifestRow.number), col(ManifestLineRow.line_no)).limit(limit))
    out = []
    for m, ln, sc, sn in uow.session.execute(stmt):
        out.append({
            "number": m.number, "version": m.version, "status": m.status, "shipper": sc, "shipper_name": sn,
            "receiver": m.receiver_code, "carrier": m.carrier_code or "", "planned_date": m.planned_date.isoformat(),
            "shipped_at": as_aware(m.shipped_at).isoformat() if m.shipped_at else "",
            "received_at": as_aware(m.received_at).isoformat() if m.received_at else "",
            "vehicle": m.vehicle or "", "driver": m.driver or "", "line_no": ln.line_no, "waste_code": ln.waste_code,
            "quantity_t": str(Decimal(ln.quantity_kg) / 1000),
            "received_t": "" if ln.received_kg is None else str(Decimal(ln.received_kg) / 1000),
            "rejected_t": "" if ln.rejected_kg is None else str(Decimal(ln.rejected_kg) / 1000),
            "method": ln.method or "", "discrepancy": "是" if ln.discrepancy else "",
            "parent_number": m.parent_number or "",
        })
    return out


def receipt_late(shipped_at: datetime, received_at: datetime | None, as_of: datetime, cal: M.WorkCalendar,
                 days: int) -> tuple[bool, date]:
    """Whether receipt was (or is still) not confirmed within ``days`` working days of shipping, and the deadline."""
    due = M.receipt_deadline(local_date(shipped_at), cal, days)
    seen = received_at if received_at is not None else as_of
    return local_date(seen) > due, due



# --- the producer's pages: drafts, receivers, the last manifest, counts by status ------------------------------
def _own_shipper(uow: UnitOfWork, actor: Actor, code: str | None) -> UnitRow:
    """The unit an enterprise ships for (its single unit when none is named); admins name any."""
    cc = normalise_credit_code(code) if code else (next(iter(actor.units)) if len(actor.units) == 1 else None)
    if cc is None:
        raise InputRejected("请指定移出单位", problems=[_p("shipper", "missing_shipper", "请指定移出单位", "name the shipper")])
    if not actor.can_submit_for(cc):
        raise PermissionDenied("只能为本单位创建联单 (not one of your units)", code="not_your_unit")
    row = unit_rows_by_code(uow.session, [cc]).get(cc)
    if row is None:
        raise NotFound(f"单位 {cc} 不存在 (no such unit)", code="unknown_unit")
    return row


def _draft(uow: UnitOfWork, actor: Actor, draft_id: int) -> ManifestDraftRow:
    d = uow.session.get(ManifestDraftRow, draft_id)
    if d is not None:
        sh = uow.session.get(UnitRow, d.shipper_id)
        if sh is not None and actor.can_submit_for(sh.credit_code):
            return d
    raise NotFound("草稿不存在 (no such draft)", code="unknown_draft")


def save_draft(*, uow: UnitOfWork, actor: Actor, data: dict[str, Any], draft_id: int | None = None) -> dict[str, Any]:
    """Keep a manifest being written without numbering it (a number is allocated on 提交联单)."""
    shipper = _own_shipper(uow, actor, data.get("shipper"))
    clean = {k: data.get(k) for k in ("receiver", "carrier", "planned_date", "lines")}
    pd = clean.get("planned_date")
    if isinstance(pd, date):
        clean["planned_date"] = pd.isoformat()
    clean["shipper"] = shipper.credit_code
    if draft_id is not None:
        row = _draft(uow, actor, draft_id)
        row.data, row.updated_at, row.shipper_id = clean, _now(), shipper.id or 0
    else:
        row = ManifestDraftRow(shipper_id=shipper.id or 0, data=clean, created_by=actor.label, updated_at=_now())
    uow.session.add(row)
    uow.session.flush()
    uow.audit(actor, "manifest.draft", f"manifest_draft:{row.id}", detail={"receiver": clean.get("receiver")},
              district=shipper.district)
    out = {"id": row.id, "shipper": shipper.credit_code, **clean, "updated_at": as_aware(row.updated_at)}
    uow.commit()
    return out


def get_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int) -> dict[str, Any]:
    row = _draft(uow, actor, draft_id)
    return {"id": row.id, **row.data, "updated_at": as_aware(row.updated_at)}


def list_drafts(*, uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    """The drafts of the caller's units (admins: all)."""
    stmt = select(ManifestDraftRow, col(UnitRow.credit_code)).join(UnitRow, col(UnitRow.id) == col(ManifestDraftRow.shipper_id))
    if not actor.is_admin:
        stmt = stmt.where(col(UnitRow.credit_code).in_(sorted(actor.units)))
    return [{"id": d.id, **d.data, "shipper": cc, "updated_at": as_aware(d.updated_at)}
            for d, cc in uow.session.execute(stmt.order_by(col(ManifestDraftRow.updated_at).desc()))]


def submit_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int, data: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """提交联单 from a draft (its saved fields, or ``data`` when given): numbered, ``submitted``, draft removed."""
    row = _draft(uow, actor, draft_id)
    m = _create(uow, actor, dict(data if data is not None else row.data))
    uow.session.delete(row)
    out = manifest_dict(uow, m)
    uow.commit()
    return out


def delete_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int) -> None:
    row = _draft(uow, actor, draft_id)
    uow.session.delete(row)
    uow.audit(actor, "manifest.draft_delete", f"manifest_draft:{draft_id}")
    uow.commit()


def receivers_for(*, uow: UnitOfWork, code: str | None, q: str | None = None, on: date | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
    """Registered units whose permit (valid on ``on``) covers the waste code, by name or credit code search.

    The registry of licensed receivers is public information (a producer must check the receiver's licence,
    第十条), so any signed-in enterprise may search it; only name, code, district and the covering permit are shown."""
    from nofei.domain.units import Permit
    from nofei.storage.tables import PermitRow

    chk = uow.catalogue.classify(code) if code else None
    wc = chk.code if chk is not None and not chk.error else None
    stmt = select(UnitRow, PermitRow).join(PermitRow, col(PermitRow.unit_id) == col(UnitRow.id))
    if q:
        stmt = stmt.where(col(UnitRow.name).contains(q.strip()) | col(UnitRow.credit_code).contains(q.strip().upper()))
    out: dict[str, dict[str, Any]] = {}
    for u, p in uow.session.execute(stmt.order_by(col(UnitRow.name))):
        perm = Permit(p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, p.valid_from, p.valid_to)
        if wc is not None and not perm.covers(wc, None, on):
            continue
        if wc is None and on is not None and ((p.valid_from and on < p.valid_from) or (p.valid_to and on > p.valid_to)):
            continue
        hit = out.setdefault(u.credit_code, {"credit_code": u.credit_code, "name": u.name, "district": u.district,
                                             "permits": [], "methods": []})
        hit["permits"].append(p.number)
        hit["methods"] = sorted(set(hit["methods"]) | set(p.methods))
    return list(out.values())[:limit]


def last_manifest(*, uow: UnitOfWork, actor: Actor, shipper: str | None = None, receiver: str | None = None
                  ) -> dict[str, Any] | None:
    """The newest current manifest the caller's unit shipped (to ``receiver`` when given): "copy last manifest"."""
    sh = _own_shipper(uow, actor, shipper)
    stmt = select(ManifestRow).where(col(ManifestRow.shipper_id) == sh.id, col(ManifestRow.is_current).is_(True),
                                     col(ManifestRow.parent_number).is_(None))
    if receiver:
        stmt = stmt.where(col(ManifestRow.receiver_code) == normalise_credit_code(receiver))
    row = uow.session.execute(stmt.order_by(col(ManifestRow.created_at).desc(), col(ManifestRow.id).desc()).limit(1)
                              ).scalar_one_or_none()
    return None if row is None else manifest_dict(uow, row)


def status_counts(*, uow: UnitOfWork, actor: Actor, party: str | None = None) -> dict[str, int]:
    """How many current manifests the caller sees in each status (``party``: only where it is that party)."""
    sub = _list_stmt(actor, status=None, unit=None, code=None, date_from=None, date_to=None, region=None,
                     party=party).subquery()
    rows = uow.session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))
    got = {str(s): int(n) for s, n in rows}
    return {s: got.get(s, 0) for s in M.STATUSES}


def carriers(*, uow: UnitOfWork) -> list[dict[str, Any]]:
    """Registered units with the carrier role (承运人), for the producer's choice (name and code only)."""
    rows = uow.session.execute(select(UnitRow).order_by(col(UnitRow.name))).scalars()
    return [{"credit_code": u.credit_code, "name": u.name, "district": u.district} for u in rows
            if "carrier" in (u.roles or [])]
