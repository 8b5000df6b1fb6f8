"""Per-request helpers for resources: the actor, a unit of work, paging."""

from __future__ import annotations

from typing import Any

from flask import current_app, g

from nofei.access import Actor
from nofei.errors import Unauthenticated
from nofei.storage.uow import UnitOfWork


def actor() -> Actor:
    a = getattr(g, "actor", None)
    if a is None:
        raise Unauthenticated("需要有效的访问令牌 (a valid bearer token is required)")
    return a


def uow() -> UnitOfWork:
    """A fresh unit of work on the app's database, carrying catalogue, settings and request id."""
    return UnitOfWork(
        current_app.extensions["nofei.sessions"],
        catalogue=current_app.extensions["nofei.catalogue"],
        settings=dict(current_app.config),
        request_id=getattr(g, "request_id", ""),
    )


def page(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}
