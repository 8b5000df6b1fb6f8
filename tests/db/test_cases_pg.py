"""Casework on PostgreSQL: concurrent first reads of a year open each case once, and two regulators acting on
one case at once are serialised (the row lock), so the thread and the status agree."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from nofei.storage.tables import CaseEventRow, CaseRow
from tests.api.test_cases_api import world
from tests.db.test_concurrency import together

pytestmark = pytest.mark.postgres


def test_concurrent_syncs_open_each_case_once(app, client, admin, tokens):
    world(client, admin, tokens)
    world(client, admin, tokens)
    reg = tokens("regulator", district="630104")
    results = together([lambda: client.application.test_client().get("/api/v1/cases?year=2024", headers=reg)
                        for _ in range(8)])
    assert {r.status_code for r in results} == {200}
    assert len({r.json["total"] for r in results}) == 1
    with app.extensions["nofei.sessions"]() as s:
        keys = Counter(k for (k,) in s.execute(select(CaseRow.key)))
        raises = Counter(cid for (cid,) in s.execute(select(CaseEventRow.case_id).where(CaseEventRow.action == "raise")))
    assert keys and max(keys.values()) == 1 and set(raises.values()) == {1}


def test_two_closes_at_once_one_wins(app, client, admin, tokens):
    world(client, admin, tokens)
    reg = tokens("regulator", district="630104")
    cid = client.get("/api/v1/cases?year=2024&kind=receipt_overdue", headers=reg).json["items"][0]["id"]
    results = together([lambda: client.application.test_client().post(
        f"/api/v1/cases/{cid}/events", json={"action": "close", "text": "结案"}, headers=reg) for _ in range(4)])
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    with app.extensions["nofei.sessions"]() as s:
        closes = s.execute(select(CaseEventRow).where(CaseEventRow.case_id == cid,
                                                      CaseEventRow.action == "close")).scalars().all()
    assert len(closes) == 1
