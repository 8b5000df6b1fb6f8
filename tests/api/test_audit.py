"""The audit trail over HTTP and the CLI: who sees which entries, filters, and a changed row is caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from nofei.storage.tables import AuditRow
from tests.factories import register


@pytest.fixture
def trail(client, admin):
    """Three unit registrations in two districts and one unit change: entries 1..4 after the admin token."""
    a = register(client, admin, district="630104")
    b = register(client, admin, district="630102")
    c = register(client, admin, district="630104")
    r = client.patch(f"/api/v1/units/{a['credit_code']}", json={"name": "改名单位"},
                     headers={**admin, "X-Request-ID": "req-audit-patch"})
    assert r.status_code == 200
    return {"a": a["credit_code"], "b": b["credit_code"], "c": c["credit_code"]}


def entries(client, headers, **q):
    r = client.get("/api/v1/audit", query_string={"per_page": 1000, **q}, headers=headers)
    assert r.status_code == 200, r.json
    return r.json


def as_db_superuser(c) -> None:
    """Act as an attacker holding the database's superuser: PostgreSQL's append-only trigger is skipped
    (``session_replication_role = replica``), so only the MAC and the checkpoints can catch the change."""
    if c.dialect.name == "postgresql":
        c.exec_driver_sql("SET LOCAL session_replication_role = replica")


def tamper(app, seq: int, **values):
    with app.extensions["nofei.engine"].begin() as c:
        as_db_superuser(c)
        c.execute(update(AuditRow).where(AuditRow.seq == seq).values(**values))


def test_every_write_is_an_entry_in_chain_order(client, admin, trail):
    page = entries(client, admin)
    actions = [(e["action"], e["object"]) for e in page["items"]]
    assert ("unit.create", f"unit:{trail['a']}") in actions
    assert ("unit.update", f"unit:{trail['a']}") in actions
    assert [e["seq"] for e in page["items"]] == list(range(1, page["total"] + 1))
    for prev, e in zip(page["items"], page["items"][1:], strict=False):
        assert e["prev_digest"] == prev["digest"]
    assert all(len(e["digest"]) == 64 for e in page["items"])
    # entries written through HTTP carry the request id of the request that wrote them
    assert all(e["request_id"] for e in page["items"] if e["object"].startswith("unit:"))


def test_filters_by_object_actor_and_time(client, admin, trail):
    mine = entries(client, admin, object=f"unit:{trail['a']}")["items"]
    assert [e["action"] for e in mine] == ["unit.create", "unit.update"]
    assert mine[1]["request_id"] == "req-audit-patch" and mine[1]["district"] == "630104"
    units = entries(client, admin, object="unit:*")["items"]
    assert len(units) == 4 and all(e["object"].startswith("unit:") for e in units)
    label = units[0]["actor"]
    assert entries(client, admin, actor=label)["total"] == 4
    assert entries(client, admin, actor="admin:nobody")["total"] == 0
    now = datetime.now(UTC)
    assert entries(client, admin, **{"from": (now + timedelta(hours=1)).isoformat()})["total"] == 0
    assert entries(client, admin, to=(now - timedelta(hours=1)).isoformat())["total"] == 0
    everything = entries(client, admin)["total"]
    today_cst = (now + timedelta(hours=8)).date().isoformat()  # dates are read in China Standard Time
    assert entries(client, admin, **{"from": today_cst, "to": today_cst})["total"] == everything
    r = client.get("/api/v1/audit", query_string={"from": "yesterday"}, headers=admin)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "from"


def test_paging(client, admin, trail):
    p1 = client.get("/api/v1/audit", query_string={"per_page": 2, "page": 1}, headers=admin).json
    p2 = client.get("/api/v1/audit", query_string={"per_page": 2, "page": 2}, headers=admin).json
    assert p1["total"] == p2["total"] >= 4
    assert [e["seq"] for e in p1["items"]] == [1, 2] and [e["seq"] for e in p2["items"]] == [3, 4]


def test_regulators_see_their_district_the_city_sees_all_enterprises_none(client, admin, tokens, trail):
    total = entries(client, admin)["total"]
    west = entries(client, tokens("regulator", district="630104"))["items"]
    assert west and {e["district"] for e in west} == {"630104"}
    assert {e["object"] for e in west} == {f"unit:{trail['a']}", f"unit:{trail['c']}"}
    other = entries(client, tokens("regulator", district="630102"))["items"]
    assert {e["object"] for e in other} == {f"unit:{trail['b']}"}
    # filtering cannot widen the view
    assert entries(client, tokens("regulator", district="630102"), object=f"unit:{trail['a']}")["total"] == 0
    # entries without a district (token creations: three regulators above, and the city's own) are city-level
    assert entries(client, tokens("regulator", district="630100"))["total"] == total + 4
    ent = tokens("enterprise", units=[trail["a"]])
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        r = client.get(path, headers=ent)
        assert r.status_code == 403 and r.json["code"] == "forbidden"
        assert client.get(path).status_code == 401


def test_verify_is_ok_then_names_the_first_changed_row(app, client, admin, trail):
    r = client.get("/api/v1/audit/verify", headers=admin)
    assert r.status_code == 200
    n = r.json["entries"]
    assert r.json == {"ok": True, "entries": n, "broken_at": None, "reason": ""} and n >= 4
    tamper(app, 3, detail={"name": "someone else"})
    tamper(app, 4, action="unit.delete")
    r = client.get("/api/v1/audit/verify", headers=tokens_reg(client, app))
    assert r.json["ok"] is False and r.json["broken_at"] == 3 and r.json["entries"] == 2
    assert "digest" in r.json["reason"]


def tokens_reg(client, app):
    """A regulator token made straight through the use case (appending to the broken chain is fine)."""
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        t = registry.create_token(uow=uow, actor=SYSTEM, role="regulator", district="630100")
    return {"Authorization": f"Bearer {t.token}"}


def test_verify_detects_a_deleted_entry_and_a_rewritten_link(app, client, admin, trail):
    with app.extensions["nofei.engine"].begin() as c:
        as_db_superuser(c)
        c.execute(delete(AuditRow).where(AuditRow.seq == 2))
    r = client.get("/api/v1/audit/verify", headers=admin).json
    assert (r["ok"], r["broken_at"], r["reason"]) == (False, 2, "missing entry")


def test_recomputing_one_digest_is_caught_by_its_mac(app, client, admin, trail):
    """An attacker who fixes the changed row's own digest cannot fix its MAC (the key is not in the database)."""
    from nofei.storage import audit

    with app.extensions["nofei.sessions"]() as s:
        as_db_superuser(s.connection())
        row = s.execute(select(AuditRow).where(AuditRow.seq == 2)).scalar_one()
        row.action = "unit.delete"
        row.digest = audit.digest_of(row.prev_digest, row)
        s.commit()
    r = client.get("/api/v1/audit/verify", headers=admin).json
    assert (r["ok"], r["broken_at"]) == (False, 2) and "MAC" in r["reason"]


def test_cli_audit_verify(app, database_url, cli, trail):
    run = CliRunner().invoke
    r = run(cli, ["--database-url", database_url, "audit", "verify"], catch_exceptions=False)
    assert r.exit_code == 0 and "ok" in r.output
    tamper(app, 2, object="unit:000000000000000000")
    r = run(cli, ["--database-url", database_url, "audit", "verify"], catch_exceptions=False)
    assert r.exit_code == 1 and "BROKEN at entry 2" in r.output
    r = run(cli, ["--database-url", database_url, "audit", "verify", "--json"], catch_exceptions=False)
    assert r.exit_code == 1 and json.loads(r.output.strip().splitlines()[-1])["broken_at"] == 2


def test_the_api_offers_no_way_to_change_the_trail(client, admin, trail):
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/api/v1/audit", headers=admin).status_code == 405
