"""Monthly ledgers on PostgreSQL: COPY inserts inside the use case's transaction, nothing left behind
by a failure at any point, and concurrent amendments of one month get distinct, gap-free versions."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from imports import read_monthly_ledger
from ledgers import ledger as L
from ledgers import registry
from nofei.access import SYSTEM
from nofei.storage import ledgerstore
from nofei.storage.tables import AuditRow, LedgerFileRow, LedgerRow, StockEntryRow, TransferEntryRow
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

pytestmark = pytest.mark.postgres
TODAY = date(2025, 4, 2)


@pytest.fixture
def units(uow_factory):
    for code, name in ((ME, "测试化工有限公司"), (RECV, "接收单位")):
        with uow_factory() as uow:
            registry.register_unit(uow=uow, actor=SYSTEM, data={"credit_code": code, "name": name,
                                                                "district": "630104", "roles": ["producer"]})


def _submit(uow_factory, sheets):
    data = workbook(sheets)
    draft = read_monthly_ledger(data, filename="m.xlsx", catalogue=uow_factory().catalogue, today=TODAY)
    return L.submit_monthly_ledger(uow=uow_factory(), actor=SYSTEM, draft=draft, content=data, filename="m.xlsx")


def _count(uow_factory, table) -> int:
    with uow_factory() as uow:
        return uow.session.execute(select(func.count()).select_from(table)).scalar_one()


def test_copy_insert_stores_every_row_with_its_values(uow_factory, units, engine):
    assert engine.dialect.name == "postgresql"
    s = balanced_sheets()
    s["转出"] += [[date(2025, 3, 9), f"202503{i:08d}", "900-041-49", 0.001, "吨", RECV, "接收单位", None, "D10", "批次"]
                 for i in range(500)]
    s["产生贮存"][1][3] = 10.5          # generated 10.5 t: 500 × 0.001 t more leaves
    rc = _submit(uow_factory, s)
    assert rc["rows"]["转出"] == 502
    with uow_factory() as uow:
        got = L.get_ledger(uow=uow, actor=SYSTEM, ledger_id=rc["id"])
    out = [t for t in got["transfers"] if t["direction"] == "out"]
    assert len(out) == 502 and out[-1]["row"] == 503 and out[-1]["qty_t"] == 0.001 and out[-1]["note"] == "批次"
    assert out[0]["day"] == date(2025, 3, 7) and out[0]["manifest_no"] == "20250300000001"


@pytest.mark.parametrize("fail_in", ["transfers", "audit"])
def test_a_failure_leaves_nothing_and_the_old_version_current(uow_factory, units, monkeypatch, fail_in):
    v1 = _submit(uow_factory, balanced_sheets())
    before = {t: _count(uow_factory, t) for t in (LedgerRow, LedgerFileRow, StockEntryRow, TransferEntryRow, AuditRow)}

    class Boom(RuntimeError):
        pass

    if fail_in == "transfers":
        real = ledgerstore._insert_transfers

        def broken(session, lid, draft):
            real(session, lid, draft)     # the rows are written, then the transaction fails
            raise Boom()

        monkeypatch.setattr(ledgerstore, "_insert_transfers", broken)
    else:
        from nofei.storage.uow import UnitOfWork

        def broken_audit(self, *a, **kw):
            raise Boom()

        monkeypatch.setattr(UnitOfWork, "audit", broken_audit)
    s = balanced_sheets()
    s["填报信息"][3][1] = "李四"
    with pytest.raises(Boom):
        _submit(uow_factory, s)
    after = {t: _count(uow_factory, t) for t in before}
    assert after == before
    with uow_factory() as uow:
        vs = L.versions(uow=uow, actor=SYSTEM, unit=ME, month="2025-03")
    assert [(v["id"], v["is_current"]) for v in vs] == [(v1["id"], True)]


def test_concurrent_amendments_get_distinct_versions(uow_factory, units):
    _submit(uow_factory, balanced_sheets())
    n = 6
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i: int) -> None:
        s = balanced_sheets()
        s["填报信息"][3][1] = f"填报人{i}"
        data = workbook(s)
        draft = read_monthly_ledger(data, filename="m.xlsx", catalogue=uow_factory().catalogue, today=TODAY)
        try:
            barrier.wait(10)
            results.append(L.submit_monthly_ledger(uow=uow_factory(), actor=SYSTEM, draft=draft, content=data,
                                                   filename="m.xlsx")["version"])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results) == list(range(2, n + 2))
    with uow_factory() as uow:
        vs = L.versions(uow=uow, actor=SYSTEM, unit=ME, month="2025-03")
    assert [v["version"] for v in vs] == list(range(1, n + 2))
    assert [v["is_current"] for v in vs].count(True) == 1 and vs[-1]["is_current"]


# --- transfer_entry → ledger integrity (migration pg_transfer_ledger_guard) --------------------------
def _raw(engine):
    """A psycopg connection outside the ORM, as a careless script or a bug would write."""
    return engine.raw_connection()


_ORPHAN = ("INSERT INTO transfer_entry (ledger_id, row, direction, day, code, stream, qty_kg, counterpart, "
           "counterpart_name, note) VALUES (%s, 2, 'out', '2025-03-07', '900-041-49', 'hazardous', 1000, %s, '', '')")


def test_the_schema_has_the_statement_guard_instead_of_the_per_row_foreign_key(engine):
    with engine.connect() as c:
        fks = c.exec_driver_sql("SELECT conname FROM pg_constraint WHERE conrelid = 'transfer_entry'::regclass "
                                "AND contype = 'f'").scalars().all()
        trg = set(c.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").scalars())
    assert fks == []
    assert {"transfer_entry_ledger_ins", "transfer_entry_ledger_upd", "ledger_keep"} <= trg


@pytest.mark.parametrize("how", ["insert", "copy", "update"])
def test_a_transfer_row_of_no_ledger_is_refused_with_the_foreign_key_error(uow_factory, units, engine, how):
    import psycopg

    rc = _submit(uow_factory, balanced_sheets())
    before = _count(uow_factory, TransferEntryRow)
    conn = _raw(engine)
    try:
        cur = conn.cursor()
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as exc:
            if how == "insert":
                cur.execute(_ORPHAN, (rc["id"] + 999, RECV))
            elif how == "copy":
                with cur.connection.cursor().copy("COPY transfer_entry (ledger_id, row, direction, day, code, stream, "
                                                  "qty_kg, counterpart, counterpart_name, note) FROM STDIN") as cp:
                    cp.write_row((rc["id"], 2, "out", date(2025, 3, 7), "900-041-49", "hazardous", 1, RECV, "", ""))
                    cp.write_row((rc["id"] + 999, 3, "out", date(2025, 3, 7), "900-041-49", "hazardous", 1, RECV, "",
                                  ""))
            else:
                cur.execute("UPDATE transfer_entry SET ledger_id = %s WHERE ledger_id = %s", (rc["id"] + 999, rc["id"]))
        assert f"(ledger_id)=({rc['id'] + 999})" in str(exc.value.diag.message_detail)
        conn.rollback()
    finally:
        conn.close()
    assert _count(uow_factory, TransferEntryRow) == before


def test_rows_of_an_existing_ledger_pass_and_ledgers_cannot_be_deleted_or_renumbered(uow_factory, units, engine):
    import psycopg

    rc = _submit(uow_factory, balanced_sheets())
    conn = _raw(engine)
    try:
        cur = conn.cursor()
        cur.execute(_ORPHAN, (rc["id"], RECV))        # a real parent: accepted
        conn.rollback()
        for stmt in ("DELETE FROM ledger WHERE id = %s", "UPDATE ledger SET id = id + 1000 WHERE id = %s"):
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match="ledger versions are permanent"):
                cur.execute(stmt, (rc["id"],))
            conn.rollback()
        cur.execute("UPDATE ledger SET is_current = is_current WHERE id = %s", (rc["id"],))  # other columns: allowed
        conn.rollback()
    finally:
        conn.close()
    with uow_factory() as uow:
        assert L.get_ledger(uow=uow, actor=SYSTEM, ledger_id=rc["id"])["id"] == rc["id"]
