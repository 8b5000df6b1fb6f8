"""The rules a manifest's input must meet before anything is written: every problem named by its field.

A new manifest (parties, lines, planned date), the per-line input of a receipt or refusal, and the time rules of
each step (issue 16: refuse what cannot be true, flag what is late). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.units import is_valid_credit_code, normalise_credit_code
from nofei.errors import InputRejected
from nofei.problems import Problem
from nofei.quantity import tonnes_to_kg
from nofei.storage.manifests import LineValues
from nofei.storage.repo import unit_rows_by_code
from nofei.storage.tables import ManifestLineRow, ManifestRow, UnitRow
from nofei.storage.uow import UnitOfWork

from .commands import NewLine, NewManifest, Raw, ReceiptLine
from .common import HAZ_STREAMS, as_aware, local_date
from .common import problem as _p


# --- a new manifest ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckedManifest:
    """A new manifest's values once checked (``shipper`` None and ``planned_date`` None only with problems)."""

    shipper: UnitRow | None
    receiver: str
    carrier: str | None
    planned_date: date | None
    lines: tuple[LineValues, ...]


def _kg(raw: Raw, bad: int) -> int:
    """Tonnes as exact kilograms, or ``bad`` when it is not a number."""
    try:
        return tonnes_to_kg(Decimal(str(raw)))
    except (ValueError, ArithmeticError):
        return bad


def _code_problem(cat: Catalogue, i: int, raw: str | None) -> tuple[str | None, Problem | None]:
    chk = cat.classify(raw)
    if chk.error or chk.code is None:
        return chk.code, _p(f"lines.{i}.waste_code", "unknown_code", f"未知的废物代码 {raw}", "unknown waste code", raw)
    if chk.stream not in HAZ_STREAMS:
        return chk.code, _p(f"lines.{i}.waste_code", "not_hazardous", "转移联单仅用于危险废物和医疗废物",
                            "manifests are for hazardous and medical waste", raw)
    return chk.code, None


def _container_count(i: int, raw: Raw, problems: list[Problem]) -> int | None:
    if raw in (None, ""):
        return None
    try:
        cc = int(str(raw))
    except ValueError:
        cc = -1
    if not 0 <= cc <= 1_000_000:
        problems.append(_p(f"lines.{i}.container_count", "bad_count", "包装数量须为不小于 0 的整数",
                           "container count must be a whole number ≥ 0", str(raw)))
    return cc


def _check_line(cat: Catalogue, i: int, ln: NewLine, problems: list[Problem]) -> LineValues:
    code, bad = _code_problem(cat, i, ln.waste_code)
    if bad is not None:
        problems.append(bad)
    kg = _kg(ln.quantity_t, 0)
    if kg <= 0:
        problems.append(_p(f"lines.{i}.quantity_t", "bad_quantity", "数量须大于 0（吨，精确到千克）",
                           "quantity must be > 0 t (to the kilogram)", str(ln.quantity_t)))
    pm = ln.planned_method.strip().upper() if ln.planned_method else None
    if pm and cat.method_class(pm) is None:
        problems.append(_p(f"lines.{i}.planned_method", "unknown_method", f"未知的方式代码 {pm}",
                           "unknown method code", pm))
    cc = _container_count(i, ln.container_count, problems)
    return LineValues(waste_code=code or "", quantity_kg=kg, packaging=ln.packaging or None, planned_method=pm,
                      container_count=cc)


def check_lines(cat: Catalogue, lines: tuple[NewLine, ...], problems: list[Problem]) -> tuple[LineValues, ...]:
    if not lines:
        problems.append(_p("lines", "no_lines", "联单至少需要一行废物", "a manifest needs at least one line"))
    return tuple(_check_line(cat, i, ln, problems) for i, ln in enumerate(lines))


def _shipper(uow: UnitOfWork, actor: Actor, given: str | None, problems: list[Problem]
             ) -> tuple[str | None, UnitRow | None]:
    code = normalise_credit_code(given) if given else None
    if code is None:
        if actor.role == "enterprise" and len(actor.units) == 1:
            code = next(iter(actor.units))
        else:
            problems.append(_p("shipper", "missing_shipper", "请指定移出单位", "name the shipper"))
            return None, None
    row = unit_rows_by_code(uow.session, [code]).get(code)
    if row is None:
        problems.append(_p("shipper", "unknown_unit", f"移出单位 {code} 未注册",
                           "the shipper is not a registered unit", code))
    return code, row


