"""Anomalies for regulators (异常联单 and ledger findings), as plain dicts for the API and the annual report.

Kinds (issue 5 §2–§4):
- ``receipt_overdue``: receipt recorded more than 5 working days after the 接受日期 (第十八条 在接受之日起; while
  still in transit, counted from the shipping date);
- ``discrepancy``: a received line differs from the shipped one by > 5 % and > 0.1 t (ledger-workbook.md);
- ``storage_over_year``: hazardous waste held in stock over a year, aged FIFO over the monthly ledgers
  (固废法 第八十一条, regulations.md §2.5);
- ``missing_manifest_number``: 转出 rows of hazardous/medical codes without a well-formed 联单编号 (rows exempt
  from the 联单 at the transport stage, 豁免清单, need none);
- ``permit_not_covering``: a receiver whose permits do not cover the code or method;
- ``over_capacity``: a receiver that took more than its permitted yearly capacity;
- ``reconciliation``: 转出 rows, the manifest and 转入 rows disagree by number and code (ledger-workbook.md
  "Counterparts"): quantity mismatch, one side missing after the following month, a row citing an unknown number;
- ``unresolved_mass``: 转出 to a unit that is unregistered or reported no ledger of that code in the year
  (fate ``X``, indicators.md §1);
- ``missing_ledger``: a month a unit owes (from its ``reports_from``, once the 15th of the next month has
  passed: ``nofei.domain.completeness``) with no current ledger version — one per unit and month (issue 13).

Everything is aggregated in SQL so that a city-wide year of a million manifests lists in seconds.
Each anomaly names its units, manifests, ledger rows and the mass at stake (integer kg; tonnes for show).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    label,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased, sessionmaker
from sqlmodel import col

from nofei.access import Actor
from nofei.catalogue import CITY, STREAMS
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.completeness import month_deadline, months_owed
from nofei.domain.regions import in_region
from nofei.domain.units import Permit
from nofei.errors import InputRejected, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import flowdata
from nofei.storage.tables import (
    AuditRow,
    LedgerRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    PermitRow,
    StockEntryRow,
    TransferEntryRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

from .manifests import CST, HAZ_STREAMS, local_date

log = logging.getLogger("nofei")
KINDS: tuple[str, ...] = ("receipt_overdue", "discrepancy", "storage_over_year", "missing_manifest_number",
                          "permit_not_covering", "over_capacity", "reconciliation", "unresolved_mass",
                          "missing_ledger")
TITLES: dict[str, str] = {
    "receipt_overdue": "超过5个工作日未确认接收", "discrepancy": "接收量与转移量差异",
    "storage_over_year": "危险废物贮存超过一年", "missing_manifest_number": "转移未填联单编号",
    "permit_not_covering": "接受单位许可证未覆盖该代码或方式", "over_capacity": "接受单位超过许可年经营规模",
    "reconciliation": "转出、联单、转入三方核对不一致", "unresolved_mass": "去向不明（X）",
    "missing_ledger": "月度台账逾期未报",
}
_LO_MASK = (1 << 30) - 1  # low half of a kilogram sum split for PostgreSQL (see _reconciliation)
MAX_NAMED = 50  # manifests / ledger rows named per anomaly; ``*_count`` says how many there are


class _Units:
    """All registered units (id, credit code, district, park), loaded once per call."""

    def __init__(self, uow: UnitOfWork) -> None:
        rows = uow.session.execute(select(col(UnitRow.id), col(UnitRow.credit_code), col(UnitRow.district), col(UnitRow.park))).all()
        self.by_id = {r.id: r.credit_code for r in rows}
        self.region = {r.credit_code: (r.district, r.park) for r in rows}

    def in_region(self, cc: str | None, region: str) -> bool:
        if cc is None or cc not in self.region:
            return False
        return in_region(region, *self.region[cc])


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return (datetime(year, 1, 1, tzinfo=CST).astimezone(UTC), datetime(year + 1, 1, 1, tzinfo=CST).astimezone(UTC))


def _anomaly(kind: str, *, units: list[str], mass_kg: int, message: str, manifests: list[str] | None = None,
             ledger_rows: list[dict[str, Any]] | None = None, waste_code: str | None = None,
             detail: dict[str, Any] | None = None, manifest_count: int | None = None,
             ledger_row_count: int | None = None) -> dict[str, Any]:
    ms = manifests or []
    lr = ledger_rows or []
    return {
        "kind": kind, "title": TITLES[kind], "message": message, "units": list(dict.fromkeys(u for u in units if u)),
        "manifests": ms[:MAX_NAMED], "manifest_count": manifest_count if manifest_count is not None else len(ms),
        "ledger_rows": lr[:MAX_NAMED], "ledger_row_count": ledger_row_count if ledger_row_count is not None else len(lr),
        "waste_code": waste_code, "mass_kg": int(mass_kg), "mass_t": kg_to_t_float(int(mass_kg)),
        "detail": detail or {},
    }


def _id_filters(uow: UnitOfWork, col: Any, ids: Any, type_: Any = Integer) -> list[Any]:
    """Conditions ``col`` in ``ids``: one ``= ANY(array)`` on PostgreSQL (a single statement for 20,000 rows
    instead of 25 with 900 bound parameters each), chunks of 900 elsewhere (SQLite's parameter limit)."""
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return []
    if uow.session.get_bind().dialect.name == "postgresql":
        return [col == any_(bindparam("ids", ids, type_=ARRAY(type_)))]
    return [col.in_(ids[k:k + 900]) for k in range(0, len(ids), 900)]


def _ledger_rows(uow: UnitOfWork, ids: list[int], units: _Units) -> dict[int, dict[str, Any]]:
    """Where each transfer row is: ledger version, unit, month, sheet, row number."""
    out: dict[int, dict[str, Any]] = {}
    for where in _id_filters(uow, col(TransferEntryRow.id), ids):
        for r in uow.session.execute(
            select(col(TransferEntryRow.id), col(TransferEntryRow.row), col(TransferEntryRow.direction), label("lid", col(LedgerRow.id)),
                   col(LedgerRow.unit_id), col(LedgerRow.month), col(LedgerRow.version))
            .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id)).where(where)):
            out[r.id] = {"entry_id": r.id, "ledger_id": r.lid, "version": r.version, "unit": units.by_id.get(r.unit_id),
                         "month": r.month, "sheet": "转出" if r.direction == "out" else "转入", "row": r.row}
    return out


