"""The reconciliation's ledger sides on PostgreSQL: the binary COPY path equals the row path, the int8 fallback
sums past 2^31 kg exactly, and a year's model with many manifests prefetches them in the background."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from nofei.flows import counterparts as cp
from nofei.storage import flowdata, sides
from tests.services.test_anomalies import HW, cst, ledger, manifest
from tests.services.test_anomalies import sr as sr  # noqa: F401 - the fixture

pytestmark = pytest.mark.postgres


def _rows(session, year):
    """The same sides read as Python rows (the SQLite path)."""
    return cp.concat_ledger([cp.ledger_sides(r) for r in sides._chunks(session, sides._ledger_select(session, year))])


def _same(a: cp.LedgerSides, b: cp.LedgerSides) -> None:
    for x, y in zip(a.columns(), b.columns(), strict=True):
        assert np.array_equal(x, y)
    assert a.odd == b.odd


def test_the_binary_copy_equals_the_rows(uow_factory, sr):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"), received=cst("2024-03-05T09:00"))
    big = 3 * 2**30 + 7  # past int4: the int8 sums
    ledger(uow_factory, s, "2024-03", out=[(HW, 10_000, r, no), (HW, 5, r, "2024ABC0000001"), (HW, 9, r, "20240000000077")])
    ledger(uow_factory, r, "2024-03", inn=[(HW, 8_000, s, no), (HW, 1, s, "12345678901234"), (HW, 2, s, "not-a-number-x")])
    with uow_factory() as uow:
        got = sides.ledger_sides(uow.session, 2024)
        _same(got, _rows(uow.session, 2024))
        assert len(got.key) == 3 and set(got.odd) == {("2024ABC0000001", HW), ("not-a-number-x", HW)}
    ledger(uow_factory, r, "2024-04", inn=[(HW, big, s, no)])
    with uow_factory() as uow:
        got = sides.ledger_sides(uow.session, 2024)
        _same(got, _rows(uow.session, 2024))
        i = int(np.flatnonzero(got.key >> 12 == int(no))[0])
        assert got.of(i, "in").kg == 8_000 + big


def test_a_big_year_prefetches_its_ledger_sides(uow_factory, sr, monkeypatch):
    s, r = sr
    no = manifest(uow_factory, s, r, shipped=cst("2024-03-04T09:00"))
    ledger(uow_factory, s, "2024-03", out=[(HW, 10_000, r, no)])
    monkeypatch.setattr(sides, "PREFETCH_MIN", 1)
    flowdata.clear_cache()
    sides._CITED.clear()
    with uow_factory() as uow:
        flowdata.year_flows(uow.session, 2024, catalogue=uow.catalogue)
        key = (uow.session.get_bind().engine.url.render_as_string(hide_password=True), 2024)
    deadline = time.monotonic() + 20
    while sides._CITED.entry(key) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    hit = sides._CITED.entry(key)
    assert hit is not None, [t.name for t in threading.enumerate()]
    with uow_factory() as uow:
        _same(hit.value, sides.ledger_sides(uow.session, 2024))
        assert sides.cited(uow.session, 2024) is hit.value  # the list finds it fresh
