"""The one process cache (``nofei.storage.cache``): a value lives while its stamp holds, ``None`` stamps are
never kept, the least recently used value goes first, concurrent readers see whole values only, and the
stamp the flow model uses cannot repeat after the tables are emptied with their ids restarted."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from nofei.storage import flowstore
from nofei.storage.cache import StampedCache, clear_all
from nofei.storage.engine import is_postgres


def test_a_value_is_kept_while_its_stamp_holds_and_rebuilt_when_it_changes():
    c: StampedCache[str] = StampedCache("t", 4)
    builds: list[str] = []

    def build(v: str):
        def make() -> str:
            builds.append(v)
            return v
        return make

    assert c.get_or_build("k", (1, "a"), build("one")) == "one"
    assert c.get_or_build("k", (1, "a"), build("two")) == "one"  # same stamp: kept
    assert c.get_or_build("k", (1, "b"), build("three")) == "three"  # same id, other token: rebuilt
    assert c.get("k", (1, "a")) is None and c.get("k", (1, "b")) == "three"
    assert builds == ["one", "three"]


def test_no_stamp_is_never_kept_and_drops_what_was():
    c: StampedCache[int] = StampedCache("t", 4)
    c.put("k", "s", 1)
    assert c.get_or_build("k", None, lambda: 2) == 2
    assert len(c) == 0 and c.get("k", None) is None and c.get("k", "s") is None
    assert c.get_or_build("k", None, lambda: 3) == 3  # computed every time


def test_the_least_recently_used_value_goes_first():
    c: StampedCache[int] = StampedCache("t", 2)
    c.put("a", 1, 1)
    c.put("b", 1, 2)
    assert c.get("a", 1) == 1  # a is now the most recent
    c.put("c", 1, 3)
    assert (c.get("a", 1), c.get("b", 1), c.get("c", 1)) == (1, None, 3)
    with pytest.raises(ValueError):
        StampedCache("empty", 0)


def test_entry_returns_a_stale_value_to_bring_up_to_date():
    c: StampedCache[list[int]] = StampedCache("t", 2)
    c.put("y", (5, "x"), [1, 2])
    hit = c.entry("y")
    assert hit is not None and hit.stamp == (5, "x") and hit.value == [1, 2]
    c.discard("y")
    assert c.entry("y") is None


def test_clear_all_empties_every_cache():
    a: StampedCache[int] = StampedCache("a", 2)
    b: StampedCache[int] = StampedCache("b", 2)
    a.put(1, 1, 1)
    b.put(1, 1, 1)
    clear_all()
    assert len(a) == len(b) == 0


def test_concurrent_readers_and_writers_see_whole_values_only():
    """Eight threads put and read (key, stamp) → the tuple (key, stamp, stamp): a read that hits must get
    exactly the value of that stamp, and the bound is never exceeded."""
    c: StampedCache[tuple[int, int, int]] = StampedCache("t", 8)
    errors: list[str] = []
    start = threading.Barrier(8)

    def work(seed: int) -> None:
        start.wait()
        for i in range(3000):
            key, stamp = (seed * 7 + i) % 13, i % 5
            got = c.get_or_build(key, stamp, lambda: (key, stamp, stamp))  # noqa: B023 - called at once
            if got != (key, stamp, stamp):
                errors.append(f"{key} {stamp} {got}")
            if len(c) > 8:
                errors.append("over the bound")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_flow_stamp_does_not_repeat_after_the_ids_restart(uow_factory):
    """``flowstore.latest_change`` after emptying ``flow_change`` and restarting its ids: the same id comes
    back, the stamp does not, so a value cached before is not served for the new data."""
    c: StampedCache[str] = StampedCache("flows", 2)
    with uow_factory() as uow:
        s = uow.session
        flowstore.note_change(s, 2025, "ledger")
        uow.commit()
        before = flowstore.latest_change(s, 2025)
        c.put(2025, before, "the old data")
        if is_postgres(s):
            s.execute(text("TRUNCATE flow_change RESTART IDENTITY"))
        else:  # no AUTOINCREMENT: SQLite hands out max(id) + 1 again
            s.execute(text("DELETE FROM flow_change"))
        flowstore.note_change(s, 2025, "ledger")
        uow.commit()
        after = flowstore.latest_change(s, 2025)
    assert before is not None and after is not None
    assert after[0] == before[0] and after != before
    assert c.get(2025, after) is None


def test_single_flight_one_build_while_others_wait():
    """Readers that find a value stale while it is being built wait for that build and read its result."""
    import threading
    import time

    from nofei.storage.cache import StampedCache

    c: StampedCache[int] = StampedCache("flight", 4)
    builds: list[int] = []

    def read(stamp: int) -> int:
        hit = c.get("year", stamp)
        if hit is not None:
            return hit
        with c.flight("year"):
            hit = c.get("year", stamp)  # built meanwhile by the thread we waited for
            if hit is not None:
                return hit
            builds.append(stamp)
            time.sleep(0.05)
            return c.put("year", stamp, stamp * 10)

    got: list[int] = []
    ts = [threading.Thread(target=lambda: got.append(read(7))) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert builds == [7] and got == [70] * 6
    assert c.flight("year") is c.flight("year") and c.flight("year") is not c.flight("other")
    assert [k for k, _e in c.items()] == ["year"]
