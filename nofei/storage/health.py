"""The database as the service sees it: whether it answers, and which driver errors mean what.

``api`` reports health and maps errors to HTTP statuses without knowing SQLAlchemy (import-linter)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

Conflict = IntegrityError
"""A constraint caught what a check missed (usually a concurrent duplicate): the request conflicts with the
current state."""
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, DBAPIError)
"""The database is down or unreachable, or the driver failed: retry later."""


def ping(engine: Engine) -> bool:
    """Whether the database answers a trivial query now (any failure means "not ready")."""
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True
