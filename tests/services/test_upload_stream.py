"""An upload whose 转出/转入 rows are stored while the workbook is still read (``api.uploads.import_workbook``):
it stores exactly what the read-then-store path stores, and a file rejected after some chunks were written,
or a writer that fails, leaves nothing behind (one transaction per upload). Runs on SQLite and, in the
PostgreSQL pass, on PostgreSQL (COPY on the writer thread)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from api.uploads import import_workbook
from imports import read_monthly_ledger
from imports import reader as reader_mod
from ledgers import ledger as L
from ledgers import registry
from nofei.access import SYSTEM, Actor
from nofei.errors import LedgerRejected, PermissionDenied
from nofei.storage import ledgerstore
from nofei.storage.tables import AuditRow, LedgerFileRow, LedgerRow, StockEntryRow, TransferEntryRow
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

TODAY = date(2025, 4, 2)
N = 23  # extra 转出 rows: with STREAM_CHUNK = 5 the sheet goes to the writer in five chunks


@pytest.fixture
def units(uow_factory):
    for code, name in ((ME, "测试化工有限公司"), (RECV, "接收单位")):
        with uow_factory() as uow:
            registry.register_unit(uow=uow, actor=SYSTEM, data={"credit_code": code, "name": name,
                                                                "district": "630104", "roles": ["producer"]})


@pytest.fixture
def small_chunks(monkeypatch):
    """Five-row chunks; the reader runs in this process so the patch reaches it (the parse worker is a
    separate process: tests/hostile/test_worker.py checks that it streams the same blocks)."""
    from functools import partial

    from imports import ReadLimits, gate

    monkeypatch.setattr(reader_mod, "STREAM_CHUNK", 5)
    monkeypatch.setattr(gate, "ReadLimits", partial(ReadLimits, parse_workers=0))


@pytest.fixture
def puts(monkeypatch):
    """Every block the writer was given (to prove the stream was really used)."""
    seen: list[int] = []
    real = ledgerstore.TransferWriter.put

    def put(self, block):  # type: ignore[no-untyped-def]
        seen.append(len(block))
        real(self, block)

    monkeypatch.setattr(ledgerstore.TransferWriter, "put", put)
    return seen


def _sheets(bad_row: int | None = None, unbalanced: bool = False):
    s = balanced_sheets()
    for i in range(N):
        s["转出"].append([date(2025, 3, 1 + i % 28), f"2025030000{i + 100:04d}", "900-041-49", 0.01, "吨", RECV,
                         "接收单位", None, "D10", f"第{i}批"])
    s["产生贮存"][1][3] = 10 + N * 0.01 + (1 if unbalanced else 0)
    if bad_row is not None:  # a row of the last chunk: earlier chunks are already written when it is found
        s["转出"][bad_row][3] = "十吨"
    return s


def _counts(uow_factory) -> dict[str, int]:
    with uow_factory() as uow:
        return {t.__name__: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (LedgerRow, LedgerFileRow, StockEntryRow, TransferEntryRow, AuditRow)}


def _stored(uow_factory, ledger_id: int) -> dict:
    with uow_factory() as uow:
        got = L.get_ledger(uow=uow, actor=SYSTEM, ledger_id=ledger_id)
    for k in ("id", "uploaded_at", "version", "is_current", "sha256", "size", "filename"):
        got.pop(k)
    return got


def test_streamed_upload_stores_exactly_what_the_plain_path_stores(uow_factory, units, small_chunks, puts):
    data = workbook(_sheets())
    streamed = import_workbook(uow=uow_factory(), actor=SYSTEM, data=data, filename="m.xlsx", today=TODAY)
    assert puts == [5, 5, 5, 5, 5, 1]                  # 25 转出 rows in five chunks, then the 转入 row
    assert streamed["version"] == 1 and streamed["rows"]["转出"] == N + 2

    s2 = _sheets()
    s2["填报信息"][3][1] = "李四"  # the same rows as version 2, through read-then-submit without a stream
    data2 = workbook(s2)
    draft = read_monthly_ledger(data2, filename="m.xlsx", catalogue=uow_factory().catalogue, today=TODAY)
    plain = L.submit_monthly_ledger(uow=uow_factory(), actor=SYSTEM, draft=draft, content=data2, filename="m.xlsx")
    assert len(puts) == 6 and plain["version"] == 2       # the plain path used no writer

    a, b = _stored(uow_factory, streamed["id"]), _stored(uow_factory, plain["id"])
    assert (a.pop("reporter"), b.pop("reporter")) == ("张三", "李四")
    assert len(a["transfers"]) == N + 3 and a["warnings"]
    assert a == b
    with uow_factory() as uow:
        content, _, _ = L.ledger_file(uow=uow, actor=SYSTEM, ledger_id=streamed["id"])
    assert content == data


def test_an_amendment_streams_as_version_two_and_a_byte_identical_upload_is_a_duplicate(uow_factory, units, puts):
    v1 = import_workbook(uow=uow_factory(), actor=SYSTEM, data=workbook(_sheets()), filename="m.xlsx", today=TODAY)
    s = _sheets()
    s["填报信息"][3][1] = "李四"
    data = workbook(s)
    v2 = import_workbook(uow=uow_factory(), actor=SYSTEM, data=data, filename="m.xlsx", today=TODAY)
    n = len(puts)
    again = import_workbook(uow=uow_factory(), actor=SYSTEM, data=data, filename="m.xlsx", today=TODAY)
    assert (v1["version"], v2["version"]) == (1, 2)
    assert again["duplicate"] is True and again["id"] == v2["id"] and len(puts) == n  # no stream opened
    with uow_factory() as uow:
        vs = L.versions(uow=uow, actor=SYSTEM, unit=ME, month="2025-03")
    assert [(v["version"], v["is_current"]) for v in vs] == [(1, False), (2, True)]


@pytest.mark.parametrize("fault", ["bad_cell_in_last_chunk", "unbalanced", "writer_fails"])
def test_a_rejection_after_chunks_were_written_leaves_nothing(uow_factory, units, small_chunks, puts, monkeypatch,
                                                              fault):
    v1 = import_workbook(uow=uow_factory(), actor=SYSTEM, data=workbook(_sheets()), filename="m.xlsx", today=TODAY)
    before = _counts(uow_factory)
    s = _sheets(bad_row=N + 1 if fault == "bad_cell_in_last_chunk" else None, unbalanced=fault == "unbalanced")
    s["填报信息"][3][1] = "李四"  # not byte-identical to v1
    n = len(puts)
    if fault == "writer_fails":
        real = ledgerstore.block_tuples
        calls = {"n": 0}

        def failing(block, ledger_id, **kw):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
            return real(block, ledger_id, **kw)

        monkeypatch.setattr(ledgerstore, "block_tuples", failing)
        with pytest.raises(OSError, match="disk full"):
            import_workbook(uow=uow_factory(), actor=SYSTEM, data=workbook(s), filename="m.xlsx", today=TODAY)
    else:
        with pytest.raises(LedgerRejected) as exc:
            import_workbook(uow=uow_factory(), actor=SYSTEM, data=workbook(s), filename="m.xlsx", today=TODAY)
        codes = {p.code for p in exc.value.problems}
        assert codes == ({"not_a_number"} if fault == "bad_cell_in_last_chunk" else {"unbalanced"})
    assert len(puts) > n + 1                           # chunks had reached the writer before the failure
    assert _counts(uow_factory) == before              # … and nothing of them is left
    with uow_factory() as uow:
        vs = L.versions(uow=uow, actor=SYSTEM, unit=ME, month="2025-03")
    assert [(v["id"], v["is_current"]) for v in vs] == [(v1["id"], True)]


def test_callers_who_may_not_store_get_the_plain_paths_answer(uow_factory, units, puts):
    other = Actor(role="enterprise", name="other", units=frozenset({RECV}))
    regulator = Actor(role="regulator", name="reg", district="630104")
    data = workbook(_sheets())
    for who in (other, regulator):
        with pytest.raises(PermissionDenied):
            import_workbook(uow=uow_factory(), actor=who, data=data, filename="m.xlsx", today=TODAY)
    dry = import_workbook(uow=uow_factory(), actor=SYSTEM, data=data, filename="m.xlsx", today=TODAY, dry_run=True)
    assert dry["id"] is None and dry["version"] == 1
    assert puts == [] and _counts(uow_factory)["LedgerRow"] == 0