def check_parties(uow: UnitOfWork, actor: Actor, cmd: NewManifest, problems: list[Problem]
                  ) -> tuple[UnitRow | None, str, str | None]:
    shipper_code, shipper = _shipper(uow, actor, cmd.shipper, problems)
    receiver = normalise_credit_code(cmd.receiver)
    if not is_valid_credit_code(receiver):
        problems.append(_p("receiver", "bad_credit_code", "接受单位统一社会信用代码校验失败",
                           "receiver credit code fails the GB 32100-2015 check", cmd.receiver))
    elif shipper_code and receiver == shipper_code:
        problems.append(_p("receiver", "same_party", "接受单位不能是移出单位", "receiver is the shipper", receiver))
    carrier = normalise_credit_code(cmd.carrier) if cmd.carrier else None
    if carrier and not is_valid_credit_code(carrier):
        problems.append(_p("carrier", "bad_credit_code", "承运单位统一社会信用代码校验失败",
                           "carrier credit code fails the GB 32100-2015 check", cmd.carrier))
    return shipper, receiver, carrier


def _planned_date(raw: date | str | None, problems: list[Problem]) -> date | None:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        problems.append(_p("planned_date", "bad_date", "计划转移日期无效", "planned_date is not a date", str(raw)))
        return None


def validate_new_manifest(uow: UnitOfWork, actor: Actor, cmd: NewManifest) -> tuple[list[Problem], CheckedManifest]:
    """All problems of a create request (field-named), and the cleaned values (complete when there are none)."""
    problems: list[Problem] = []
    shipper, receiver, carrier = check_parties(uow, actor, cmd, problems)
    lines = check_lines(uow.catalogue, cmd.lines, problems)
    pd = _planned_date(cmd.planned_date, problems)
    return problems, CheckedManifest(shipper, receiver, carrier, pd, lines)


# --- a receipt or refusal, line by line ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineInput:
    """One line of a receipt or refusal once checked: kilograms (None: not given), method, mismatch, reason."""

    received_kg: int | None = None
    rejected_kg: int | None = None
    method: str | None = None
    mismatch: tuple[str, ...] = ()
    reason: str | None = None


def _quantities(i: int, g: ReceiptLine, problems: list[Problem]) -> tuple[int | None, int | None]:
    out: list[int | None] = []
    for key, raw in (("received_t", g.received_t), ("rejected_t", g.rejected_t)):
        kg = None if raw is None else _kg(raw, -1)
        if kg is not None and kg < 0:
            problems.append(_p(f"lines.{i}.{key}", "bad_quantity", "数量须不小于 0", "must be ≥ 0", str(raw)))
        out.append(kg)
    return out[0], out[1]


def _method(cat: Catalogue, i: int, raw: str | None, is_return: bool) -> tuple[str | None, Problem | None]:
    """The line's method; on a return ``S`` (back into the shipper's storage) by default and only there."""
    m = str(raw or "").strip().upper() or None
    if is_return and m is None:
        m = M.RETURN_METHOD
    if is_return and m != M.RETURN_METHOD:
        return m, _p(f"lines.{i}.method", "return_storage_only", "退回的废物由移出人接收入库，方式为 S（退回贮存）",
                     "a returned load goes back into the shipper's storage: method S", m)
    if m == M.RETURN_METHOD and not is_return:
        return m, _p(f"lines.{i}.method", "return_only", "S（退回贮存）仅用于退回移出人的联单",
                     "S is only for a load returned to its shipper", m)
    if m and m != M.RETURN_METHOD and cat.method_class(m) is None:
        return m, _p(f"lines.{i}.method", "unknown_method", f"未知的方式代码 {m}", "unknown method code", m)
    return m, None