# --- manifest-based kinds -----------------------------------------------------------------------------
def _manifest_year(stmt: Any, year: int) -> Any:
    return stmt.where(col(ManifestRow.is_current).is_(True), col(ManifestRow.planned_date) >= date(year, 1, 1),
                      col(ManifestRow.planned_date) <= date(year, 12, 31))


def _receipt_overdue(uow: UnitOfWork, year: int, units: _Units, as_of: datetime) -> list[dict[str, Any]]:
    """第十八条: the receipt is recorded in nofei more than ``days`` working days after the 接受日期
    (``accepted_on``); while the load is still in transit the shipping date stands in (and the finding says so).

    Rows written before ``accepted_on``/``received_entered_at`` existed count from the receipt time itself."""
    cal = uow.rules.calendar
    days = uow.rules.receipt_working_days
    dialect = uow.session.get_bind().dialect.name
    recorded_col = func.coalesce(col(ManifestRow.received_entered_at), col(ManifestRow.received_at))
    # Late by n working days needs more than n - 1 calendar days after shipping (the acceptance is not before
    # the shipping date): a cheap SQL pre-filter before the exact calendar.
    if dialect == "sqlite":
        gap = func.julianday(recorded_col) - func.julianday(col(ManifestRow.shipped_at)) > days - 1
    else:
        gap = recorded_col > col(ManifestRow.shipped_at) + timedelta(days=days - 1)
    kg = select(func.sum(col(ManifestLineRow.quantity_kg))).where(
        col(ManifestLineRow.manifest_id) == col(ManifestRow.id)).scalar_subquery()
    S = aliased(UnitRow)  # noqa: N806
    stmt = _manifest_year(select(col(ManifestRow.number), col(S.credit_code), col(ManifestRow.receiver_code),
                                 col(ManifestRow.carrier_code), col(ManifestRow.status), col(ManifestRow.shipped_at),
                                 col(ManifestRow.received_at), col(ManifestRow.accepted_on),
                                 recorded_col.label("recorded_at"), kg.label("kg"))
                          .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(
        col(ManifestRow.shipped_at).is_not(None),
        or_(and_(col(ManifestRow.status) == "in_transit", col(ManifestRow.shipped_at) < as_of - timedelta(days=days)),
            and_(col(ManifestRow.received_at).is_not(None), gap)))
    # A year has ~365 start dates and fewer recording dates than manifests: decide each date with the calendar
    # once (deadline per start day, lateness per (deadline, day seen)) instead of once per manifest.
    today = local_date(as_of)
    dues: dict[date, date] = {}
    lates: dict[tuple[date, date], int] = {}
    out = []
    for r in uow.session.execute(stmt):
        shipped_on = local_date(r.shipped_at)
        in_transit = r.received_at is None
        recorded_on = None if in_transit else local_date(r.recorded_at)
        start = shipped_on if in_transit else (r.accepted_on or local_date(r.received_at))
        seen = recorded_on or today
        at_least = False
        try:
            due = dues.get(start)
            if due is None:
                due = dues[start] = M.receipt_deadline(start, cal, days)
        except M.CalendarNotCovered as e:
            # the deadline itself falls in a year whose holidays are not yet known (chinesecalendar, NOFEI_HOLIDAYS):
            # this manifest cannot be judged, and is not guessed as plain weekdays; the rest of the list stands
            log.warning("receipt deadline not judged", extra={"manifest": r.number, "reason": str(e)})
            continue
        if seen <= due:
            continue
        late = lates.get((due, seen))
        if late is None:
            try:
                late = lates[(due, seen)] = cal.working_days_between(due, seen)
            except M.CalendarNotCovered as e:  # late for sure: counted up to the last day the calendar knows
                late = cal.working_days_between(due, date(e.year - 1, 12, 31))
                at_least = True
        if late <= 0:  # seen on a rest day right after the deadline: not a working day late (issue 13)
            continue
        overdue = (f"逾期{'至少 ' if at_least else ' '}{late} 个工作日"
                   f"{'；此后的工作日历尚未载入' if at_least else ''}")
        if in_transit:
            msg = (f"联单 {r.number} {shipped_on} 起运，仍在运输中未确认接收；以起运日期代替接受日期，"
                   f"应在 {due} 前确认（{overdue}）")
        else:
            msg = f"联单 {r.number} {start} 接受，应在 {due} 前在系统中确认，于 {recorded_on} 才录入（{overdue}）"
        out.append(_anomaly(
            "receipt_overdue", units=[r.credit_code, r.receiver_code, r.carrier_code], mass_kg=r.kg or 0,
            manifests=[r.number], message=msg,
            detail={"shipped_on": shipped_on.isoformat(), "due": due.isoformat(), "status": r.status,
                    "accepted_on": start.isoformat() if not in_transit else None,
                    "counted_from": "shipped_on" if in_transit else "accepted_on",
                    "received_on": local_date(r.received_at).isoformat() if r.received_at is not None else None,
                    "recorded_on": recorded_on.isoformat() if recorded_on else None,
                    "working_days_late": late}))
    return out


def _discrepancies(uow: UnitOfWork, year: int, units: _Units) -> list[dict[str, Any]]:
    S = aliased(UnitRow)  # noqa: N806
    stmt = _manifest_year(select(col(ManifestRow.number), col(S.credit_code), col(ManifestRow.receiver_code), col(ManifestLineRow.line_no),
                                 col(ManifestLineRow.waste_code), col(ManifestLineRow.quantity_kg), col(ManifestLineRow.received_kg),
                                 col(ManifestLineRow.rejected_kg))
                          .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
                          .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(col(ManifestLineRow.discrepancy).is_(True))
    out = []
    for r in uow.session.execute(stmt):
        got = (r.received_kg or 0) + (r.rejected_kg or 0)
        out.append(_anomaly(
            "discrepancy", units=[r.credit_code, r.receiver_code], mass_kg=abs(got - r.quantity_kg), manifests=[r.number],
            waste_code=r.waste_code,
            message=f"联单 {r.number} 第 {r.line_no} 行 {r.waste_code}：转移 {kg_to_t_float(r.quantity_kg)} t，"
                    f"接收 {kg_to_t_float(got)} t",
            detail={"line_no": r.line_no, "shipped_kg": r.quantity_kg, "received_kg": r.received_kg,
                    "rejected_kg": r.rejected_kg}))
    return out


# --- storage age (FIFO) -----------------------------------------------------------------------------------
def _month_end(month: str) -> date:
    y, m = int(month[:4]), int(month[5:7])
    return (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1))


def fifo_over_limit(months: list[tuple[str, int, int, int, int]], limit_days: int) -> tuple[int, str | None, date | None]:
    """FIFO age of a stock over monthly ledgers: ``months`` = (YYYY-MM, open, arrivals, close, ledger_id) in order.

    Arrivals (generated + received) are a batch dated the month's last day; what leaves comes from the oldest
    batch first; an opening stock not explained by the previous close is a batch dated the month's first day
    (its real age is unknown, so this is the youngest it can be). Returns the mass older than ``limit_days`` at
    the end of the last month, the month the oldest such batch dates from, and the evaluation date."""
    q: deque[list[Any]] = deque()
    held = 0
    last_end: date | None = None
    for month, open_kg, arrivals, close_kg, _lid in months:
        if open_kg > held:
            q.append([date(int(month[:4]), int(month[5:7]), 1), open_kg - held])
        else:
            _take(q, held - open_kg)
        q.append([_month_end(month), arrivals])
        _take(q, open_kg + arrivals - close_kg)
        held = close_kg
        last_end = _month_end(month)
    if last_end is None:
        return 0, None, None
    old = [b for b in q if b[1] > 0 and (last_end - b[0]).days > limit_days]
    return sum(b[1] for b in old), (old[0][0].strftime("%Y-%m") if old else None), last_end


def _take(q: deque[list[Any]], kg: int) -> None:
    while kg > 0 and q:
        if q[0][1] <= kg:
            kg -= q[0][1]
            q.popleft()
        else:
            q[0][1] -= kg
            kg = 0


def _storage_over_year(uow: UnitOfWork, year: int, units: _Units, scope: set[str] | None) -> list[dict[str, Any]]:
    limit = uow.rules.storage_limit_days
    stmt = (select(col(LedgerRow.unit_id), col(LedgerRow.month), col(LedgerRow.id), col(StockEntryRow.code), col(StockEntryRow.open_kg),
                   col(StockEntryRow.generated_kg), col(StockEntryRow.close_kg))
            .join(StockEntryRow, col(StockEntryRow.ledger_id) == col(LedgerRow.id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) <= year, col(LedgerRow.year) >= year - 3,
                   col(StockEntryRow.stream).in_(HAZ_STREAMS))
            .order_by(col(LedgerRow.unit_id), col(StockEntryRow.code), col(LedgerRow.month)))
    series: dict[tuple[int, str], list[list[Any]]] = defaultdict(list)
    for r in uow.session.execute(stmt):
        if scope is not None and units.by_id.get(r.unit_id) not in scope:
            continue
        series[(r.unit_id, r.code)].append([r.month, r.open_kg, r.generated_kg, r.close_kg, r.id])
    # only a stock still held at the end of the year's last reported month can be old
    held = {k: v for k, v in series.items() if v and int(v[-1][0][:4]) == year and v[-1][3] > 0}
    ids = sorted({m[4] for v in held.values() for m in v})
    ins: dict[tuple[int, str], int] = {}
    for k in range(0, len(ids), 900):
        for lid, code, kg in uow.session.execute(
                select(col(TransferEntryRow.ledger_id), col(TransferEntryRow.code), func.sum(col(TransferEntryRow.qty_kg)))
                .where(col(TransferEntryRow.direction) == "in", col(TransferEntryRow.ledger_id).in_(ids[k:k + 900]))
                .group_by(col(TransferEntryRow.ledger_id), col(TransferEntryRow.code))):
            ins[(lid, code)] = int(kg or 0)
    out = []
    for (uid, code), months in held.items():
        kg, since, at = fifo_over_limit([(m[0], m[1], m[2] + ins.get((m[4], code), 0), m[3], m[4]) for m in months],
                                        limit)
        if kg <= 0:
            continue
        cc = units.by_id.get(uid, "")
        out.append(_anomaly(
            "storage_over_year", units=[cc], mass_kg=kg, waste_code=code,
            ledger_rows=[{"ledger_id": months[-1][4], "unit": cc, "month": months[-1][0], "sheet": "产生贮存"}],
            message=f"{cc} 的 {code} 有 {kg_to_t_float(kg)} t 自 {since} 起贮存至 {at}，超过 {limit} 天",
            detail={"oldest_month": since, "as_of": at.isoformat() if at else None, "limit_days": limit}))
    return out


# --- ledger-based kinds -----------------------------------------------------------------------------------
def _transfer_rows(year: int, direction: str) -> Any:
    return (select(col(TransferEntryRow.id), col(TransferEntryRow.code), col(TransferEntryRow.qty_kg), col(TransferEntryRow.counterpart),
                   col(TransferEntryRow.manifest_no), col(LedgerRow.unit_id), col(LedgerRow.month))
            .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) == year, col(TransferEntryRow.direction) == direction))


