"""Concurrency on PostgreSQL through the real app (a connection pool, one thread per client, started
together at a barrier): numbers are never repeated, versions have no gap or duplicate, and of two
conflicting steps on one manifest exactly one wins while the other gets 409."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from nofei.storage import audit
from nofei.storage.tables import AuditRow, ManifestEventRow, ManifestRow
from tests.factories import register

pytestmark = pytest.mark.postgres

N = 20
CODE = "900-200-08"
SHIP = {"vehicle": "青A12345", "driver": "张三", "time": "2024-03-04T09:00:00+08:00"}
RECEIVE = {"lines": [{"line_no": 1, "received_t": "10", "method": "D10"}], "time": "2024-03-05T10:00:00+08:00"}
REJECT = {"reason": "包装破损", "time": "2024-03-05T10:00:00+08:00"}


def together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released at the same instant; return results in call order (or raise)."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(10)
            out[i] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung (deadlock?)"
    if errors:
        raise errors[0]
    return out


def chain_ok(app) -> bool:
    with app.extensions["nofei.sessions"]() as s:
        return audit.verify(s).ok


@pytest.fixture
def world(client, admin, tokens):
    s = register(client, admin, district="630104", roles=["producer"])["credit_code"]
    r = register(client, admin, district="630102", roles=["disposer"],
                 permits=[{"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "100000"}])
    return {"s": s, "r": r["credit_code"], "shipper": tokens("enterprise", units=[s]),
            "receiver": tokens("enterprise", units=[r["credit_code"]]), "admin": admin}


def new_manifest(client, w, headers=None) -> Any:
    body = {"receiver": w["r"], "planned_date": "2024-03-04",
            "lines": [{"waste_code": CODE, "quantity_t": "10", "planned_method": "D10"}]}
    return client.post("/api/v1/manifests", json=body, headers=headers or w["shipper"])


def test_simultaneous_manifest_creation_never_repeats_a_number(app, world):
    resps = together([lambda: new_manifest(app.test_client(), world) for _ in range(N)])
    assert [r.status_code for r in resps] == [201] * N, [r.json for r in resps if r.status_code != 201][:2]
    numbers = [r.json["number"] for r in resps]
    assert len(set(numbers)) == N
    serials = sorted(int(n[-6:]) for n in numbers)
    assert serials == list(range(serials[0], serials[0] + N))  # and no gap either
    with app.extensions["nofei.sessions"]() as s:
        stored = s.execute(select(ManifestRow.number)).scalars().all()
    assert Counter(stored) == Counter(numbers)
    assert chain_ok(app)


@pytest.mark.parametrize("pair", [("receive", "reject"), ("receive", "receive"), ("reject", "reject")])
def test_simultaneous_steps_on_one_manifest_exactly_one_wins(app, client, world, pair):
    rounds = 6
    numbers = []
    for _ in range(rounds):
        no = new_manifest(client, world).json["number"]
        assert client.post(f"/api/v1/manifests/{no}/ship", json=SHIP, headers=world["admin"]).status_code == 200
        numbers.append(no)
    bodies = {"receive": RECEIVE, "reject": REJECT}
    for no in numbers:
        resps = together([
            (lambda a=a: app.test_client().post(f"/api/v1/manifests/{no}/{a}", json=bodies[a],
                                                headers=world["receiver"]))
            for a in pair])
        codes = sorted(r.status_code for r in resps)
        assert codes == [200, 409], [r.json for r in resps]
        loser = next(r for r in resps if r.status_code == 409)
        assert loser.json["code"] != "internal_error" and loser.json["request_id"]
        winner = next(r for r in resps if r.status_code == 200)
        assert client.get(f"/api/v1/manifests/{no}", headers=world["admin"]).json["status"] == winner.json["status"]
    with app.extensions["nofei.sessions"]() as s:
        steps = s.execute(select(func.count()).select_from(ManifestEventRow)
                          .where(ManifestEventRow.action.in_(["receive", "reject"]))).scalar_one()
        audited = s.execute(select(func.count()).select_from(AuditRow)
                            .where(AuditRow.action.in_(["manifest.receive", "manifest.reject"]))).scalar_one()
    assert steps == rounds and audited == rounds  # the loser left no trace
    assert chain_ok(app)


def test_twenty_simultaneous_uploads_for_one_unit_and_month_are_versions_1_to_20(app, client, admin, tokens):
    """Each upload is a different file for the same unit and month (issue 3: a new version, never an
    overwrite); the unit row lock in the ledger store must hand out 1..20 with no gap or duplicate."""
    import io

    from nofei.storage.tables import LedgerRow
    from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

    register(client, admin, code=ME, district="630104")
    register(client, admin, code=RECV, district="630105", roles=["disposer"])
    ent = tokens("enterprise", units=[ME])

    def upload(i: int):
        sheets = balanced_sheets()
        sheets["填报信息"][3] = ["填报人", f"填报人{i}"]
        return app.test_client().post("/api/v1/ledgers", headers=ent, content_type="multipart/form-data",
                                      data={"file": (io.BytesIO(workbook(sheets)), f"l{i}.xlsx")})

    resps = together([lambda i=i: upload(i) for i in range(N)])
    assert [r.status_code for r in resps] == [201] * N, [r.json for r in resps if r.status_code != 201][:2]
    assert sorted(r.json["version"] for r in resps) == list(range(1, N + 1))
    with app.extensions["nofei.sessions"]() as s:
        rows = s.execute(select(LedgerRow.version, LedgerRow.is_current).where(LedgerRow.month == "2025-03")).all()
        audited = s.execute(select(func.count()).select_from(AuditRow)
                            .where(AuditRow.object.like("ledger%"))).scalar_one()
    assert sorted(v for v, _ in rows) == list(range(1, N + 1))
    assert [v for v, cur in rows if cur] == [N]  # exactly one current: the last
    assert audited >= N
    assert chain_ok(app)


def test_simultaneous_registration_of_one_credit_code_one_201_the_rest_409(app, admin):
    """The existence check and the insert race; the unique constraint decides, and the losers get 409
    (a conflict), not 503 (the database is fine) or 500."""
    from tests.factories import unit_payload

    body = unit_payload("630104")
    resps = together([lambda: app.test_client().post("/api/v1/units", json=body, headers=admin) for _ in range(8)])
    codes = sorted(r.status_code for r in resps)
    assert codes == [201] + [409] * 7, [r.json for r in resps]
    assert all(r.json["code"] in ("conflict", "duplicate_unit") for r in resps if r.status_code == 409)
    assert chain_ok(app)


def identical_uploads(app, client, admin, tokens, n: int = 10) -> tuple[list[Any], list[Any]]:
    """``n`` byte-identical uploads of one ledger, released together (issue 17, item 7): the store's answer."""
    import io

    from nofei.storage.tables import LedgerRow
    from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

    register(client, admin, code=ME, district="630104")
    register(client, admin, code=RECV, district="630105", roles=["disposer"])
    ent = tokens("enterprise", units=[ME])
    data = workbook(balanced_sheets())

    def upload():
        return app.test_client().post("/api/v1/ledgers", headers=ent, content_type="multipart/form-data",
                                      data={"file": (io.BytesIO(data), "same.xlsx")})

    resps = together([upload for _ in range(n)])
    with app.extensions["nofei.sessions"]() as s:
        rows = s.execute(select(LedgerRow.version).where(LedgerRow.month == "2025-03")).all()
    return resps, rows


def test_simultaneous_identical_uploads_store_one_version(app, client, admin, tokens):
    """Issue 17 item 7: the duplicate check must run under the unit lock, or a double click stores 8 copies."""
    resps, rows = identical_uploads(app, client, admin, tokens)
    assert all(r.status_code in (200, 201) for r in resps), [r.json for r in resps][:2]
    assert [v for (v,) in rows] == [1]
    assert sorted(r.json["duplicate"] for r in resps) == [False] + [True] * 9
    assert {r.json["version"] for r in resps} == {1}
    with app.extensions["nofei.sessions"]() as s:
        audited = s.execute(select(func.count()).select_from(AuditRow)
                            .where(AuditRow.action == "ledger.submit")).scalar_one()
    assert audited == 1
    assert chain_ok(app)
