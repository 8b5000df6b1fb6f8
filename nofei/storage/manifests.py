"""The manifest repository: every query on transfer manifests, their row locks and the visibility clause.

The use cases in ``ledgers.manifests`` read and write manifests only through these functions, so changing the
database (an index, a dialect, a schema) touches this module and no use case. Rows are the typed table
classes of ``nofei.storage.tables``; joined reads return small frozen records.

"What this actor may see" has one definition, ``nofei.domain.manifests.may_read`` (``Actor.can_view_unit_at``
applied to the parties of a manifest); ``visible_clause`` is the same rule written in SQL for lists, counts and
exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select
from sqlmodel import col

from nofei.access import Actor
from nofei.storage.engine import in_chunks
from nofei.storage.tables import (
    ManifestDraftRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    ManifestSerialRow,
    PermitRow,
    UnitRow,
)


# --- visibility: the SQL form of the one rule ----------------------------------------------------------
def visible_clause(actor: Actor, s: Any, r: Any, c: Any) -> ColumnElement[bool]:
    """``nofei.domain.manifests.may_read`` as a WHERE clause over a manifest joined to its shipper ``s``, receiver ``r`` and carrier
    ``c`` (aliases of ``unit``; the receiver and carrier joined outer)."""
    if actor.sees_all():
        return true()
    if actor.role == "enterprise":
        us = sorted(actor.units)
        return or_(col(s.credit_code).in_(us), col(ManifestRow.receiver_code).in_(us),
                   col(ManifestRow.carrier_code).in_(us))
    if actor.role == "regulator" and actor.district:
        d = actor.district
        return or_(*(col(u.district) == d for u in (s, r, c)), *(col(u.park) == d for u in (s, r, c)))
    return false()


# --- reading one manifest ---------------------------------------------------------------------------------
def current(session: Session, number: str, *, lock: bool = False) -> ManifestRow | None:
    """The current version of ``number`` (locked for update when a step will change it)."""
    stmt = select(ManifestRow).where(col(ManifestRow.number) == number, col(ManifestRow.is_current).is_(True))
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def lines_of(session: Session, manifest_id: int) -> list[ManifestLineRow]:
    return list(session.execute(select(ManifestLineRow).where(col(ManifestLineRow.manifest_id) == manifest_id)
                                .order_by(col(ManifestLineRow.line_no))).scalars())


def unit_by_id(session: Session, unit_id: int) -> UnitRow:
    u = session.get(UnitRow, unit_id)
    assert u is not None  # a foreign key
    return u


def versions_of(session: Session, number: str) -> list[ManifestRow]:
    return list(session.execute(select(ManifestRow).where(col(ManifestRow.number) == number)
                                .order_by(col(ManifestRow.version))).scalars())


def events_of(session: Session, manifest_ids: Sequence[int]) -> list[ManifestEventRow]:
    """The history entries of these manifest versions, in the order they were recorded."""
    return list(session.execute(select(ManifestEventRow).where(col(ManifestEventRow.manifest_id).in_(list(manifest_ids)))
                                .order_by(col(ManifestEventRow.time), col(ManifestEventRow.id))).scalars())


def follow_on_numbers(session: Session, number: str) -> list[str]:
    return list(session.execute(select(col(ManifestRow.number)).where(
        col(ManifestRow.parent_number) == number, col(ManifestRow.is_current).is_(True))
        .order_by(col(ManifestRow.number))).scalars())


@dataclass(frozen=True, slots=True)
class FollowOnLine:
    """A line of a follow-on manifest (the refused load sent back or on)."""

    number: str
    receiver_code: str
    waste_code: str
    quantity_kg: int


def follow_on_lines(session: Session, number: str) -> list[FollowOnLine]:
    rows = session.execute(
        select(col(ManifestRow.number), col(ManifestRow.receiver_code), col(ManifestLineRow.waste_code),
               col(ManifestLineRow.quantity_kg))
        .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
        .where(col(ManifestRow.parent_number) == number, col(ManifestRow.is_current).is_(True)))
    return [FollowOnLine(str(n), str(rc), str(c), int(kg)) for n, rc, c, kg in rows]


# --- writing ----------------------------------------------------------------------------------------------
def next_serial(session: Session, key: str) -> int:
    """Advance and return the last serial of ``key`` in this transaction.

    ``UPDATE … SET last = last + 1 … RETURNING last`` takes the row lock, so concurrent transactions queue on
    PostgreSQL until the first commits (SQLite serialises writers with BEGIN IMMEDIATE). The row is created
    once, under a savepoint so that a concurrent creator's IntegrityError does not spoil the transaction."""
    stmt = update(ManifestSerialRow).where(col(ManifestSerialRow.key) == key).values(
        last=col(ManifestSerialRow.last) + 1).returning(col(ManifestSerialRow.last))
    got = session.execute(stmt).scalar_one_or_none()
    if got is None:
        try:
            with session.begin_nested():
                session.execute(insert(ManifestSerialRow).values(key=key, last=0))
        except IntegrityError:
            pass
        got = session.execute(stmt).scalar_one()
    return int(got)


