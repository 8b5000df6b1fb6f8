"""The audit trail: an append-only hash chain.

``digest = SHA-256(prev_digest + canonical JSON of the entry)``; entries are never updated or
deleted by the application, so any later change to a stored row breaks the chain at that row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.access import Actor
from nofei.storage.tables import AuditRow

GENESIS = "0" * 64
_PG_LOCK_KEY = 740_101


def _utc_naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _canonical(seq: int, time: datetime, actor: str, role: str, action: str, obj: str,
               request_id: str, detail: dict[str, Any], district: str | None) -> str:
    return json.dumps(
        {"seq": seq, "time": _utc_naive(time).isoformat(timespec="microseconds"), "actor": actor,
         "role": role, "action": action, "object": obj, "request_id": request_id, "detail": detail,
         "district": district},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )


def digest_of(prev: str, row: AuditRow) -> str:
    body = _canonical(row.seq or 0, row.time, row.actor, row.role, row.action, row.object,
                      row.request_id, row.detail, row.district)
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def append(session: Session, *, actor: Actor, action: str, obj: str, request_id: str = "",
           detail: dict[str, Any] | None = None, district: str | None = None) -> AuditRow:
    """Append one entry, serialised with other writers (advisory lock on PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(select(col(AuditRow.seq), col(AuditRow.digest)).order_by(col(AuditRow.seq).desc()).limit(1)).first()
    seq = ((last[0] or 0) if last else 0) + 1
    prev = last[1] if last else GENESIS
    row = AuditRow(
        seq=seq, time=datetime.now(UTC), actor=actor.label, role=actor.role,
        action=action, object=obj, district=district, request_id=request_id,
        detail=json.loads(json.dumps(detail or {}, default=str)), prev_digest=prev, digest="",
    )
    row.digest = digest_of(prev, row)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str = ""


def verify(session: Session, batch: int = 5000) -> ChainCheck:
    """Walk the chain in order; report the first entry whose link or digest does not hold."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(AuditRow).where(col(AuditRow.seq) > last_seq).order_by(col(AuditRow.seq)).limit(batch)
        ).scalars().all()
        if not rows:
            return ChainCheck(True, count)
        for r in rows:
            if r.seq != expected_seq:
                return ChainCheck(False, count, expected_seq, "missing entry")
            if r.prev_digest != prev:
                return ChainCheck(False, count, r.seq, "prev_digest does not match the previous entry")
            if digest_of(prev, r) != r.digest:
                return ChainCheck(False, count, r.seq, "digest does not match the entry's content")
            prev = r.digest
            expected_seq += 1
            count += 1
            last_seq = r.seq or 0
