"""Faults that really happen: the database connection cut mid-transaction (``pg_terminate_backend`` from
a second session), the database refusing connections for a while, a worker killed mid-write.

Each must end in a 503 envelope (never a 500 or a hang), leave nothing half written, and the service
must serve again as soon as the database is back (``pool_pre_ping``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from nofei.storage import audit
from nofei.storage.tables import (
    AuditRow,
    LedgerFileRow,
    LedgerRow,
    PermitRow,
    StockEntryRow,
    TransferEntryRow,
    TreatmentEntryRow,
    UnitRow,
)
from tests.conftest import PG_URL
from tests.factories import unit_payload

pytestmark = pytest.mark.postgres

PERMIT = {"number": "QH-F1", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "10"}


@pytest.fixture
def killer():
    """A second session, on the ``postgres`` maintenance database so that it survives cutting ours."""
    url = make_url(PG_URL).set(database="postgres")
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    yield eng
    eng.dispose()


def dbname() -> str:
    return make_url(PG_URL).database or ""


def terminate(killer, pid: int) -> None:
    with killer.connect() as k:
        assert k.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        for _ in range(100):
            if not k.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).first():
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} still alive")


LEDGER_TABLES = (LedgerRow, LedgerFileRow, StockEntryRow, TreatmentEntryRow, TransferEntryRow, AuditRow)


def counts(app, tables=(UnitRow, PermitRow, AuditRow)) -> tuple[int, ...]:
    with app.extensions["nofei.sessions"]() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one() for t in tables)


def chain_ok(app) -> bool:
    with app.extensions["nofei.sessions"]() as s:
        return audit.verify(s).ok


@contextmanager
def cut_when(app, killer, when: str):
    """Terminate the request's own backend at ``when``: the first INSERT of the transaction, the audit
    INSERT (everything else already flushed), or the COMMIT."""
    engine = app.extensions["nofei.engine"]
    fired: list[int] = []

    def pid_of(conn) -> int:
        return conn.connection.dbapi_connection.info.backend_pid

    def on_execute(conn, cursor, statement, params, context, executemany):
        s = statement.lstrip().upper()
        hit = (when == "first-insert" and s.startswith("INSERT")) or \
              (when == "audit-insert" and s.startswith("INSERT INTO AUDIT_ENTRY"))
        if hit and not fired:
            fired.append(pid_of(conn))
            terminate(killer, fired[0])

    def on_commit(conn):
        if when == "commit" and not fired:
            fired.append(pid_of(conn))
            terminate(killer, fired[0])

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


@pytest.mark.parametrize("when", ["first-insert", "audit-insert", "commit"])
def test_connection_cut_mid_transaction_is_503_with_nothing_written_then_recovers(app, client, admin, killer, when):
    before = counts(app)
    body = unit_payload("630104", permits=[PERMIT])
    with cut_when(app, killer, when) as fired:
        r = client.post("/api/v1/units", json=body, headers={**admin, "X-Request-ID": "cut-1"})
    assert fired, "the cut never happened"
    assert r.status_code == 503, r.json
    assert r.json["code"] == "unavailable" and r.json["request_id"] == "cut-1"
    assert counts(app) == before  # no unit, no permit, no audit entry
    assert chain_ok(app)
    # the pool threw the dead connection away: the very next request works, and the write goes through
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 201, r.json
    assert counts(app) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert chain_ok(app)


def test_every_pooled_connection_killed_the_next_request_reconnects(app, client, admin, killer):
    """A database restart kills every idle pooled connection; ``pool_pre_ping`` must notice, not the client."""
    assert client.get("/api/v1/units", headers=admin).status_code == 200
    with killer.connect() as k:
        n = k.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname()}).scalar()
    assert n >= 1
    time.sleep(0.2)
    for _ in range(3):
        r = client.get("/api/v1/units", headers=admin)
        assert r.status_code == 200, r.json


def test_database_refusing_connections_is_503_and_the_service_recovers(app, client, admin, killer):
    body = unit_payload("630102")
    before = counts(app)
    name = dbname()
    try:
        with killer.connect() as k:
            k.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            k.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
        time.sleep(0.2)
        for method, path, kw in (("get", "/api/v1/units", {}), ("post", "/api/v1/units", {"json": body}),
                                 ("get", "/api/v1/audit/verify", {})):
            r = getattr(client, method)(path, headers=admin, **kw)
            assert r.status_code == 503, (path, r.status_code, r.get_data(as_text=True)[:300])
            assert r.json["code"] == "unavailable" and r.json["request_id"]
        h = client.get("/api/v1/health")
        assert h.status_code == 503 and h.json["status"] == "unavailable"
    finally:
        with killer.connect() as k:
            k.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    assert client.get("/api/v1/health").json["status"] == "ok"
    assert counts(app) == before
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 201, r.json


def ledger_world(client, admin, tokens):
    from tests.factories import register
    from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

    register(client, admin, code=ME, district="630104")
    register(client, admin, code=RECV, district="630105", roles=["disposer"])
    return tokens("enterprise", units=[ME]), workbook(balanced_sheets())


def post_ledger(client, headers, data: bytes, **kw):
    import io

    return client.post("/api/v1/ledgers", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "ledger.xlsx")}, **kw)


@pytest.mark.parametrize("when", ["first-insert", "audit-insert", "commit"])
def test_connection_cut_during_a_ledger_upload_is_503_and_stores_nothing(app, client, admin, tokens, killer, when):
    ent, data = ledger_world(client, admin, tokens)
    before = counts(app, LEDGER_TABLES)
    with cut_when(app, killer, when) as fired:
        r = post_ledger(client, {**ent, "X-Request-ID": "cut-ledger"}, data)
    assert fired and r.status_code == 503, r.json
    assert r.json["code"] == "unavailable" and r.json["request_id"] == "cut-ledger"
    assert counts(app, LEDGER_TABLES) == before  # no version, no file, no rows, no audit entry
    assert chain_ok(app)
    r = post_ledger(client, ent, data)  # the same file again: accepted as version 1
    assert r.status_code == 201 and r.json["version"] == 1, r.json
    after = counts(app, LEDGER_TABLES)
    assert after[0] == before[0] + 1 and all(a > b for a, b in zip(after[2:], before[2:], strict=True))


WORKER = textwrap.dedent("""
    import base64, io, json, os, sys, time
    from sqlalchemy import event
    from api import create_app

    app = create_app({"DATABASE_URL": os.environ["URL"], "LOG_LEVEL": "ERROR"})

    @event.listens_for(app.extensions["nofei.engine"], "commit")
    def _hang(conn):
        print("READY", flush=True)  # everything is flushed; the transaction is open
        time.sleep(600)

    h = {"Authorization": "Bearer " + os.environ["TOKEN"]}
    if os.environ["KIND"] == "unit":
        app.test_client().post("/api/v1/units", json=json.loads(os.environ["BODY"]), headers=h)
    else:
        app.test_client().post("/api/v1/ledgers", headers=h, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(base64.b64decode(os.environ["BODY"])), "l.xlsx")})
