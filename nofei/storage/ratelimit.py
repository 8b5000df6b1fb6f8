"""Fixed-window request counters shared by every thread and process of the service (issue 17 item 11).

A counter is one row (key, window number) of ``rate_limit``, incremented by an atomic upsert in its own short
transaction. On PostgreSQL that is the service's database. On SQLite a writer holds the database's one write
lock for a whole upload, so the counters live in a sidecar file beside it (``<db>.ratelimit``, same table, WAL)
that every process on the machine shares; an in-memory database gets a per-process counter.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from nofei.storage.engine import is_postgres, make_engine
from nofei.storage.tables import RateLimitRow

_T = RateLimitRow.__table__  # type: ignore[attr-defined]


class Counter(Protocol):
    def incr(self, key: str, window: int, cost: int = 1) -> int: ...

    def get(self, key: str, window: int) -> int: ...


class MemoryCounter:
    """One process's counters (an in-memory database, or tests); bounded to the current window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[int, int]] = {}

    def incr(self, key: str, window: int, cost: int = 1) -> int:
        with self._lock:
            w, c = self._hits.get(key, (window, 0))
            c = c + cost if w == window else cost
            self._hits[key] = (window, c)
            if len(self._hits) > 100_000:
                self._hits = {k: v for k, v in self._hits.items() if v[0] == window}
            return c

    def get(self, key: str, window: int) -> int:
        with self._lock:
            w, c = self._hits.get(key, (window, 0))
        return c if w == window else 0


class DbCounter:
    """Counters in a ``rate_limit`` table: ``incr`` is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if is_postgres(engine) else sqlite.insert
        self._pruned = -1

    def incr(self, key: str, window: int, cost: int = 1) -> int:
        ins = self._insert(_T).values(key=key[:100], window=window, count=cost)
        stmt = ins.on_conflict_do_update(index_elements=[_T.c.key, _T.c.window],
                                         set_={"count": _T.c.count + cost}).returning(_T.c.count)
        with self.engine.begin() as c:
            n = int(c.execute(stmt).scalar_one())
            if window != self._pruned:  # once per window and process: drop the finished windows
                self._pruned = window
                c.execute(delete(_T).where(_T.c.window < window - 1))
        return n

    def get(self, key: str, window: int) -> int:
        with self.engine.connect() as c:
            n = c.execute(select(_T.c.count).where(_T.c.key == key[:100], _T.c.window == window)).scalar()
        return int(n or 0)


def shared_counter(engine: Engine) -> tuple[Counter, Engine | None]:
    """The counter for the service on ``engine``, and an engine it opened (to dispose of), if any."""
    if is_postgres(engine):
        return DbCounter(engine), None
    db = engine.url.database or ""
    if not db or db == ":memory:":
        return MemoryCounter(), None
    side = make_engine(f"sqlite:///{db}.ratelimit")
    try:
        _T.create(side, checkfirst=True)
    except OperationalError:  # another process created it between the check and the create
        pass
    return DbCounter(side), side
