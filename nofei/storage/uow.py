"""Unit of work: one transaction per use case (cosmicpython chapter 6).

Use cases take ``uow`` keyword-only, do their work through ``uow.session`` and call ``uow.commit()``;
leaving the ``with`` block without a commit rolls everything back, so a rejected upload stores nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nofei.access import Actor
from nofei.catalogue import Catalogue
from nofei.errors import Unavailable
from nofei.storage import audit
from nofei.storage.repo import catalogue_with_loaded


class UnitOfWork:
    """A session and its transaction, plus what every use case needs: catalogue, settings, request id."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        catalogue: Catalogue | None = None,
        settings: dict[str, Any] | None = None,
        request_id: str = "",
        load_catalogue: bool = True,
    ) -> None:
        self._factory = session_factory
        self.catalogue = catalogue or Catalogue.default()
        self._load_catalogue = load_catalogue
        self.settings = settings or {}
        self.request_id = request_id
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its with-block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        if self._load_catalogue:
            self.catalogue = catalogue_with_loaded(self._session, self.catalogue)
            self._load_catalogue = False
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
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