""")


@pytest.mark.parametrize("kind", ["unit", "ledger"])
def test_worker_killed_mid_write_leaves_nothing(app, client, admin, tokens, killer, kind):
    """SIGKILL the process holding an open write transaction (a unit registration, a ledger upload with
    every row flushed): the database rolls it back and frees its locks (the audit chain's advisory lock
    and the unit row lock included)."""
    import base64
    import json

    if kind == "unit":
        tables = (UnitRow, PermitRow, AuditRow)
        body = unit_payload("630104", permits=[PERMIT])
        env = {**os.environ, "KIND": kind, "URL": PG_URL, "BODY": json.dumps(body), "TOKEN": admin["Authorization"][7:]}
    else:
        tables = LEDGER_TABLES
        ent, data = ledger_world(client, admin, tokens)
        env = {**os.environ, "KIND": kind, "URL": PG_URL, "BODY": base64.b64encode(data).decode(),
               "TOKEN": ent["Authorization"][7:]}
    before = counts(app, tables)
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "READY", line
        with killer.connect() as k:  # its transaction is really open in the database
            held = k.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                                  "AND state = 'idle in transaction'"), {"d": dbname()}).scalar()
        assert held >= 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # PostgreSQL sees the socket close and aborts the transaction; poll until the backend is gone
    with killer.connect() as k:
        for _ in range(200):
            if not k.execute(text("SELECT 1 FROM pg_stat_activity WHERE datname = :d AND state = 'idle in transaction'"),
                             {"d": dbname()}).first():
                break
            time.sleep(0.05)
    assert counts(app, tables) == before
    assert chain_ok(app)
    if kind == "unit":  # no lock left behind
        r = client.post("/api/v1/units", json=body, headers=admin)
    else:
        r = post_ledger(client, ent, data)
    assert r.status_code == 201, r.json