def _missing_numbers(uow: UnitOfWork, year: int, units: _Units) -> list[dict[str, Any]]:
    bad = or_(col(TransferEntryRow.manifest_no).is_(None), func.length(col(TransferEntryRow.manifest_no)) != 14)
    stmt = _transfer_rows(year, "out").where(col(TransferEntryRow.stream).in_(HAZ_STREAMS), bad)
    groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for r in uow.session.execute(stmt):
        groups[(r.unit_id, r.code)].append(r)
    # rows exempt from the 联单 at the transport stage (豁免清单: e.g. 900-052-31, or HW01 of a clinic with
    # ≤ 19 beds) need no number; a number they do carry must still be well formed
    cat = uow.catalogue.for_year(year)
    clinics = set(uow.session.execute(select(col(UnitRow.id)).where(col(UnitRow.small_clinic).is_(True))).scalars())
    for key in list(groups):
        if cat.transport_exempt(key[1], small_clinic=key[0] in clinics) is not None:
            kept = [r for r in groups[key] if r.manifest_no]
            if kept:
                groups[key] = kept
            else:
                del groups[key]
    # a 14-character number that is not all digits is caught by the reconciliation (unknown number)
    where = _ledger_rows(uow, [r.id for rs in groups.values() for r in rs[:MAX_NAMED]], units)
    out = []
    for (uid, code), rs in groups.items():
        cc = units.by_id.get(uid, "")
        kg = sum(r.qty_kg for r in rs)
        out.append(_anomaly(
            "missing_manifest_number", units=[cc, *sorted({r.counterpart for r in rs})], mass_kg=kg, waste_code=code,
            ledger_rows=[where[r.id] for r in rs[:MAX_NAMED] if r.id in where], ledger_row_count=len(rs),
            message=f"{cc} 有 {len(rs)} 条 {code} 转出记录没有有效的联单编号，共 {kg_to_t_float(kg)} t",
            detail={"values": sorted({r.manifest_no or "" for r in rs})[:10]}))
    return out


