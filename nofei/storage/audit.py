"""The audit trail: an append-only hash chain, anchored by a key kept outside the database.

``digest = SHA-256(prev_digest + canonical JSON of the entry)``; entries are never updated or
deleted by the application, so any later change to a stored row breaks the chain at that row.

A chain alone can be rewritten from the changed row on (recompute every digest after it) or cut
short (delete the newest entries): both still verify. Hence (issue 17 item 10):

- ``mac = HMAC-SHA256(key, digest)`` on every entry, with a key the database does not hold
  (``register_key`` by the caller: the API resolves ``NOFEI_AUDIT_KEY`` / a key file). Whoever can
  write the table but lacks the key cannot produce a chain that verifies.
- ``checkpoint``: (head seq, head digest, HMAC of both) printed by ``nofei audit checkpoint`` and
  kept elsewhere; ``verify(checkpoints=…)`` proves each checkpointed entry is still there unchanged,
  so truncating the tail is detected.
- PostgreSQL refuses UPDATE/DELETE on ``audit_entry`` (trigger, migration ``h3_integrity``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.access import Actor
from nofei.storage.engine import is_postgres
from nofei.storage.tables import AuditRow

GENESIS = "0" * 64
_PG_LOCK_KEY = 740_101

_KEYS: dict[str, bytes] = {}
# Without a registered key (a test's own engine, a script): a key of this process only. Entries still get a
# MAC, and another process that verifies them without the real key reports them, loudly.
_PROCESS_KEY = secrets.token_bytes(32)


def _bind_key(session: Session) -> str:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=True)


def register_key(url: Any, key: bytes) -> None:
    """The MAC key for the database at ``url`` (called once by the app factory with the configured key)."""
    if len(key) < 16:
        raise ValueError("the audit key must have at least 16 bytes")
    u = url if isinstance(url, str) else url.render_as_string(hide_password=True)
    from sqlalchemy.engine import make_url

    _KEYS[make_url(u).render_as_string(hide_password=True)] = key


def key_for(session: Session) -> bytes:
    return _KEYS.get(_bind_key(session), _PROCESS_KEY)


def mac_of(key: bytes, digest: str) -> str:
    return hmac.new(key, ("nofei-audit-entry:" + digest).encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain at one moment, signed: ``seq:digest:mac`` (``str``/``parse`` round-trip)."""

    seq: int
    digest: str
    mac: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.digest}:{self.mac}"

    @classmethod
    def parse(cls, text_: str) -> Checkpoint:
        parts = text_.strip().split(":")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64 or len(parts[2]) != 64:
            raise ValueError(f"not a checkpoint (seq:digest:mac): {text_[:80]!r}")
        return cls(int(parts[0]), parts[1].lower(), parts[2].lower())


def _checkpoint_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"nofei-audit-checkpoint:{seq}:{digest}".encode("ascii"), hashlib.sha256).hexdigest()


def checkpoint(session: Session) -> Checkpoint:
    """The signed head of the chain now (seq 0 and the genesis digest when it is empty)."""
    last = session.execute(select(col(AuditRow.seq), col(AuditRow.digest))
                           .order_by(col(AuditRow.seq).desc()).limit(1)).first()
    seq, digest = (int(last[0] or 0), str(last[1])) if last else (0, GENESIS)
    return Checkpoint(seq, digest, _checkpoint_mac(key_for(session), seq, digest))


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
    if is_postgres(session):
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
    row.mac = mac_of(key_for(session), row.digest)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str = ""
    checkpoints: int = field(default=0)


def verify(session: Session, batch: int = 5000, checkpoints: Iterable[Checkpoint] = ()) -> ChainCheck:
    """Walk the chain in order; report the first entry whose link, digest or MAC does not hold, then each
    checkpoint whose signature is not this key's, whose entry is gone (the tail was cut) or differs."""
    key = key_for(session)
    cps = sorted(checkpoints, key=lambda c: c.seq)
    for cp in cps:
        if not hmac.compare_digest(cp.mac, _checkpoint_mac(key, cp.seq, cp.digest)):
            return ChainCheck(False, 0, cp.seq, "checkpoint signature does not match the audit key")
    res = _walk(session, key, batch, {c.seq: c.digest for c in cps})
    if not res.ok:
        return res
    for cp in cps:
        if cp.seq > res.entries:
            return ChainCheck(False, res.entries, cp.seq, f"entries after {res.entries} are missing: checkpoint "
                                                          f"{cp.seq} is no longer in the chain (truncated)", len(cps))
    return ChainCheck(True, res.entries, checkpoints=len(cps))


def _walk(session: Session, key: bytes, batch: int, at: dict[int, str]) -> ChainCheck:
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
            if not r.mac:
                return ChainCheck(False, count, r.seq, "entry has no MAC (written without the audit key)")
            if not hmac.compare_digest(r.mac, mac_of(key, r.digest)):
                return ChainCheck(False, count, r.seq, "MAC does not match (the entry was rewritten, or another key)")
            if r.seq in at and at[r.seq] != r.digest:
                return ChainCheck(False, count, r.seq, "entry differs from its checkpoint")
            prev = r.digest
            expected_seq += 1
            count += 1
            last_seq = r.seq or 0


def entries(session: Session, *, districts: Collection[str] | None = None, object_: str | None = None,
            actor_label: str | None = None, time_from: datetime | None = None, time_to: datetime | None = None,
            page: int = 1, per_page: int = 50) -> tuple[list[AuditRow], int]:
    """A page of entries in chain order and how many match: recorded against one of ``districts`` (None:
    every entry, also those without a district), of the object
    ``object_`` (ending in ``*``: a prefix, matched literally), by ``actor_label``, from ``time_from`` up to
    ``time_to`` (exclusive)."""
    conds: list[Any] = []
    if districts is not None:
        conds.append(col(AuditRow.district).in_(sorted(districts)))
    if object_ and object_.endswith("*"):
        prefix = object_[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(col(AuditRow.object).like(prefix + "%", escape="\\"))
    elif object_:
        conds.append(col(AuditRow.object) == object_)
    if actor_label:
        conds.append(col(AuditRow.actor) == actor_label)
    if time_from is not None:
        conds.append(col(AuditRow.time) >= time_from)
    if time_to is not None:
        conds.append(col(AuditRow.time) < time_to)
    total = session.execute(select(func.count()).select_from(AuditRow).where(*conds)).scalar_one()
    rows = session.execute(select(AuditRow).where(*conds).order_by(col(AuditRow.seq))
                           .offset((page - 1) * per_page).limit(per_page)).scalars().all()
    return list(rows), int(total)
