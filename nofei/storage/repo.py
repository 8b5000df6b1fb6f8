"""Small repository helpers shared by the use-case packages: units, permits, catalogue, tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.access import Actor, ActorRole
from nofei.catalogue import Catalogue, Stream, WasteCode
from nofei.domain.units import Permit, Role, Unit
from nofei.errors import NotFound
from nofei.storage.tables import CatalogueCodeRow, CatalogueEditionCodeRow, PermitRow, TokenRow, UnitRow

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
    codes = list(set(codes))
    out: dict[str, UnitRow] = {}
    for i in range(0, len(codes), 900):
        chunk = codes[i : i + 900]
        for r in session.execute(select(UnitRow).where(col(UnitRow.credit_code).in_(chunk))).scalars():
            out[r.credit_code] = r
    return out


def move_reports_from_back(session: Session, unit_id: int, month: str) -> None:
    """An accepted ledger earlier than the unit's ``reports_from`` moves it back to that month (issue 13 §4)."""
    session.execute(update(UnitRow).where(col(UnitRow.id) == unit_id, or_(col(UnitRow.reports_from).is_(None),
                                                                      col(UnitRow.reports_from) > month))
                    .values(reports_from=month))


def permits_of(session: Session, unit_id: int) -> list[PermitRow]:
    return list(session.execute(select(PermitRow).where(col(PermitRow.unit_id) == unit_id)).scalars())


def to_domain_unit(row: UnitRow, permits: Iterable[PermitRow]) -> Unit:
    return Unit(
        credit_code=row.credit_code,
        name=row.name,
        district=row.district,
        park=row.park,
        roles=cast(tuple[Role, ...], tuple(row.roles)),  # a JSON column: checked when written
        permits=tuple(
            Permit(p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, p.valid_from, p.valid_to)
            for p in permits
        ),
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


# --- tokens ----------------------------------------------------------------------------
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