def _unresolved(uow: UnitOfWork, year: int, units: _Units) -> list[dict[str, Any]]:
    """The flow model's edges to ``X`` (indicators.md §1): 转出 to (j, c) that is no node of the year's graph —
    j unregistered, or no ledger of j in the year naming c — less what a refusal sent back (the model's ``kg``).
    The rows behind each are fetched for the groups found only."""
    lost: dict[tuple[str, str, str], int] = {}
    for stream in STREAMS:
        _d, g, _f = flowdata.stream_year(uow.session, stream, year, catalogue=uow.catalogue)
        if "X" not in g:
            continue
        for k, _x, e in g.in_edges("X", data=True):
            for cp, kg in e.get("receivers", {}).items():
                if kg > 0:
                    lost[(k[0], cp, k[1])] = kg
    if not lost:
        return []
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    cps = sorted({cp for _u, cp, _c in lost})
    for k in range(0, len(cps), 900):
        for r in uow.session.execute(_transfer_rows(year, "out").where(
                col(TransferEntryRow.counterpart).in_(cps[k:k + 900]))):
            key = (units.by_id.get(r.unit_id, ""), r.counterpart, r.code)
            if key in lost:
                groups[key].append(r)
    where = _ledger_rows(uow, [r.id for rs in groups.values() for r in rs[:MAX_NAMED]], units)
    out = []
    for (cc, cp, code), kg in lost.items():
        rs = groups.get((cc, cp, code), [])
        why = "未注册" if cp not in units.region else f"{year} 年没有报送含 {code} 的台账"
        out.append(_anomaly(
            "unresolved_mass", units=[cc, cp], mass_kg=kg, waste_code=code,
            manifests=sorted({r.manifest_no for r in rs if r.manifest_no}),
            ledger_rows=[where[r.id] for r in rs[:MAX_NAMED] if r.id in where], ledger_row_count=len(rs),
            message=f"{cc} 转出 {kg_to_t_float(kg)} t {code} 给 {cp}，接收方{why}，去向不明",
            detail={"receiver_registered": cp in units.region}))
    return out


# --- ledgers owed and not filed ---------------------------------------------------------------------------
def _missing_ledgers(uow: UnitOfWork, year: int, as_of: datetime) -> list[dict[str, Any]]:
    """One finding per unit and month owed (``months_owed``) with no current ledger version."""
    today = local_date(as_of)
    filed: dict[int, set[str]] = defaultdict(set)
    for uid, month in uow.session.execute(select(col(LedgerRow.unit_id), col(LedgerRow.month)).where(
            col(LedgerRow.year) == year, col(LedgerRow.is_current).is_(True))):
        filed[uid].add(month)
    out = []
    for unit_id, cc, rf in uow.session.execute(select(col(UnitRow.id), col(UnitRow.credit_code),
                                                      col(UnitRow.reports_from)).order_by(col(UnitRow.credit_code))):
        for m in months_owed(year, rf, today):
            if m in filed.get(unit_id or 0, ()):
                continue
            due = month_deadline(m)
            out.append(_anomaly(
                "missing_ledger", units=[cc], mass_kg=0,
                message=f"{cc} 的 {m} 月度台账应于 {due} 前报送，至 {today} 仍未报送",
                detail={"month": m, "deadline": due.isoformat(), "reports_from": rf}))
    return out


# --- permits ----------------------------------------------------------------------------------------------
def _permits(uow: UnitOfWork, year: int) -> dict[str, list[Permit]]:
    out: dict[str, list[Permit]] = defaultdict(list)
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    for p, cc in uow.session.execute(select(PermitRow, col(UnitRow.credit_code)).join(UnitRow, col(UnitRow.id) == col(PermitRow.unit_id))):
        if (p.valid_from and p.valid_from > y1) or (p.valid_to and p.valid_to < y0):
            continue
        out[cc].append(Permit(p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, None, None))
    return out


