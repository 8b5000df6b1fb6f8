"""The case repository (案件): rows of ``case_file`` and their thread in ``case_event``, and the sync stamp."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.storage.engine import in_chunks, is_postgres
from nofei.storage.tables import (
    CaseEventRow,
    CaseRow,
    CaseSyncRow,
    LedgerRow,
    ManifestEventRow,
    ManifestRow,
    UnitRow,
)
from nofei.storage.uow import UnitOfWork

T = TypeVar("T")


def by_keys(session: Session, keys: Iterable[str]) -> dict[str, CaseRow]:
    out: dict[str, CaseRow] = {}
    for chunk in in_chunks(sorted(set(keys))):
        for row in session.execute(select(CaseRow).where(col(CaseRow.key).in_(chunk))).scalars():
            out[row.key] = row
    return out


def of_year(session: Session, year: int, *, kind: str | None = None, assignee: str | None = None) -> list[CaseRow]:
    """A year's cases, narrowed in SQL by kind and assignee (the rest is filtered by the caller)."""
    stmt = select(CaseRow).where(col(CaseRow.year) == year)
    if kind:
        stmt = stmt.where(col(CaseRow.kind) == kind)
    if assignee:
        stmt = stmt.where(col(CaseRow.assignee) == assignee)
    return list(session.execute(stmt.order_by(col(CaseRow.id))).scalars())


def open_case(session: Session, *, key: str, kind: str, year: int, units: list[str], districts: list[str],
              title: str, message: str, mass_kg: int, anomaly: dict[str, Any], facts: str, now: datetime) -> CaseRow:
    """A new open case for an anomaly that holds (flushed, so it has its id)."""
    row = CaseRow(key=key, kind=kind, year=year, units=units, status="open", districts=districts, title=title,
                  message=message, mass_kg=mass_kg, anomaly=anomaly, facts=facts, holds=True, opened_at=now,
                  updated_at=now)
    session.add(row)
    session.flush()
    return row


def first_writer_wins(uow: UnitOfWork, work: Callable[[], T]) -> T | None:
    """``work`` then commit; None (and rolled back) when a concurrent writer inserted the same case first."""
    try:
        out = work()
        uow.commit()
    except IntegrityError:
        uow.rollback()
        return None
    return out


def not_closed(session: Session, year: int | None = None) -> list[CaseRow]:
    """Every case not yet closed (of ``year``, or of every year), oldest first."""
    stmt = select(CaseRow).where(col(CaseRow.status) != "closed")
    if year is not None:
        stmt = stmt.where(col(CaseRow.year) == year)
    return list(session.execute(stmt.order_by(col(CaseRow.id))).scalars())


def get(session: Session, case_id: int, *, lock: bool = False) -> CaseRow | None:
    if not 0 < case_id < 2**63:  # beyond any BIGINT/INTEGER id: no such case, not a database error
        return None
    stmt = select(CaseRow).where(col(CaseRow.id) == case_id)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalars().first()


def events(session: Session, case_id: int) -> list[CaseEventRow]:
    return list(session.execute(select(CaseEventRow).where(col(CaseEventRow.case_id) == case_id)
                                .order_by(col(CaseEventRow.id))).scalars())


def add_event(session: Session, case: CaseRow, *, time: datetime, actor: str, role: str, action: str,
              from_status: str | None, text: str = "", link: str | None = None,
              detail: dict[str, Any] | None = None) -> CaseEventRow:
    ev = CaseEventRow(case_id=int(case.id or 0), time=time, actor=actor, role=role, action=action,
                      from_status=from_status, to_status=case.status, text=text, link=link, detail=detail or {})
    session.add(ev)
    return ev


def districts_of(session: Session, codes: Iterable[str]) -> dict[str, tuple[str, str | None, str]]:
    """credit code → (district, park, name) for the registered ones."""
    out: dict[str, tuple[str, str | None, str]] = {}
    for chunk in in_chunks(sorted({c for c in codes if c})):
        for cc, d, p, n in session.execute(select(col(UnitRow.credit_code), col(UnitRow.district), col(UnitRow.park), col(UnitRow.name))
                                           .where(col(UnitRow.credit_code).in_(chunk))):
            out[cc] = (d, p, n)
    return out


