"""Issue 17 item 10: the audit chain is anchored. Rewriting an entry and recomputing every digest after it,
or deleting the newest entries, used to verify; now the MAC (key outside the database) and the signed
checkpoints catch both, and PostgreSQL refuses UPDATE/DELETE on ``audit_entry`` outright."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError

from nofei.storage import audit
from nofei.storage.engine import is_postgres
from nofei.storage.tables import AuditRow
from tests.factories import register


@pytest.fixture
def five(client, admin):
    for d in ("630104", "630102", "630104", "630105"):
        register(client, admin, district=d)
    with client.application.extensions["nofei.sessions"]() as s:
        assert audit.verify(s).ok and audit.verify(s).entries == 5  # the admin token + four units
    return 5


def superuser(c) -> None:
    """As the database's superuser (past the append-only trigger): what the key and checkpoints must survive."""
    if is_postgres(c):
        c.exec_driver_sql("SET LOCAL session_replication_role = replica")


def verify(app, *cps: str) -> dict:
    from ledgers import audit_trail
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        return audit_trail.verify_chain(uow=uow, actor=SYSTEM, checkpoints=cps)


def test_rewriting_an_entry_and_recomputing_the_rest_does_not_verify(app, client, admin, five):
    """The attacker knows the algorithm (it is in the source) but not the key: the recomputed chain's links
    and digests all hold, and the MAC of the rewritten entry does not."""
    with app.extensions["nofei.sessions"]() as s:
        superuser(s.connection())
        rows = s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars().all()
        prev = audit.GENESIS
        for r in rows:
            if r.seq == 3:
                r.detail = {**r.detail, "name": "另一个单位"}
            r.prev_digest = prev
            r.digest = audit.digest_of(prev, r)
            prev = r.digest
        s.commit()
    res = verify(app)
    assert (res["ok"], res["broken_at"], res["entries"]) == (False, 3, 2) and "MAC" in res["reason"]
    # and a MAC made with another key is no better
    with app.extensions["nofei.sessions"]() as s:
        superuser(s.connection())
        r = s.execute(select(AuditRow).where(AuditRow.seq == 3)).scalar_one()
        r.mac = audit.mac_of(b"a guessed key, not the real one", r.digest)
        s.commit()
    assert verify(app)["broken_at"] == 3


def test_deleting_the_newest_entries_is_caught_by_a_checkpoint(app, client, admin, five, cli):
    run = CliRunner().invoke
    url = app.config["DATABASE_URL"]
    r = run(cli, ["--database-url", url, "audit", "checkpoint"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    line = r.output.strip().splitlines()[-1]
    cp = audit.Checkpoint.parse(line.split()[-1])
    with app.extensions["nofei.sessions"]() as s:
        head = s.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one()  # type: ignore[union-attr]
    assert (cp.seq, cp.digest) == (5, head.digest)
    assert verify(app, str(cp))["ok"] is True
    with app.extensions["nofei.engine"].begin() as c:
        superuser(c)
        c.execute(delete(AuditRow).where(AuditRow.seq >= 4))
    assert verify(app)["ok"] is True  # the chain alone cannot tell: that is why checkpoints exist
    res = verify(app, str(cp))
    assert (res["ok"], res["entries"], res["broken_at"]) == (False, 3, 5) and "truncated" in res["reason"]
    r = run(cli, ["--database-url", url, "audit", "verify", "--checkpoint", str(cp)], catch_exceptions=False)
    assert r.exit_code == 1 and "BROKEN" in r.output and "truncated" in r.output
    # a checkpoints file, as `nofei audit checkpoint >> FILE` writes it
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("# checkpoints\n" + line + "\n")
    r = run(cli, ["--database-url", url, "audit", "verify", "--json", "--checkpoints-file", f.name],
            catch_exceptions=False)
    assert r.exit_code == 1 and json.loads(r.output.strip().splitlines()[-1])["broken_at"] == 5


def test_a_forged_checkpoint_is_refused(app, client, admin, five):
    with app.extensions["nofei.sessions"]() as s:
        real = audit.checkpoint(s)
    forged = audit.Checkpoint(real.seq + 10, real.digest, real.mac)
    res = verify(app, str(forged))
    assert res["ok"] is False and "signature" in res["reason"]
    with pytest.raises(ValueError):
        verify(app, "5:abc:def")


def test_the_cli_checkpoint_and_the_api_verify_use_one_key(app, client, admin, five, cli):
    """``nofei serve`` and ``nofei audit`` resolve the same key (here the default file beside the database)."""
    r = CliRunner().invoke(cli, ["--database-url", app.config["DATABASE_URL"], "audit", "verify"],
                           catch_exceptions=False)
    assert r.exit_code == 0 and "5 entries" in r.output
    assert client.get("/api/v1/audit/verify", headers=admin).json["ok"] is True


@pytest.mark.postgres
def test_postgresql_refuses_update_and_delete_of_audit_entries(app, client, admin, five):
    eng = app.extensions["nofei.engine"]
    for stmt in ("UPDATE audit_entry SET action = 'x' WHERE seq = 2", "DELETE FROM audit_entry WHERE seq = 5"):
        with pytest.raises(DBAPIError) as ei, eng.begin() as c:
            c.execute(text(stmt))
        assert "append-only" in str(ei.value)
    assert verify(app) == {"ok": True, "entries": 5, "broken_at": None, "reason": "", "checkpoints": 0}
