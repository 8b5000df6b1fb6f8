"""Year partitions on PostgreSQL (migration h12_year_partitions): upgrade and downgrade with data present keep
every row, id sequence, guard and trigger; a year nobody prepared lands in the default partition and is moved
out when its partition is made; a year's flow load reads one partition.

Runs in a private database (``<test db>_partitions``): it moves the schema up and down, which the shared
session database of the suite must not see."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from imports import read_monthly_ledger
from ledgers import ledger as L
from ledgers import manifests as man
from ledgers import registry
from nofei.access import SYSTEM
from nofei.storage import partitions as P
from nofei.storage.engine import make_engine, make_session_factory
from nofei.storage.migrate import alembic_config, upgrade
from nofei.storage.uow import UnitOfWork
from tests.conftest import PG_URL
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

TODAY = date(2025, 4, 2)
BEFORE = "h7_flow_edge"  # the head this migration follows


@pytest.fixture(scope="module")
def private() -> Any:
    url = make_url(PG_URL or "")
    name = f"{url.database}_partitions"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False), pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(engine: Engine, to: str, *, down: bool = False) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)


def _snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every partitioned table, in key order, plus the next id each sequence would give."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as c:
        for spec in (*P.TABLES, P.Partitioned("audit_entry", "seq", "time", "timestamptz")):
            out[spec.table] = [tuple(r) for r in c.execute(text(f'SELECT * FROM "{spec.table}" ORDER BY {spec.pk}'))]
            seq = c.execute(text(f"SELECT pg_get_serial_sequence('{spec.table}', '{spec.pk}')")).scalar()
            out[spec.table + ".seq"] = [tuple(c.execute(text(f"SELECT last_value, is_called FROM {seq}")).one())]
    return out


def _submit(uow: Any, month_day: date) -> dict[str, Any]:
    s = balanced_sheets(month_day)
    s["填报信息"][2][1] = month_day.strftime("%Y-%m")
    data = workbook(s)
    draft = read_monthly_ledger(data, filename="m.xlsx", catalogue=uow().catalogue, today=TODAY)
    return L.submit_monthly_ledger(uow=uow(), actor=SYSTEM, draft=draft, content=data, filename="m.xlsx")


def _fill(engine: Engine) -> dict[str, Any]:
    """A unit's ledger (transfer rows, flow summaries, audit entries), a manifest with its events, and one
    transfer row dated 2019 (a year no partition is made ahead for)."""
    sessions = make_session_factory(engine)

    def uow(**kw: Any) -> UnitOfWork:
        return UnitOfWork(sessions, **kw)

    with uow() as u:
        for code, name in ((ME, "测试化工有限公司"), (RECV, "接收单位")):
            registry.register_unit(uow=u, actor=SYSTEM, data={"credit_code": code, "name": name,
                                                              "district": "630104", "roles": ["producer"]})
    rc = _submit(uow, date(2025, 3, 7))
    with uow() as u:
        no = man.create_manifest(uow=u, actor=SYSTEM, data={"shipper": ME, "receiver": RECV,
                                                            "planned_date": date(2025, 5, 1),
                                                            "lines": [{"waste_code": "900-041-49", "quantity_t": "1"}]})
    with uow() as u:
        man.ship_manifest(uow=u, actor=SYSTEM, number=no["number"], data={"vehicle": "青A1", "driver": "王"})
    with engine.begin() as c:
        c.execute(text("INSERT INTO transfer_entry (ledger_id, row, direction, day, code, stream, qty_kg, counterpart, "
                       "counterpart_name, note) VALUES (:l, 99, 'out', '2019-06-30', '900-041-49', 'hazardous', 7, "
                       ":r, '', 'old')"), {"l": rc["id"], "r": RECV})
    return {"ledger": rc["id"], "uow": uow}


def _raises(engine: Engine, sql: str, params: dict[str, Any], sqlstate: str) -> None:
    with engine.connect() as c, pytest.raises(DBAPIError) as exc:
        c.execute(text(sql), params)
    assert exc.value.orig.sqlstate == sqlstate  # type: ignore[union-attr]


@pytest.mark.postgres
def test_upgrade_downgrade_and_new_years_keep_every_row(private: Engine) -> None:
    _migrate(private, BEFORE)
    with private.connect() as c:
        assert not any(P.is_partitioned(c, s.table) for s in P.TABLES)
    got = _fill(private)
    before = _snapshot(private)
    assert len(before["transfer_entry"]) == 4 and before["manifest_event"] and before["audit_entry"]
    assert before["flow_edge"] and before["flow_year_edge"]

    _migrate(private, "head")
    with private.connect() as c:
        assert all(P.is_partitioned(c, s.table) for s in P.TABLES)
        names = {n for n, _ in P.partitions_of(c, "transfer_entry")}
        # the years the rows have, plus the year before this one to the next, plus the default
        assert {"transfer_entry_y2019", "transfer_entry_y2025", "transfer_entry_default"} <= names
        assert c.execute(text("SELECT note FROM transfer_entry_y2019")).scalars().all() == ["old"]
        assert c.execute(text("SELECT count(*) FROM transfer_entry_y2025")).scalar() == 3
        pk = c.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'transfer_entry_pkey'"))
        assert pk.scalar() == "PRIMARY KEY (id, day)"
    assert _snapshot(private) == before

    # the guards survive on the partitioned tables: an orphan transfer row, an orphan summary; the audit trail
    # (not partitioned) stays append-only
    _raises(private, "INSERT INTO transfer_entry (ledger_id, direction, day, code, stream, qty_kg, counterpart, "
            "counterpart_name, note) VALUES (:l, 'out', '2025-03-07', 'x', 'x', 1, 'x', '', '')",
            {"l": got["ledger"] + 999}, "23503")
    _raises(private, "UPDATE audit_entry SET actor = 'someone else'", {}, "42501")
    _raises(private, "DELETE FROM audit_entry", {}, "42501")
    _raises(private, "INSERT INTO flow_edge (ledger_id, year, direction, stream, code, counterpart, kg, rows, "
            "wellformed) VALUES (:l, 2025, 'out', 'x', 'x', 'x', 1, 1, 1)", {"l": got["ledger"] + 999}, "23503")

    # ids go on from the old sequences: a new version's rows get ids above every stored one
    top = max(r[0] for r in before["transfer_entry"])
    rc = _submit(got["uow"], date(2025, 4, 7))
    with private.connect() as c:
        ids = c.execute(text("SELECT id FROM transfer_entry WHERE ledger_id = :l"), {"l": rc["id"]}).scalars().all()
    assert len(ids) == 3 and min(ids) > top

    # a year nobody prepared lands in the default partition; making its partition moves it out
    with private.begin() as c:
        c.execute(text("INSERT INTO transfer_entry (ledger_id, row, direction, day, code, stream, qty_kg, counterpart, "
                       "counterpart_name, note) VALUES (:l, 98, 'out', '2031-02-01', 'c', 's', 5, 'x', '', 'later')"),
                  {"l": got["ledger"]})
        c.execute(text("INSERT INTO manifest_event (manifest_id, time, actor, action, to_status, detail) "
                       "SELECT manifest_id, '2031-02-01 08:00+00', 'a', 'note', 'shipped', '{}' FROM manifest_event "
                       "LIMIT 1"))
    with private.begin() as c:
        assert c.execute(text("SELECT note FROM transfer_entry_default")).scalars().all() == ["later"]
        made = P.ensure_year(c, 2031)
        assert set(made) == {f"{s.table}_y2031" for s in P.TABLES}
        assert P.ensure_year(c, 2031) == []
    with private.connect() as c:
        assert c.execute(text("SELECT count(*) FROM transfer_entry_default")).scalar() == 0
        assert c.execute(text("SELECT note FROM transfer_entry_y2031")).scalars().all() == ["later"]
        assert c.execute(text("SELECT count(*) FROM manifest_event_default")).scalar() == 0
        assert c.execute(text("SELECT actor FROM manifest_event_y2031")).scalars().all() == ["a"]
    # the guard fires for rows of the re-attached default as for any other
    _raises(private, "INSERT INTO transfer_entry (ledger_id, direction, day, code, stream, qty_kg, counterpart, "
            "counterpart_name, note) VALUES (:l, 'out', '2040-03-07', 'x', 'x', 1, 'x', '', '')",
            {"l": got["ledger"] + 999}, "23503")

    # a year's flow load reads that year's partition only
    with private.connect() as c:
        plan = "\n".join(c.execute(text("EXPLAIN SELECT * FROM flow_year_edge WHERE year = 2025")).scalars())
    assert "flow_year_edge_y2025" in plan and "flow_year_edge_default" not in plan and "_y2026" not in plan

    middle = _snapshot(private)
    _migrate(private, BEFORE, down=True)
    with private.connect() as c:
        assert not any(P.is_partitioned(c, s.table) for s in P.TABLES)
        assert P.partitions_of(c, "transfer_entry") == []
        pk = c.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'transfer_entry_pkey'"))
        assert pk.scalar() == "PRIMARY KEY (id)"
        fk = c.execute(text("SELECT count(*) FROM pg_constraint WHERE conrelid = 'flow_edge'::regclass AND contype = 'f'"))
        assert fk.scalar() == 1
    assert _snapshot(private) == middle
    _raises(private, "UPDATE audit_entry SET actor = 'someone else'", {}, "42501")
    _raises(private, "INSERT INTO transfer_entry (ledger_id, direction, day, code, stream, qty_kg, counterpart, "
            "counterpart_name, note) VALUES (:l, 'out', '2025-03-07', 'x', 'x', 1, 'x', '', '')",
            {"l": got["ledger"] + 999}, "23503")

    middle = _snapshot(private)  # the refused insert above spent a sequence value
    _migrate(private, "head")   # and up again: the round trip is repeatable
    assert _snapshot(private) == middle
    upgrade(private)            # the service's start: idempotent, this year's and next year's partitions exist
    with private.connect() as c:
        assert c.execute(text("SELECT to_regclass('transfer_entry_y' || extract(year FROM now())::int + 1)"
                              " IS NOT NULL")).scalar()


def test_sqlite_is_left_as_it_is(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    upgrade(engine)
    with engine.begin() as c:
        assert P.ensure_year(c, 2031) == []
        sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'transfer_entry'")).scalar()
    assert "PRIMARY KEY (id)" in sql
    engine.dispose()
