"""Issue 17 item 7 on SQLite (the PostgreSQL run is ``tests/db/test_concurrency.py``): byte-identical uploads
released together store one version; every other gets the duplicate receipt."""

from __future__ import annotations

from sqlalchemy import func, select

from nofei.storage.tables import AuditRow
from tests.db.test_concurrency import chain_ok, identical_uploads


def test_simultaneous_identical_uploads_store_one_version_sqlite(app, client, admin, tokens):
    resps, rows = identical_uploads(app, client, admin, tokens, n=6)
    assert all(r.status_code in (200, 201) for r in resps), [r.json for r in resps][:2]
    assert [v for (v,) in rows] == [1]
    assert sorted(r.json["duplicate"] for r in resps) == [False] + [True] * 5
    with app.extensions["nofei.sessions"]() as s:
        assert s.execute(select(func.count()).select_from(AuditRow)
                         .where(AuditRow.action == "ledger.submit")).scalar_one() == 1
    assert chain_ok(app)