def add(session: Session, row: Any, *, flush: bool = False) -> None:
    """Stage a new or changed manifest, line, event or draft row in the transaction (``flush``: now, so that a
    new row has its id)."""
    session.add(row)
    if flush:
        session.flush()


@dataclass(frozen=True, slots=True)
class LineValues:
    """A checked line to write: code, exact kilograms, packaging, planned method, container count."""

    waste_code: str
    quantity_kg: int
    packaging: str | None = None
    planned_method: str | None = None
    container_count: int | None = None


def add_manifest(session: Session, row: ManifestRow, lines: Iterable[LineValues]) -> ManifestRow:
    """Insert a manifest version and its lines (numbered from 1 in the order given)."""
    session.add(row)
    session.flush()
    session.execute(insert(ManifestLineRow), [
        {"manifest_id": row.id, "line_no": i + 1, "waste_code": ln.waste_code, "quantity_kg": ln.quantity_kg,
         "packaging": ln.packaging, "planned_method": ln.planned_method, "container_count": ln.container_count,
         "mismatch": None, "received_kg": None, "method": None, "rejected_kg": None, "discrepancy": False}
        for i, ln in enumerate(lines)])
    return row


def retire(session: Session, row: ManifestRow) -> None:
    """A corrected version stops being current (kept in the history)."""
    row.is_current = False
    session.add(row)
    session.flush()


# --- lists, counts, exports -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ManifestFilter:
    """The filters of a manifest list: status, a party's credit code, a waste code, the planned-date range,
    a region (either end's district or park) and, for an enterprise, which party its units are."""

    status: str | None = None
    unit: str | None = None
    code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    region: str | None = None
    party: str | None = None


def _party_clause(actor: Actor, party: str, s: Any) -> ColumnElement[bool]:
    us = sorted(actor.units)
    if party == "shipper":
        return col(s.credit_code).in_(us)
    if party == "receiver":
        return col(ManifestRow.receiver_code).in_(us)
    return or_(col(ManifestRow.carrier_code).in_(us),
               and_(col(ManifestRow.carrier_code).is_(None), col(s.credit_code).in_(us)))


def _where(f: ManifestFilter, s: Any, r: Any, city: str) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.status:
        out.append(col(ManifestRow.status) == f.status)
    if f.unit:
        out.append(or_(col(s.credit_code) == f.unit, col(ManifestRow.receiver_code) == f.unit,
                       col(ManifestRow.carrier_code) == f.unit))
    if f.code:
        out.append(exists().where(col(ManifestLineRow.manifest_id) == col(ManifestRow.id),
                                  col(ManifestLineRow.waste_code) == f.code))
    if f.date_from:
        out.append(col(ManifestRow.planned_date) >= f.date_from)
    if f.date_to:
        out.append(col(ManifestRow.planned_date) <= f.date_to)
    if f.region and f.region != city:
        out.append(or_(col(s.district) == f.region, col(s.park) == f.region, col(r.district) == f.region,
                       col(r.park) == f.region))
    return out


def _visible(actor: Actor, f: ManifestFilter, city: str) -> Select[Any]:
    """Current manifests ``actor`` may see, filtered by ``f`` (``unit`` already normalised)."""
    s, r, c = aliased(UnitRow), aliased(UnitRow), aliased(UnitRow)
    stmt = (select(ManifestRow).join(s, col(s.id) == col(ManifestRow.shipper_id))
            .outerjoin(r, col(r.credit_code) == col(ManifestRow.receiver_code))
            .outerjoin(c, col(c.credit_code) == col(ManifestRow.carrier_code))
            .where(col(ManifestRow.is_current).is_(True), visible_clause(actor, s, r, c)))
    if f.party and actor.role == "enterprise":  # where the caller's units are that party of the manifest
        stmt = stmt.where(_party_clause(actor, f.party, s))
    return stmt.where(*_where(f, s, r, city))