def _mismatch(i: int, kinds: tuple[str, ...], problems: list[Problem]) -> tuple[str, ...]:
    bad = [k for k in kinds if k not in M.MISMATCH_KINDS]
    if bad:
        problems.append(_p(f"lines.{i}.mismatch", "unknown_mismatch", f"未知的差异类型 {bad[0]}",
                           f"mismatch kinds are {', '.join(M.MISMATCH_KINDS)}", bad[0]))
        return ()
    return tuple(sorted(set(kinds), key=list(M.MISMATCH_KINDS).index))


def _line_input(cat: Catalogue, i: int, g: ReceiptLine, problems: list[Problem], *, require_method: bool,
                is_return: bool) -> LineInput:
    received, rejected = _quantities(i, g, problems)
    m, bad = _method(cat, i, g.method, is_return)
    if bad is not None:
        problems.append(bad)
    mismatch = _mismatch(i, g.mismatch, problems)
    if require_method and not m and (received or 0) > 0:
        problems.append(_p(f"lines.{i}.method", "required", "请填写利用处置方式代码", "method is required"))
    return LineInput(received, rejected, m, mismatch, str(g.reason or "").strip() or None)


def line_inputs(cat: Catalogue, lines: list[ManifestLineRow], given: tuple[ReceiptLine, ...], *, require_all: bool,
                require_method: bool, is_return: bool = False) -> tuple[dict[int, LineInput], list[Problem]]:
    """Per-line receipt input, by line number. On a return (``is_return``) the method defaults to ``S`` (back
    into the shipper's storage), the only place ``S`` is accepted."""
    problems: list[Problem] = []
    numbers = {ln.line_no for ln in lines}
    got: dict[int, LineInput] = {}
    for i, g in enumerate(given):
        no = g.line_no
        if no not in numbers:
            problems.append(_p(f"lines.{i}.line_no", "unknown_line", f"联单没有第 {no} 行", f"no line {no}", no))
            continue
        if no in got:
            problems.append(_p(f"lines.{i}.line_no", "duplicate_line", f"第 {no} 行重复", f"line {no} twice", no))
        got[no] = _line_input(cat, i, g, problems, require_method=require_method, is_return=is_return)
    if require_all:
        problems += [_p("lines", "missing_line", f"缺少第 {no} 行的接收量", f"line {no} is missing", no)
                     for no in (ln.line_no for ln in lines) if no not in got]
    return got, problems


# --- the time rules of a step ----------------------------------------------------------------------------
def check_time(uow: UnitOfWork, t: datetime, entered: datetime, previous: datetime | None, *,
               previous_is_submission: bool = False, field: str = "time") -> list[str]:
    """Apply the time rules (``M.check_step_time``): refuse what cannot be true, return the flags of the rest."""
    chk = M.check_step_time(t, entered=entered, previous=as_aware(previous), cal=uow.rules.calendar,
                            event_day=local_date(t), entered_day=local_date(entered),
                            previous_is_submission=previous_is_submission)
    if chk.refused:
        raise InputRejected(f"{chk.refused[0][1]} (invalid {field})", problems=[
            _p(field, code, zh, en, t.isoformat()) for code, zh, en in chk.refused])
    return list(chk.flags)


def _as_date(raw: date | str) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise InputRejected("接受日期无效", problems=[
            _p("accepted_on", "bad_date", "接受日期无效", "accepted_on is not a date", str(raw))]) from None


def accepted_on(row: ManifestRow, raw: date | str | None, t: datetime, entered: datetime) -> date:
    """接受日期: given, else the Beijing date of ``t``; not before the shipping date, not after the receipt
    time, not in the future (refused: 第十八条's five days run from it, so it must be true)."""
    if raw is None:
        return local_date(t)
    day = _as_date(raw)
    problems = []
    if row.shipped_at is not None and day < local_date(row.shipped_at):
        problems.append(_p("accepted_on", "before_shipping", "接受日期早于运输日期", "accepted_on is before shipping",
                           day.isoformat()))
    if day > local_date(t):
        problems.append(_p("accepted_on", "after_receipt", "接受日期晚于确认时间", "accepted_on is after the receipt time",
                           day.isoformat()))
    if day > local_date(entered):
        problems.append(_p("accepted_on", "in_future", "接受日期晚于今天", "accepted_on is in the future",
                           day.isoformat()))
    if problems:
        raise InputRejected("接受日期有误 (invalid accepted_on)", problems=problems)
    return day
