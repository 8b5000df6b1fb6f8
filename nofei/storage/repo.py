"""The registry's repository: units, permits, loaded catalogue codes, statistics and tokens.

Use cases in ``ledgers`` call these instead of building statements; rows come back as the table models or
as ``nofei.domain`` values. Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.access import Actor, ActorRole
from nofei.catalogue import Catalogue, Stream, WasteCode
from nofei.domain.units import Permit, Role, Unit
from nofei.errors import NotFound
from nofei.storage.engine import in_chunks
from nofei.storage.tables import (
    CatalogueCodeRow,
    CatalogueEditionCodeRow,
    PermitRow,
    StatisticRow,
    TokenRow,
    UnitRow,
)

TOKEN_PREFIX = "nf_"  # noqa: S105 - a visible prefix, not a secret


def utcnow() -> datetime:
    return datetime.now(UTC)


def find_unit_row(session: Session, credit_code: str) -> UnitRow | None:
    """The registered unit with this credit code, or None."""
    return session.execute(select(UnitRow).where(col(UnitRow.credit_code) == credit_code)).scalar_one_or_none()


def unit_row(session: Session, credit_code: str) -> UnitRow:
    row = find_unit_row(session, credit_code)
    if row is None:
        raise NotFound(f"单位 {credit_code} 未注册 (unit not registered)", code="unknown_unit")
    return row


def unit_rows_by_code(session: Session, codes: Iterable[str]) -> dict[str, UnitRow]:
    """The registered units among ``codes`` (credit codes as stored), by credit code."""
    out: dict[str, UnitRow] = {}
    for chunk in in_chunks(list(set(codes))):
        for r in session.execute(select(UnitRow).where(col(UnitRow.credit_code).in_(chunk))).scalars():
            out[r.credit_code] = r
    return out


def unit_exists(session: Session, credit_code: str) -> bool:
    return session.execute(select(col(UnitRow.id)).where(col(UnitRow.credit_code) == credit_code)).first() is not None


def unit_ids_of(session: Session, codes: Iterable[str]) -> list[int]:
    """Ids of the registered units among ``codes``."""
    return [int(r.id or 0) for r in unit_rows_by_code(session, codes).values()]


def find_units(session: Session, *, codes: Iterable[str] | None = None, district: str | None = None,
               region: str | None = None, text: str | None = None) -> list[UnitRow]:
    """Registered units by credit code, narrowed to ``codes``, to a ``district`` (its own units), to a
    ``region`` (a district's or a park's units) and to those whose name or credit code contains ``text``."""
    stmt = select(UnitRow)
    if codes is not None:
        stmt = stmt.where(col(UnitRow.credit_code).in_(sorted(set(codes))))
    if district:
        stmt = stmt.where(col(UnitRow.district) == district)
    if region:
        stmt = stmt.where((col(UnitRow.district) == region) | (col(UnitRow.park) == region))
    if text:
        stmt = stmt.where(col(UnitRow.name).contains(text) | col(UnitRow.credit_code).contains(text.upper()))
    return list(session.execute(stmt.order_by(col(UnitRow.credit_code))).scalars())


def add_unit(session: Session, row: UnitRow) -> UnitRow:
    """Store a new unit (its id is set on return)."""
    session.add(row)
    session.flush()
    return row


def move_reports_from_back(session: Session, unit_id: int, month: str) -> None:
    """An accepted ledger earlier than the unit's ``reports_from`` moves it back to that month (issue 13 §4)."""
    session.execute(update(UnitRow).where(col(UnitRow.id) == unit_id, or_(col(UnitRow.reports_from).is_(None),
                                                                      col(UnitRow.reports_from) > month))
                    .values(reports_from=month))


def permits_of(session: Session, unit_id: int) -> list[PermitRow]:
    return list(session.execute(select(PermitRow).where(col(PermitRow.unit_id) == unit_id)
                                .order_by(col(PermitRow.id))).scalars())


def to_permit(p: PermitRow) -> Permit:
    return Permit(p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, p.valid_from, p.valid_to)


def permits_by_unit(session: Session, unit_ids: Iterable[int]) -> dict[int, list[Permit]]:
    """Every permit of these units as domain values, in entry order (one query per 900 ids)."""
    out: dict[int, list[Permit]] = {}
    for chunk in in_chunks(sorted(set(unit_ids))):
        for p in session.execute(select(PermitRow).where(col(PermitRow.unit_id).in_(chunk))
                                 .order_by(col(PermitRow.id))).scalars():
            out.setdefault(p.unit_id, []).append(to_permit(p))
    return out


