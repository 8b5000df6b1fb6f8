"""Reading the audit trail (审计日志): who may see which entries, and the chain check.

Writes never come through here: entries are appended by ``uow.audit`` inside the transaction of the
write they record, and the application never updates or deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.errors import PermissionDenied
from nofei.storage import audit
from nofei.storage.tables import AuditRow
from nofei.storage.uow import UnitOfWork


def _require_reader(actor: Actor) -> None:
    """Admins and regulators read the trail; enterprises do not (it names other units' acts)."""
    if actor.role not in ("admin", "regulator"):
        raise PermissionDenied("仅管理员和监管部门可查看审计日志 (admins and regulators only)")


def entry_dict(r: AuditRow) -> dict[str, Any]:
    return {"seq": r.seq, "time": r.time, "actor": r.actor, "role": r.role, "action": r.action,
            "object": r.object, "district": r.district, "request_id": r.request_id, "detail": r.detail,
            "prev_digest": r.prev_digest, "digest": r.digest}


def _districts(actor: Actor) -> list[str] | None:
    """The districts whose entries the actor reads: all (admins, the city's regulators) or its own."""
    if actor.is_admin or actor.district == CITY:
        return None
    return [actor.district] if actor.district else []


def list_entries(*, uow: UnitOfWork, actor: Actor, object: str | None = None, actor_label: str | None = None,  # noqa: A002
                 time_from: datetime | None = None, time_to: datetime | None = None,
                 page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
    """Entries in chain order. Admins and city regulators see all; a district regulator only entries
    recorded against its district (entries without a district — tokens, catalogue — are city-level).

    ``object`` matches exactly (``unit:9163…``) or, ending in ``*``, as a prefix (``manifest:*``);
    ``time_to`` is exclusive."""
    _require_reader(actor)
    with uow:
        rows, total = audit.entries(uow.session, districts=_districts(actor), object_=object, actor_label=actor_label,
                                    time_from=time_from, time_to=time_to, page=page, per_page=per_page)
        return [entry_dict(r) for r in rows], total


def verify_chain(*, uow: UnitOfWork, actor: Actor, checkpoints: Iterable[str] = ()) -> dict[str, Any]:
    """Walk the whole chain: ``{ok, entries, broken_at, reason, checkpoints}`` naming the first broken link.

    ``checkpoints`` (``seq:digest:mac`` as ``nofei audit checkpoint`` printed them) must each still be in the
    chain unchanged: a cut-off tail is reported (ValueError for text that is not a checkpoint)."""
    _require_reader(actor)
    with uow:
        return asdict(audit.verify(uow.session, checkpoints=[audit.Checkpoint.parse(c) for c in checkpoints]))


def checkpoint(*, uow: UnitOfWork, actor: Actor) -> dict[str, Any]:
    """The signed head of the chain now: ``{seq, digest, mac, checkpoint}`` (keep it outside the database)."""
    if not actor.is_admin:
        raise PermissionDenied("仅管理员可生成审计检查点 (admins only)")
    with uow:
        cp = audit.checkpoint(uow.session)
    return {"seq": cp.seq, "digest": cp.digest, "mac": cp.mac, "checkpoint": str(cp)}
