"""Unit of work: one transaction per use case (cosmicpython chapter 6).

One convention: every use case takes ``uow`` keyword-only and opens its own ``with uow:``, does its work
through ``uow.session`` and calls ``uow.commit()``; leaving the outermost ``with`` block without a commit rolls
everything back, so a rejected upload stores nothing. The block is re-entrant: a use case called inside
another's (or inside a request that already opened one) joins that transaction instead of opening a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.domain.rules import Rules
from nofei.errors import Unavailable
from nofei.storage import audit
from nofei.storage.repo import catalogue_with_loaded


class UnitOfWork:
    """A session and its transaction, plus what every use case needs: catalogue, rules, request id.

    ``settings`` (a mapping of setting names) is read into ``rules`` when no ``rules`` are given (tests, CLI)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        catalogue: Catalogue | None = None,
        rules: Rules | None = None,
        settings: Mapping[str, Any] | None = None,
        request_id: str = "",
        load_catalogue: bool = True,
    ) -> None:
        self._factory = session_factory
        self.catalogue = catalogue or Catalogue.default()
        self._load_catalogue = load_catalogue
        self.rules = rules if rules is not None else Rules.from_settings(settings or {})
        self.request_id = request_id
        self._session: Session | None = None
        self._depth = 0

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its with-block")
        return self._session

    @property
    def active(self) -> bool:
        """True inside a ``with`` block."""
        return self._session is not None

    def __enter__(self) -> UnitOfWork:
        if self._session is not None:  # joined by an inner use case: the outer block owns the transaction
            self._depth += 1
            return self
        self._session = self._factory()
        if self._load_catalogue:
            self.catalogue = catalogue_with_loaded(self._session, self.catalogue)
            self._load_catalogue = False
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._depth:
            self._depth -= 1
            return
        try:
            if self._session is not None:
                self._session.rollback()
                self._session.close()
        finally:
            self._session = None
        if isinstance(exc, OperationalError | DBAPIError) and getattr(exc, "connection_invalidated", False):
            raise Unavailable("数据库暂时不可用，请稍后重试 (database unavailable)") from exc

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def audit(
        self, actor: Actor, action: str, obj: str, *, detail: dict[str, Any] | None = None, district: str | None = None
    ) -> None:
        """Append an audit entry in this transaction: it commits or rolls back with the write it records."""
        audit.append(
            self.session, actor=actor, action=action, obj=obj, request_id=self.request_id,
            detail=detail or {}, district=district,
        )
