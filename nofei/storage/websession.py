"""Server-side page sessions (issue 17 item 9): the cookie carries a random id, the table its SHA-256.

Signing out revokes the row; revoking the API token ends every session made with it (checked on each
request); a session also ends ``hours`` after sign-in. The cookie never holds the API token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.access import Actor
from nofei.storage.repo import actor_of_row
from nofei.storage.tables import TokenRow, WebSessionRow


def _now() -> datetime:
    return datetime.now(UTC)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def open_session(session: Session, actor: Actor, *, hours: float) -> str:
    """A new session for ``actor`` (resolved from a token just now); returns the id for the cookie."""
    if actor.token_id is None:
        raise ValueError("a page session needs a token-backed actor")
    sid = secrets.token_urlsafe(32)
    now = _now()
    session.add(WebSessionRow(id_hash=_hash(sid), token_id=actor.token_id, created_at=now,
                              expires_at=now + timedelta(hours=hours)))
    session.flush()
    return sid


def actor_for_session(session: Session, sid: str) -> Actor | None:
    """The Actor of a live session (not revoked, not expired, its token not revoked), else None."""
    if not sid or len(sid) > 200:
        return None
    row = session.execute(
        select(WebSessionRow, TokenRow).join(TokenRow, col(TokenRow.id) == col(WebSessionRow.token_id))
        .where(col(WebSessionRow.id_hash) == _hash(sid))).first()
    if row is None:
        return None
    ws, tok = row
    exp = ws.expires_at if ws.expires_at.tzinfo else ws.expires_at.replace(tzinfo=UTC)
    if ws.revoked_at is not None or tok.revoked_at is not None or exp <= _now():
        return None
    return actor_of_row(tok)


def revoke_session(session: Session, sid: str) -> bool:
    """End one session (sign-out); True when a live one was ended."""
    if not sid or len(sid) > 200:
        return False
    res = session.execute(update(WebSessionRow).where(col(WebSessionRow.id_hash) == _hash(sid),
                                                      col(WebSessionRow.revoked_at).is_(None))
                          .values(revoked_at=_now()))
    return bool(getattr(res, "rowcount", 0))


def revoke_token_sessions(session: Session, token_id: int) -> None:
    """End every session made with a token (its revocation already refuses them; this records when)."""
    session.execute(update(WebSessionRow).where(col(WebSessionRow.token_id) == token_id,
                                                col(WebSessionRow.revoked_at).is_(None))
                    .values(revoked_at=_now()))
