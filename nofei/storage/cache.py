"""The process caches: one kind, stamped and locked.

A value computed from the database (a year's flow model, the city-wide findings) is kept while the
database's **stamp** for it is the one it was computed at. Reading the stamp must cost an index look-up,
and a stamp must never repeat for different data, also across ``TRUNCATE … RESTART IDENTITY`` (the test
suite empties its tables between tests, ids start again at 1). Stamps that hold:

- the newest row of a change log written in the same transaction as the data, **with a random token**
  (``flowstore.latest_change``: ``(id, token)``) — the id alone repeats after a restart of identities;
- the head digest of the audit chain (each digest hashes the previous one and the entry with its time).

``None`` means "no stamp" (e.g. nothing written yet): such a value is computed every time, never kept.
Values are built outside the lock (two threads may build the same key once each; the last one stays) and
entries are replaced, never changed in place, so a reader never sees half an update. ``clear_all`` empties
every cache of the process (tests; ``cache=False`` reads).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_ALL: weakref.WeakSet[StampedCache[Any]] = weakref.WeakSet()
_ALL_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Entry(Generic[V]):
    """A kept value and the stamp it was computed at."""

    stamp: Hashable
    value: V


class StampedCache(Generic[V]):
    """At most ``size`` values by key (least recently used first out), each valid while its stamp holds."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError("a cache holds at least one value")
        self.name, self.size = name, size
        self._d: OrderedDict[Hashable, Entry[V]] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}
        with _ALL_LOCK:
            _ALL.add(self)

    def entry(self, key: Hashable) -> Entry[V] | None:
        """The kept entry of ``key`` whatever its stamp (to bring a stale value up to date), or None."""
        with self._lock:
            hit = self._d.get(key)
            if hit is not None:
                self._d.move_to_end(key)
            return hit

    def get(self, key: Hashable, stamp: Hashable | None) -> V | None:
        """The value of ``key`` if it was computed at ``stamp`` (never for a ``None`` stamp), else None."""
        hit = self.entry(key)
        return hit.value if hit is not None and stamp is not None and hit.stamp == stamp else None

    def put(self, key: Hashable, stamp: Hashable | None, value: V) -> V:
        """Keep ``value`` as computed at ``stamp`` (a ``None`` stamp drops what was kept); returns it."""
        with self._lock:
            if stamp is None:
                self._d.pop(key, None)
                return value
            self._d[key] = Entry(stamp, value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value

    def get_or_build(self, key: Hashable, stamp: Hashable | None, build: Callable[[], V]) -> V:
        """The kept value of ``key`` at ``stamp``, or ``build()`` kept at ``stamp`` (built outside the lock)."""
        hit = self.entry(key)
        if hit is not None and stamp is not None and hit.stamp == stamp:
            return hit.value
        return self.put(key, stamp, build())

    def items(self) -> list[tuple[Hashable, Entry[V]]]:
        """A snapshot of the kept entries, oldest use first."""
        with self._lock:
            return list(self._d.items())

    def flight(self, key: Hashable) -> threading.Lock:
        """The lock a builder of ``key`` holds (single flight): a second thread that finds the value stale waits
        for the build in progress and then reads its result, instead of building the same value beside it."""
        with self._lock:
            lock = self._flights.get(key)
            if lock is None:
                if len(self._flights) > 4 * self.size:  # forget the locks of keys long gone (none is held)
                    self._flights = {k: v for k, v in self._flights.items() if k in self._d or v.locked()}
                lock = self._flights[key] = threading.Lock()
            return lock

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._d.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)


def clear_all() -> None:
    """Empty every process cache (the next read of each recomputes from the database)."""
    with _ALL_LOCK:
        caches = list(_ALL)
    for c in caches:
        c.clear()