def _permit_kinds(uow: UnitOfWork, year: int, units: _Units, want: set[str]) -> list[dict[str, Any]]:
    permits = _permits(uow, year)
    method = func.coalesce(col(ManifestLineRow.method), col(ManifestLineRow.planned_method))
    # what the manifest delivered to its receiver (flow model: a refused load delivers nothing, and a load sent
    # back to its own shipper is a return, not a transfer to a facility)
    qty = case((col(ManifestRow.status) == "in_transit", col(ManifestLineRow.quantity_kg)),
               else_=func.coalesce(col(ManifestLineRow.received_kg), 0))
    S = aliased(UnitRow)  # noqa: N806
    mstmt = _manifest_year(select(col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code), method.label("method"),
                                  func.sum(qty).label("kg"), func.count().label("n"),
                                  func.min(col(ManifestRow.number)).label("first"), func.min(col(S.credit_code)).label("shipper"))
                           .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
                           .join(S, col(S.id) == col(ManifestRow.shipper_id)), year).where(
        col(ManifestRow.status) != "submitted", qty > 0, col(ManifestRow.receiver_code) != col(S.credit_code),
    ).group_by(col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code), method)
    refused = (select(col(ManifestRow.id)).where(col(ManifestRow.number) == col(TransferEntryRow.manifest_no),
                                                 col(ManifestRow.is_current).is_(True),
                                                 col(ManifestRow.status) == "rejected").exists())
    tstmt = (select(col(TransferEntryRow.counterpart), col(TransferEntryRow.code), col(TransferEntryRow.planned_method),
                    func.sum(col(TransferEntryRow.qty_kg)).label("kg"), func.count().label("n"),
                    func.min(col(TransferEntryRow.id)).label("first"))
             .join(LedgerRow, col(LedgerRow.id) == col(TransferEntryRow.ledger_id))
             .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year) == year, col(TransferEntryRow.direction) == "out",
                    col(TransferEntryRow.stream).in_(HAZ_STREAMS), ~refused)
             .group_by(col(TransferEntryRow.counterpart), col(TransferEntryRow.code), col(TransferEntryRow.planned_method)))
    uncovered: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    taken: dict[str, int] = defaultdict(int)
    taken_ledger: dict[str, int] = defaultdict(int)
    for r in uow.session.execute(mstmt):
        if r.receiver_code not in units.region:
            continue
        taken[r.receiver_code] += r.kg or 0
        if not any(p.covers(r.waste_code, r.method) for p in permits.get(r.receiver_code, [])):
            u = uncovered.setdefault((r.receiver_code, r.waste_code, r.method),
                                     {"kg": 0, "manifests": [], "n": 0, "rows": [], "senders": set()})
            u["kg"] += r.kg or 0
            u["n"] += r.n
            u["manifests"].append(r.first)
            u["senders"].add(r.shipper)
    for r in uow.session.execute(tstmt):
        if r.counterpart not in units.region:
            continue
        taken_ledger[r.counterpart] += r.kg or 0
        if not any(p.covers(r.code, r.planned_method) for p in permits.get(r.counterpart, [])):
            # the ledger's side of a finding the manifests already raised for the receiver and code is that finding
            key = next((k for k in uncovered if k[0] == r.counterpart and k[1] == r.code and uncovered[k]["n"]),
                       (r.counterpart, r.code, r.planned_method))
            u = uncovered.setdefault(key, {"kg": 0, "manifests": [], "n": 0, "rows": [], "senders": set()})
            u["kg"] = max(u["kg"], r.kg or 0)
            u["rows"].append(r.first)
    out = []
    if "permit_not_covering" in want:
        where = _ledger_rows(uow, [i for u in uncovered.values() for i in u["rows"]], units)
        for (rc, code, meth), u in uncovered.items():
            has = bool(permits.get(rc))
            out.append(_anomaly(
                "permit_not_covering", units=[rc, *sorted(s for s in u["senders"] if s)], mass_kg=u["kg"],
                waste_code=code, manifests=u["manifests"], manifest_count=u["n"],
                ledger_rows=[where[i] for i in u["rows"] if i in where],
                message=(f"{rc} 的许可证不含 {code}" + (f" / {meth}" if meth else "") if has
                         else f"{rc} 没有有效的经营许可证") + f"，接收 {kg_to_t_float(u['kg'])} t",
                detail={"method": meth, "has_permit": has}))
    if "over_capacity" in want:
        for rc, ps in permits.items():
            cap = sum(p.capacity_kg for p in ps)
            got = max(taken.get(rc, 0), taken_ledger.get(rc, 0))
            if cap > 0 and got > cap:
                out.append(_anomaly(
                    "over_capacity", units=[rc], mass_kg=got - cap,
                    message=f"{rc} {year} 年接收危险废物 {kg_to_t_float(got)} t，超过许可年经营规模 {kg_to_t_float(cap)} t",
                    detail={"received_kg": got, "capacity_kg": cap, "permits": [p.number for p in ps]}))
    return out


