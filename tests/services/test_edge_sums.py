"""A streamed upload's flow-edge summary is summed while the workbook is read (``EdgeSums``, issue 17 B1):
it must equal, row for row, what the SQL GROUP BY over the stored transfer rows gives (the path every other
write takes), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy import select

from nofei.domain.transfer_columns import EdgeSums, TransferBlock
from nofei.storage import flowstore
from tests.factories import register
from tests.imports.ledger_builders import ME, RECV, SENDER, balanced_sheets, workbook

DAY = date(2025, 3, 7)


def test_sums_of_blocks_by_hand():
    b = TransferBlock("out", "转出", [2, 3, 4], [DAY] * 3, ["900-041-49", "900-041-49", "SW01"],
                      ["hazardous", "hazardous", "general_industrial"], [8000, 500, 5000], [RECV] * 3, ["接收单位"] * 3,
                      ["20250300000001", "2025030000001", None], [None] * 3, ["D10", "D10", "R4"], [""] * 3)
    e = EdgeSums()
    e.add(b)
    e.add(b)  # a second chunk of the same edges adds up
    assert sorted(e.rows()) == [
        ("out", "general_industrial", "SW01", RECV, "R4", 10_000, 2, 0),
        ("out", "hazardous", "900-041-49", RECV, "D10", 17_000, 4, 2),  # the 13-digit number is not well formed
    ]


def test_streamed_upload_writes_the_summary_the_sql_would(client, admin, tokens, engine, monkeypatch):
    register(client, admin, code=ME, name="测试化工有限公司")
    register(client, admin, code=RECV, name="接收单位", roles=["disposer"])
    s = balanced_sheets(DAY)
    out = s["转出"]
    out[1][3] = 5  # 900-041-49: 5 t + 3 t on one edge, one of them citing a 13-digit number
    out.append([DAY, "2025030000009", "900-041-49", 3, "吨", RECV, "接收单位", None, "D10", None])
    out.append([DAY, "20250300000003", "900-041-49", 0.25, "吨", RECV, "接收单位", None, None, None])
    s["利用处置"][1][2] = 2.75  # keeps the balance: 1.5 + 10 + 2 - 8.25 - 2.75 = 2.5
    called: list[object] = []
    monkeypatch.setattr(flowstore, "summarise_ledgers", lambda *a, **k: called.append(a))
    r = client.post("/api/v1/ledgers", headers=tokens("enterprise", units=[ME]),
                    data={"file": (io.BytesIO(workbook(s)), "台账.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    assert called == []  # the streamed path summed the rows itself
    lid = r.get_json()["id"]
    with engine.connect() as conn:
        stored = sorted((tuple(x) for x in conn.execute(
            select(*(flowstore.FE.c[c] for c in flowstore._COLS)).where(flowstore.FE.c.ledger_id == lid))), key=repr)
        expected = sorted((tuple(x) for x in conn.execute(
            flowstore._summary_select(conn.dialect.name, flowstore.TX.c.ledger_id == lid))), key=repr)
    assert stored == expected
    assert ("out", "hazardous", "900-041-49", RECV, "D10") in {x[2:7] for x in stored}
    by = {x[2:7]: x[7:] for x in stored}
    assert by[("out", "hazardous", "900-041-49", RECV, "D10")] == (8000, 2, 1)
    assert by[("out", "hazardous", "900-041-49", RECV, None)] == (250, 1, 1)
    assert by[("in", "hazardous", "900-041-49", SENDER, None)] == (2000, 1, 0)