def search(session: Session, actor: Actor, f: ManifestFilter, *, city: str, page: int, per_page: int
           ) -> tuple[list[ManifestRow], int]:
    """A page of the visible manifests (newest number first) and how many there are."""
    stmt = _visible(actor, f, city)
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    rows = session.execute(stmt.order_by(col(ManifestRow.number).desc()).offset((page - 1) * per_page)
                           .limit(per_page)).scalars()
    return list(rows), total


def status_counts(session: Session, actor: Actor, f: ManifestFilter, *, city: str) -> dict[str, int]:
    sub = _visible(actor, f, city).subquery()
    return {str(s): int(n) for s, n in session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))}


@dataclass(frozen=True, slots=True)
class ExportLine:
    """One manifest line with its manifest and the shipper's code and name (a row of the export)."""

    manifest: ManifestRow
    line: ManifestLineRow
    shipper_code: str
    shipper_name: str


def export_lines(session: Session, actor: Actor, f: ManifestFilter, *, city: str, limit: int) -> list[ExportLine]:
    s = aliased(UnitRow)
    sub = _visible(actor, f, city).with_only_columns(col(ManifestRow.id)).subquery()
    stmt = (select(ManifestRow, ManifestLineRow, col(s.credit_code), col(s.name))
            .join(ManifestLineRow, col(ManifestLineRow.manifest_id) == col(ManifestRow.id))
            .join(s, col(s.id) == col(ManifestRow.shipper_id))
            .where(col(ManifestRow.id).in_(select(sub.c.id)))
            .order_by(col(ManifestRow.number), col(ManifestLineRow.line_no)).limit(limit))
    return [ExportLine(m, ln, sc, sn) for m, ln, sc, sn in session.execute(stmt)]


def last_shipped(session: Session, shipper_id: int, receiver: str | None) -> ManifestRow | None:
    """The newest current manifest (not a follow-on) the unit shipped, to ``receiver`` when given."""
    stmt = select(ManifestRow).where(col(ManifestRow.shipper_id) == shipper_id, col(ManifestRow.is_current).is_(True),
                                     col(ManifestRow.parent_number).is_(None))
    if receiver:
        stmt = stmt.where(col(ManifestRow.receiver_code) == receiver)
    return session.execute(stmt.order_by(col(ManifestRow.created_at).desc(), col(ManifestRow.id).desc()).limit(1)
                           ).scalar_one_or_none()


# --- drafts, receivers, carriers --------------------------------------------------------------------------
def draft(session: Session, draft_id: int) -> ManifestDraftRow | None:
    return session.get(ManifestDraftRow, draft_id)


def delete(session: Session, row: Any) -> None:
    session.delete(row)


def drafts_of(session: Session, units: Iterable[str] | None) -> list[tuple[ManifestDraftRow, str]]:
    """Drafts with their shipper's credit code, newest first; of ``units`` only (None: all)."""
    stmt = select(ManifestDraftRow, col(UnitRow.credit_code)).join(UnitRow, col(UnitRow.id) == col(ManifestDraftRow.shipper_id))
    if units is not None:
        stmt = stmt.where(col(UnitRow.credit_code).in_(sorted(units)))
    return [(d, str(cc)) for d, cc in session.execute(stmt.order_by(col(ManifestDraftRow.updated_at).desc()))]


def units_with_permits(session: Session, q: str | None) -> list[tuple[UnitRow, PermitRow]]:
    """Every (unit, permit) pair, by unit name; ``q`` matches the name or (upper-cased) the credit code."""
    stmt = select(UnitRow, PermitRow).join(PermitRow, col(PermitRow.unit_id) == col(UnitRow.id))
    if q:
        stmt = stmt.where(col(UnitRow.name).contains(q.strip()) | col(UnitRow.credit_code).contains(q.strip().upper()))
    return [(u, p) for u, p in session.execute(stmt.order_by(col(UnitRow.name)))]


def units_by_name(session: Session) -> list[UnitRow]:
    return list(session.execute(select(UnitRow).order_by(col(UnitRow.name))).scalars())


def unit_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """credit code -> name of the registered units among ``codes``."""
    out: dict[str, str] = {}
    for chunk in in_chunks(sorted(set(codes))):
        out.update({str(cc): str(n) for cc, n in session.execute(
            select(col(UnitRow.credit_code), col(UnitRow.name)).where(col(UnitRow.credit_code).in_(list(chunk))))})
    return out