# --- three-way reconciliation -------------------------------------------------------------------------------
def _reconciliation(uow: UnitOfWork, year: int, units: _Units, as_of: datetime) -> list[dict[str, Any]]:
    """One pass: the three sides as one UNION ALL keyed by (number, code), one GROUP BY with per-side sums.

    Equivalent to a FULL OUTER JOIN of the three per-side aggregates (a side is present when its group has
    one of its rows), but the database groups 3 M narrow rows once instead of aggregating each side and
    joining twice on COALESCEd keys. A number is one current manifest, so its status and times enter the
    GROUP BY as 0/1 flags and its ends are fetched afterwards for the listed rows only."""
    ratio, min_kg = uow.rules.discrepancy
    p, q = M.ratio_fraction(ratio)
    # the month after the one in which a side should have been written must be over (ledger-workbook.md)
    a = as_of.astimezone(CST)
    first_prev = (date(a.year, a.month, 1) - timedelta(days=1)).replace(day=1)
    cutoff = datetime(first_prev.year, first_prev.month, 1, tzinfo=CST)
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    nothing = null()
    T = TransferEntryRow  # noqa: N806
    is_out, is_in = col(T.direction) == "out", col(T.direction) == "in"
    flags = ("f_shipped", "f_arrived", "f_in_year", "f_shipped_before", "f_received_before", "f_transfer")
    # a load a rejection sends back to its own shipper is no 转出 of the shipper's (flow model: it returns to the
    # shipper's node), so its ledger side is not missing
    Sh = aliased(UnitRow)  # noqa: N806
    transfer = or_(col(ManifestRow.parent_number).is_(None), col(ManifestRow.receiver_code) != col(Sh.credit_code))

    def flag(cond: Any) -> Any:
        return case((cond, 1), else_=0)

    pg = uow.session.get_bind().dialect.name == "postgresql"
    # a follow-on of a refusal (the return) leaves from the refusing receiver's gate: no shipper 转出 is expected
    # for it (the shipper's 转出 cites the original), so it never counts as "out_missing" (issue 16)
    shipped_before = and_(col(ManifestRow.shipped_at) < cutoff, col(ManifestRow.parent_number).is_(None))

    def statement(kg_mode: str) -> Any:
        if pg:
            # PostgreSQL: SUM(bigint) keeps a palloc'd 128-bit state per group, which dominates grouping ~1 M groups
            # (B3: 712 MB of hash table). SUM(int4) keeps a plain int8 state: kilograms are summed as int4 ("int4",
            # the cast fails on a row of 2^31 kg or more) or exactly as int4 high and low 30-bit halves ("split":
            # sum(hi) * 2^30 + sum(lo)). The five 0/1 flags travel as one bit mask whose BIT_AND is the per-flag MIN.
            def kg_parts(col: Any, when: Any | None = None) -> list[Any]:
                if kg_mode == "int4":
                    parts = [cast(col, Integer)]
                else:
                    parts = [cast(col.op(">>")(literal_column("30")), Integer), cast(col.op("&")(_LO_MASK), Integer)]
                return parts if when is None else [case((when, x)) for x in parts]

            def kg_sum(*parts: Any) -> Any:
                return func.sum(parts[0]) if len(parts) == 1 else func.sum(parts[0]) * (_LO_MASK + 1) + func.sum(parts[1])

            bits = (flag(col(ManifestRow.status) != "submitted")
                    + 2 * flag(col(ManifestRow.status).in_(["received", "partially_received"]))
                    + 4 * flag(and_(col(ManifestRow.planned_date) >= y0, col(ManifestRow.planned_date) <= y1))
                    + 8 * flag(shipped_before) + 16 * flag(col(ManifestRow.received_at) < cutoff)
                    + 32 * flag(transfer))
            manifest_flags: list[Any] = [bits]
            flag_cols: tuple[str, ...] = ("fbits",)
        else:
            def kg_parts(col: Any, when: Any | None = None) -> list[Any]:
                return [col if when is None else case((when, col))]

            def kg_sum(*parts: Any) -> Any:
                return func.sum(parts[0])

            manifest_flags = [flag(col(ManifestRow.status) != "submitted"),
                              flag(col(ManifestRow.status).in_(["received", "partially_received"])),
                              flag(and_(col(ManifestRow.planned_date) >= y0, col(ManifestRow.planned_date) <= y1)),
                              flag(shipped_before), flag(col(ManifestRow.received_at) < cutoff),
                              flag(transfer)]
            flag_cols = flags
        nk = 2 if kg_mode == "split" else 1  # columns per kilogram sum
        kg_names = {side: [f"{side}_{i}" for i in range(nk)] for side in ("out_kg", "in_kg", "shipped", "received")}
        ledger_side = (
            select(col(T.manifest_no).label("no"), col(T.code).label("code"),
                   *(c.label(n) for c, n in zip(kg_parts(col(T.qty_kg), is_out), kg_names["out_kg"], strict=True)),
                   case((is_out, col(T.id))).label("out_row"),
                   *(c.label(n) for c, n in zip(kg_parts(col(T.qty_kg), is_in), kg_names["in_kg"], strict=True)),
                   case((is_in, col(T.id))).label("in_row"),
                   *(nothing.label(c) for c in (*kg_names["shipped"], *kg_names["received"], "mid", *flag_cols)))
            .join(LedgerRow, col(LedgerRow.id) == col(T.ledger_id))
            .where(col(LedgerRow.is_current).is_(True), col(LedgerRow.year).in_([year, year + 1]),
                   col(T.direction).in_(["out", "in"]), func.length(col(T.manifest_no)) == 14))
        lo, hi = f"{year - 1}0000000000", f"{year + 1}9999999999"
        manifest_side = (
            select(col(ManifestRow.number), col(ManifestLineRow.waste_code), *([nothing] * (2 * nk + 2)),
                   *kg_parts(col(ManifestLineRow.quantity_kg)), *kg_parts(func.coalesce(col(ManifestLineRow.received_kg), 0)),
                   col(ManifestRow.id), *manifest_flags)
            .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
            .join(Sh, col(Sh.id) == col(ManifestRow.shipper_id))
            .where(col(ManifestRow.is_current).is_(True), col(ManifestRow.number) >= lo, col(ManifestRow.number) <= hi))
        u = union_all(ledger_side, manifest_side).subquery()
        if pg:
            fcols = [func.bit_and(u.c.fbits).op(">>")(i).op("&")(1).label(c) for i, c in enumerate(flags)]
        else:
            fcols = [func.min(u.c[c]).label(c) for c in flags]

        def ksum(side: str) -> Any:
            return kg_sum(*(u.c[n] for n in kg_names[side])).label(side)

        g = (select(u.c.no, u.c.code, ksum("out_kg"), func.min(u.c.out_row).label("out_row"),
                    ksum("in_kg"), func.min(u.c.in_row).label("in_row"),
                    ksum("shipped"), ksum("received"), func.min(u.c.mid).label("mid"), *fcols)
             .group_by(u.c.no, u.c.code).subquery())

        def differs(a: Any, b: Any) -> Any:
            d = func.abs(a - b)
            return and_(d > min_kg, d * q > b * p)

        has_m, has_o, has_i = g.c.mid.is_not(None), g.c.out_row.is_not(None), g.c.in_row.is_not(None)
        shipped, arrived, in_year = g.c.f_shipped == 1, g.c.f_arrived == 1, g.c.f_in_year == 1
        reason = case(
            (and_(~has_m, or_(has_o, has_i)), literal("unknown_number")),
            (and_(has_m, has_o, shipped, differs(g.c.out_kg, g.c.shipped)), literal("out_vs_manifest")),
            (and_(has_m, has_i, arrived, differs(g.c.in_kg, g.c.received)), literal("in_vs_manifest")),
            (and_(has_m, ~has_o, in_year, shipped, g.c.f_shipped_before == 1, g.c.f_transfer == 1),
             literal("out_missing")),
            (and_(has_m, ~has_i, in_year, arrived, g.c.received > 0, g.c.f_received_before == 1), literal("in_missing")),
            else_=literal(None))
        stmt = select(g, reason.label("reason")).subquery()
        return select(stmt).where(stmt.c.reason.is_not(None))

    if not pg:
        rows = list(uow.session.execute(statement("plain")))
    else:
        try:  # a row of 2^31 kg or more fails the int4 cast: then the exact, slower split sums
            with uow.session.begin_nested():
                rows = list(uow.session.execute(statement("int4")))
        except DBAPIError as e:
            if getattr(e.orig, "sqlstate", None) != "22003":  # numeric_value_out_of_range
                raise
            rows = list(uow.session.execute(statement("split")))
    # each side's unit (the smallest unit id among its rows, as the grouping would give), for the listed rows only:
    # kept out of the million-group aggregate
    sides_unit: dict[tuple[str | None, str, str], int] = {}
    for where in _id_filters(uow, col(T.manifest_no), [r.no for r in rows if r.out_row is not None or r.in_row is not None],
                             String):
        for no, code, direction, uid in uow.session.execute(
                select(col(T.manifest_no), col(T.code), col(T.direction), func.min(col(LedgerRow.unit_id)))
                .join(LedgerRow, col(LedgerRow.id) == col(T.ledger_id))
                .where(where, col(LedgerRow.is_current).is_(True), col(LedgerRow.year).in_([year, year + 1]),
                       col(T.direction).in_(["out", "in"]), func.length(col(T.manifest_no)) == 14)
                .group_by(col(T.manifest_no), col(T.code), col(T.direction))):
            sides_unit[(no, code, direction)] = uid
    ends: dict[int | None, tuple[int, str]] = {}  # manifest id -> (shipper id, receiver), for the listed rows only
    mids = sorted({r.mid for r in rows if r.mid is not None})
    for where in _id_filters(uow, col(ManifestRow.id), mids):
        for mid, shipper_id, rc in uow.session.execute(select(col(ManifestRow.id), col(ManifestRow.shipper_id), col(ManifestRow.receiver_code))
                                                       .where(where)):
            ends[mid] = (shipper_id, rc)
    where = _ledger_rows(uow, [x for r in rows for x in (r.out_row, r.in_row) if x is not None], units)
    out = []
    zh = {"unknown_number": "台账引用了不存在的联单编号", "out_vs_manifest": "移出方转出量与联单转移量不符",
          "in_vs_manifest": "接受方转入量与联单接收量不符", "out_missing": "联单已运输，移出方台账次月结束后仍无转出记录",
          "in_missing": "联单已接收，接受方台账次月结束后仍无转入记录"}
    for r in rows:
        if r.reason == "unknown_number":
            # a row citing an unknown number is an event of its ledger's month: listed in that year, never another
            lr = where.get(r.out_row or r.in_row) or {}
            if not str(lr.get("month", "")).startswith(str(year)):
                continue
        # integers on every backend (PostgreSQL's SUM of bigint is numeric)
        sides = {k: (int(v) if v is not None else None) for k, v in (
            ("out", r.out_kg), ("manifest_shipped", r.shipped), ("manifest_received", r.received), ("in", r.in_kg))}
        present = [v for v in sides.values() if v is not None]
        mass = {"unknown_number": max(present or [0]), "out_vs_manifest": abs((r.out_kg or 0) - (r.shipped or 0)),
                "in_vs_manifest": abs((r.in_kg or 0) - (r.received or 0)), "out_missing": r.shipped or 0,
                "in_missing": r.received or 0}[r.reason]
        sid, receiver = ends.get(r.mid, (None, None))
        us = [units.by_id.get(sid) if sid is not None else None, receiver, units.by_id.get(sides_unit.get((r.no, r.code, "out"))),
              units.by_id.get(sides_unit.get((r.no, r.code, "in")))]
        out.append(_anomaly(
            "reconciliation", units=[u for u in us if u], mass_kg=mass, waste_code=r.code,
            manifests=[r.no] if r.shipped is not None else [],
            ledger_rows=[where[x] for x in (r.out_row, r.in_row) if x in where],
            message=f"联单 {r.no} {r.code}：{zh[r.reason]}",
            detail={"reason": r.reason, "sides_kg": sides, "number_cited": r.no}))
    return out