def synced_stamp(session: Session, year: int, day: date) -> str | None:
    row = session.get(CaseSyncRow, (year, day))
    return row.stamp if row is not None else None


def put_stamp(session: Session, year: int, day: date, stamp: str, now: datetime) -> None:
    row = session.get(CaseSyncRow, (year, day))
    if row is None:
        session.add(CaseSyncRow(year=year, day=day, stamp=stamp, synced_at=now))
    else:
        row.stamp, row.synced_at = stamp, now
        session.add(row)


def lock_year(session: Session, year: int) -> None:
    """Serialise syncs of one year (PostgreSQL advisory lock; SQLite's ``BEGIN IMMEDIATE`` already does)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _SYNC_LOCK, "b": year})


_SYNC_LOCK = 0x6E6F6665  # 'nofe': the key space of the case sync


def latest_change(session: Session, units: list[str], manifests: list[str], since: datetime) -> str:
    """What changed since ``since`` that a self-resolved case can name: the newest ledger version of one of its
    units, or the newest step of one of its manifests (empty when neither)."""
    best: tuple[datetime, str] | None = None
    ids = {cc: uid for cc, uid in session.execute(select(col(UnitRow.credit_code), col(UnitRow.id))
                                                  .where(col(UnitRow.credit_code).in_(sorted(set(units)))))}
    if ids:
        r = session.execute(select(col(LedgerRow.id), col(LedgerRow.unit_id), col(LedgerRow.month), col(LedgerRow.version),
                                   col(LedgerRow.uploaded_at))
                            .where(col(LedgerRow.unit_id).in_(sorted(ids.values())), col(LedgerRow.uploaded_at) >= since)
                            .order_by(col(LedgerRow.uploaded_at).desc()).limit(1)).first()
        if r is not None:
            cc = next(c for c, u in ids.items() if u == r.unit_id)
            best = (r.uploaded_at, f"{cc} 报送了 {r.month} 台账第 {r.version} 版（ledger:{r.id}）")
    if manifests:
        r2 = session.execute(select(col(ManifestRow.number), col(ManifestEventRow.action), col(ManifestEventRow.time))
                             .join(ManifestEventRow, col(ManifestEventRow.manifest_id) == col(ManifestRow.id))
                             .where(col(ManifestRow.number).in_(sorted(set(manifests))), col(ManifestEventRow.time) >= since)
                             .order_by(col(ManifestEventRow.time).desc()).limit(1)).first()
        if r2 is not None and (best is None or _utc(r2.time) > _utc(best[0])):
            best = (r2.time, f"联单 {r2.number} 有新的操作：{_STEP_ZH.get(r2.action, r2.action)}")
    return best[1] if best else ""


_STEP_ZH = {"create": "创建", "submit": "提交", "ship": "发运", "receive": "确认接收", "reject": "拒收",
            "correct": "更正", "return": "退回"}


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def units_filing(session: Session, codes: list[str] | None) -> list[tuple[str, str | None, set[str], str]]:
    """(credit code, reports_from, months with a current ledger, name) of the given units (None: all)."""
    stmt = select(col(UnitRow.id), col(UnitRow.credit_code), col(UnitRow.reports_from), col(UnitRow.name))
    if codes is not None:
        stmt = stmt.where(col(UnitRow.credit_code).in_(codes))
    units = list(session.execute(stmt.order_by(col(UnitRow.credit_code))))
    filed: dict[int, set[str]] = {u.id: set() for u in units}
    if filed:
        for uid, month in session.execute(select(col(LedgerRow.unit_id), col(LedgerRow.month)).where(
                col(LedgerRow.unit_id).in_(sorted(filed)), col(LedgerRow.is_current).is_(True))):
            filed[uid].add(month)
    return [(u.credit_code, u.reports_from, filed[u.id], u.name) for u in units]