def replace_permits(session: Session, unit_id: int, permits: Iterable[Permit]) -> None:
    """The unit's permits become ``permits`` (the earlier ones are deleted)."""
    session.execute(delete(PermitRow).where(col(PermitRow.unit_id) == unit_id))
    for p in permits:
        session.add(PermitRow(unit_id=unit_id, number=p.number, waste_codes=list(p.waste_codes),
                              methods=list(p.methods), capacity_kg=p.capacity_kg, valid_from=p.valid_from,
                              valid_to=p.valid_to))


def to_domain_unit(row: UnitRow, permits: Iterable[PermitRow | Permit]) -> Unit:
    return Unit(
        credit_code=row.credit_code,
        name=row.name,
        district=row.district,
        park=row.park,
        roles=cast(tuple[Role, ...], tuple(row.roles)),  # a JSON column: checked when written
        permits=tuple(p if isinstance(p, Permit) else to_permit(p) for p in permits),
    )


def catalogue_with_loaded(session: Session, base: Catalogue) -> Catalogue:
    """The package catalogue plus what an admin loaded (``nofei catalogue load``): whole later editions of the
    名录 first, then the codes loaded without an edition (valid in every edition)."""
    eds: dict[int, list[WasteCode]] = {}
    for e in session.execute(select(CatalogueEditionCodeRow)).scalars():
        eds.setdefault(e.edition, []).append(
            WasteCode(e.code, e.name_zh, cast(Stream, e.stream), e.category, "loaded", e.hazard or "", e.edition))
    rows = list(session.execute(select(CatalogueCodeRow)).scalars())
    if not rows and not eds:
        return base
    cat = base
    for ed in sorted(eds):
        cat = cat.with_edition(ed, eds[ed])
    if rows:
        cat = cat.with_codes(WasteCode(r.code, r.name_zh, cast(Stream, r.stream), r.category, "loaded") for r in rows)
    return cat


def replace_catalogue_edition(session: Session, edition: int, codes: Iterable[WasteCode], at: datetime) -> None:
    """The loaded codes of a whole edition of the 名录 become ``codes``."""
    session.execute(delete(CatalogueEditionCodeRow).where(col(CatalogueEditionCodeRow.edition) == edition))
    for wc in codes:
        session.add(CatalogueEditionCodeRow(edition=edition, code=wc.code, category=wc.category, name_zh=wc.name_zh,
                                            hazard=wc.hazard, stream=wc.stream, loaded_at=at))


def put_catalogue_code(session: Session, wc: WasteCode, at: datetime) -> None:
    """Add or replace one loaded code valid in every edition."""
    row = session.get(CatalogueCodeRow, wc.code) or CatalogueCodeRow(code=wc.code, stream=wc.stream, loaded_at=at)
    row.name_zh, row.category, row.stream, row.loaded_at = wc.name_zh, wc.category, wc.stream, at
    session.add(row)


def statistic_row(session: Session, year: int, region: str) -> StatisticRow:
    """The statistics of (year, region), a new empty row (added to the session) when none was entered."""
    row = session.get(StatisticRow, (year, region))
    if row is None:
        row = StatisticRow(year=year, region=region, industrial_value_added="", updated_at=utcnow())
        session.add(row)
    return row


# --- tokens ----------------------------------------------------------------------------
def add_token(session: Session, row: TokenRow) -> TokenRow:
    """Store a new token row (its id is set on return)."""
    session.add(row)
    session.flush()
    return row


def token_rows(session: Session) -> list[TokenRow]:
    """Every token, oldest first."""
    return list(session.execute(select(TokenRow).order_by(col(TokenRow.id))).scalars())


def token_row(session: Session, token_id: int) -> TokenRow | None:
    return session.get(TokenRow, token_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def actor_for_token(session: Session, token: str) -> Actor | None:
    """Resolve a bearer token to an Actor, or None when unknown or revoked.

    Lookup is by the SHA-256 of the token (an index, so no timing signal about stored values),
    then the digests are compared in constant time."""
    if not token or len(token) > 200:
        return None
    h = hash_token(token)
    row = session.execute(select(TokenRow).where(col(TokenRow.token_hash) == h)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, h) or row.revoked_at is not None:
        return None
    return actor_of_row(row)


def actor_of_row(row: TokenRow) -> Actor:
    """The Actor a (live) token row stands for."""
    return Actor(role=cast(ActorRole, row.role), name=row.name, units=frozenset(row.units), district=row.district,
                 token_id=row.id)