# --- the list ---------------------------------------------------------------------------------------------
# Kinds computed together (the permit kinds share one pass over the year's manifests and 转出 rows).
_GROUPS: tuple[tuple[str, ...], ...] = (
    ("receipt_overdue",), ("discrepancy",), ("storage_over_year",), ("missing_manifest_number",),
    ("permit_not_covering", "over_capacity"), ("reconciliation",), ("unresolved_mass",), ("missing_ledger",))
# (database, year, kinds, day judged, rule settings) -> (stamp, the city-wide findings of those kinds)
_CACHE: dict[tuple[Any, ...], tuple[tuple[Any, ...] | None, list[dict[str, Any]]]] = {}
_CACHE_MAX = 64
_RECON: tuple[str, ...] = ("reconciliation",)
# PostgreSQL, for this read only: JIT compiling cost 0.1-0.3 s per large aggregate here and never paid back, and
# parallel workers gathering ~2 M partial groups made the reconciliation slower (B3, EXPLAIN ANALYZE)
_PG_LOCAL = {"jit": "off", "max_parallel_workers_per_gather": "0"}


@contextmanager
def _pg_local(uow: UnitOfWork, settings: dict[str, str]) -> Iterator[None]:
    """Planner settings local to the transaction on PostgreSQL, put back afterwards (no-op elsewhere).

    After an error the transaction is rolled back, which undoes them anyway."""
    s = uow.session
    if s.get_bind().dialect.name != "postgresql":
        yield
        return
    old = {k: s.execute(select(func.current_setting(k))).scalar() for k in settings}
    for k, v in settings.items():
        s.execute(select(func.set_config(k, v, True)))
    yield
    for k, prev in old.items():
        s.execute(select(func.set_config(k, prev, True)))


def _side_engine(uow: UnitOfWork) -> Engine | None:
    """The engine for a second, concurrent read-only connection: PostgreSQL on a pooled engine only."""
    bind = uow.session.get_bind()
    return bind if isinstance(bind, Engine) and bind.dialect.name == "postgresql" else None



def _stamp(uow: UnitOfWork) -> tuple[Any, ...]:
    """What a finding can depend on. Every write appends an audit entry (unit and permit changes included) and
    the newest entry's digest chains the whole history, so it also tells two databases at one URL apart (the
    test suite recreates its schema); the newest manifest event, ledger, unit and permit ids are checked too,
    since bulk loads (demo --fast, benchmarks) write those without an audit entry. Index look-ups only."""
    s = uow.session
    # casework (``case.*`` entries) changes no finding: it must not throw the findings away
    head = s.execute(select(col(AuditRow.digest)).where(~col(AuditRow.action).startswith("case."))
                     .order_by(col(AuditRow.seq).desc()).limit(1)).scalar()
    return (head, *(s.execute(select(func.max(c))).scalar() for c in (
        col(ManifestEventRow.id), col(LedgerRow.id), col(UnitRow.id), col(PermitRow.id))))


