"""Per-request helpers for resources: the actor, a unit of work, paging."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g

from nofei.access import Actor
from nofei.errors import Unauthenticated
from nofei.storage.uow import UnitOfWork


def actor() -> Actor:
    a = getattr(g, "actor", None)
    if a is None:
        raise Unauthenticated("需要有效的访问令牌 (a valid bearer token is required)")
    return a


def app_uow(app: Flask, request_id: str) -> UnitOfWork:
    """A fresh unit of work on ``app``'s database with the catalogue and rules built once in ``create_app``:
    the one way the API, the pages and the CLI make one."""
    return UnitOfWork(app.extensions["nofei.sessions"], catalogue=app.extensions["nofei.catalogue"],
                      rules=app.extensions["nofei.rules"], request_id=request_id)


def uow() -> UnitOfWork:
    """A fresh unit of work for this request."""
    return app_uow(current_app, getattr(g, "request_id", ""))


def page(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}