def findings_stamp(uow: UnitOfWork) -> str:
    """What the findings depend on, as text: equal stamps mean the same findings (for the case sync)."""
    return repr(_stamp(uow))


def _compute(uow: UnitOfWork, group: tuple[str, ...], year: int, units: _Units, as_of: datetime,
             scope: set[str] | None, want: set[str] | None) -> list[dict[str, Any]]:
    """One group of kinds for the whole year (``scope`` only narrows the work, never the findings in it)."""
    kind = group[0]
    if kind == "receipt_overdue":
        return _receipt_overdue(uow, year, units, as_of)
    if kind == "discrepancy":
        return _discrepancies(uow, year, units)
    if kind == "storage_over_year":
        return _storage_over_year(uow, year, units, scope)
    if kind == "missing_manifest_number":
        return _missing_numbers(uow, year, units)
    if kind == "permit_not_covering":
        return _permit_kinds(uow, year, units, set(group) if want is None else want & set(group))
    if kind == "reconciliation":
        return _reconciliation(uow, year, units, as_of)
    if kind == "missing_ledger":
        return _missing_ledgers(uow, year, as_of)
    return _unresolved(uow, year, units)


def list_anomalies(*, uow: UnitOfWork, actor: Actor, year: int, region: str | None = None, kind: str | None = None,
                   as_of: datetime | None = None, cache: bool = True) -> list[dict[str, Any]]:
    """Every anomaly of ``year`` touching a unit in ``region`` (default: the caller's whole view).

    Regulators see anomalies with a unit in their district; enterprises those of their own units; admins all.
    ``as_of`` (default now) is the day against which "overdue" and "after the following month" are judged.
    Plain dicts, so the annual report can embed them without importing ``ledgers``. The whole year's findings
    of each kind are cached in the process (see ``_stamp``); ``cache=False`` computes them afresh."""
    problems = []
    if kind is not None and kind not in KINDS:
        problems.append(Problem("unknown_kind", f"未知的异常类型 {kind}", f"unknown kind {kind}", field="kind", value=kind))
    if region is not None and not uow.catalogue.is_region(region):
        problems.append(Problem("unknown_region", "未知的区域代码", "unknown region", field="region", value=region))
    if not 1990 <= year <= 2100:
        problems.append(Problem("bad_year", "年份超出范围", "year out of range", field="year", value=year))
    if problems:
        raise InputRejected("查询参数有误 (invalid query)", problems=problems)
    if actor.role == "regulator" and region and not actor.can_view_region(region, None):
        district = uow.catalogue.parks[region].district if region in uow.catalogue.parks else None
        if not actor.can_view_region(region, district):
            raise PermissionDenied("无权查看该区域 (region outside your district)")
    as_of = as_of or datetime.now(UTC)
    units = _Units(uow)
    scope: set[str] | None = None
    if actor.role == "enterprise":
        scope = set(actor.units)
    elif actor.role == "regulator" and actor.district != CITY:
        scope = {cc for cc in units.region if units.in_region(cc, actor.district or "")}
    if region and region != CITY:
        inr = {cc for cc in units.region if units.in_region(cc, region)}
        scope = inr if scope is None else scope & inr
    want = set(KINDS) if kind is None else {kind}
    stamp = _stamp(uow) if cache else None
    groups = [g for g in _GROUPS if want & set(g)]
    results: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    keys = {g: (str(uow.session.get_bind().engine.url), year, g, local_date(as_of), uow.rules)
            for g in groups}
    for group in groups:
        hit = _CACHE.get(keys[group]) if cache else None
        if hit is not None and hit[0] == stamp:
            results[group] = hit[1]
    todo = [g for g in groups if g not in results]

    def compute(u: UnitOfWork, group: tuple[str, ...]) -> list[dict[str, Any]]:
        return _compute(u, group, year, units, as_of, None if cache else scope, want if not cache else None)

    with _pg_local(uow, _PG_LOCAL):
        side = _side_engine(uow) if len(todo) > 1 and _RECON in todo else None
        if side is None:
            for group in todo:
                results[group] = compute(uow, group)
        else:
            # the reconciliation is the one heavy query: on PostgreSQL it runs on a second connection while this
            # one computes the other kinds (each statement of a READ COMMITTED transaction sees its own snapshot
            # anyway, so a second read-only transaction is no weaker), using the second core of the database
            def recon() -> list[dict[str, Any]]:
                with UnitOfWork(sessionmaker(bind=side), catalogue=uow.catalogue, rules=uow.rules,
                                load_catalogue=False) as u2, _pg_local(u2, _PG_LOCAL):
                    return compute(u2, _RECON)

            with ThreadPoolExecutor(max_workers=1) as pool:
                job = pool.submit(recon)
                for group in todo:
                    if group != _RECON:
                        results[group] = compute(uow, group)
                results[_RECON] = job.result()
    if cache:
        for group in todo:
            _CACHE.pop(keys[group], None)
            while len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[keys[group]] = (stamp, results[group])
    # copies: callers (the report, the API) may annotate what they get without touching the cache
    found = [dict(a) for group in groups for a in results[group] if a["kind"] in want]
    if scope is not None:
        found = [a for a in found if any(u in scope for u in a["units"])]
    found.sort(key=lambda a: (KINDS.index(a["kind"]), -a["mass_kg"]))
    return found


def summary(anomalies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Count and mass per kind (for the report and the API header)."""
    out: dict[str, dict[str, Any]] = {k: {"count": 0, "mass_kg": 0} for k in KINDS}
    for a in anomalies:
        out[a["kind"]]["count"] += 1
        out[a["kind"]]["mass_kg"] += a["mass_kg"]
    for v in out.values():
        v["mass_t"] = kg_to_t_float(v["mass_kg"])
    return out

