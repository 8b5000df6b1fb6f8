"""Casework pages (issue 13): a regulator works a case the enterprise answered on 我的待办; the unit directory
and profile; who may open which page."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from openpyxl import load_workbook

from tests.api.test_cases_api import world
from tests.api.test_web_pages import csrf_of, sign_in


def test_a_regulator_closes_a_case_the_enterprise_answered_on_its_todo_page(app, admin, tokens):
    c0 = app.test_client()
    s, r, no = world(c0, admin, tokens)
    reg, ent = app.test_client(), app.test_client()
    sign_in(reg, tokens("regulator", district="630104", name="西区监管"))
    sign_in(ent, tokens("enterprise", units=[r], name="接收方"))

    page = reg.get("/cases?year=2024&kind=receipt_overdue").get_data(as_text=True)
    assert "超过5个工作日未确认接收" in page and "待处理" in page and "测试单位" in page
    cid = int(re.findall(r'href="/cases/(\d+)"', page)[0])
    case = reg.get(f"/cases/{cid}").get_data(as_text=True)
    assert f'href="/manifests/{no}"' in case and "系统立案" in case
    r1 = reg.post(f"/cases/{cid}", data={"csrf_token": csrf_of(case), "action": "notify", "text": "请说明原因",
                                          "due": "2025-01-10"})
    assert r1.status_code == 302

    todo = ent.get("/todo").get_data(as_text=True)
    assert "需要答复的案件" in todo and f"案件 #{cid}" in todo and "已通知企业" in todo
    r2 = ent.post(f"/cases/{cid}", data={"csrf_token": csrf_of(todo), "action": "respond", "next": "todo",
                                          "text": "车辆故障，次日已接收", "link": f"manifest:{no}"})
    assert r2.status_code == 302 and r2.headers["Location"].endswith("/todo")
    bad = ent.post(f"/cases/{cid}", data={"csrf_token": csrf_of(todo), "action": "close", "text": "x"})
    assert bad.status_code == 403 and "无权" in bad.get_data(as_text=True)

    case = reg.get(f"/cases/{cid}").get_data(as_text=True)
    assert "企业已答复" in case and "车辆故障" in case and "结案（已解决）" in case
    r3 = reg.post(f"/cases/{cid}", data={"csrf_token": csrf_of(case), "action": "close", "text": "核实无误"})
    assert r3.status_code == 302
    closed = reg.get("/cases?year=2024&status=closed").get_data(as_text=True)
    assert f"#{cid}" in closed and "已结案" in closed
    empty = reg.post(f"/cases/{cid}", data={"csrf_token": csrf_of(case), "action": "waive", "text": ""})
    assert empty.status_code in (409, 422)

    x = reg.get("/cases/export.xlsx?year=2024&kind=receipt_overdue")
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.data)).active
    assert ws["A1"].value == "案件编号" and ws["A2"].value == cid and ws["C2"].value == "已结案"


def test_other_districts_and_enterprises_cannot_open_the_case(app, admin, tokens):
    c0 = app.test_client()
    s, r, no = world(c0, admin, tokens)
    cid = c0.get("/api/v1/cases?year=2024&kind=receipt_overdue", headers=admin).json["items"][0]["id"]
    outside, stranger, named = app.test_client(), app.test_client(), app.test_client()
    sign_in(outside, tokens("regulator", district="630106"))
    sign_in(stranger, tokens("enterprise", units=[c0.post("/api/v1/units", headers=admin, json={
        "credit_code": "91630104MA0000123X", "name": "x", "district": "630104"}).json.get("credit_code", s)]))
    sign_in(named, tokens("enterprise", units=[s]))
    assert outside.get(f"/cases/{cid}").status_code == 404
    assert not re.findall(r'href="/cases/\d+"', outside.get("/cases?year=2024").get_data(as_text=True))
    assert named.get("/cases").status_code == 403  # the list is the regulator's; the enterprise has 我的待办
    assert named.get(f"/cases/{cid}").status_code == 200


def test_the_unit_directory_and_profile(app, admin, tokens):
    c0 = app.test_client()
    s, r, no = world(c0, admin, tokens)
    reg = app.test_client()
    sign_in(reg, tokens("regulator", district="630104"))
    d = reg.get("/units?q=测试").get_data(as_text=True)
    assert s in d and r not in d  # the receiver is in another district
    from nofei.storage.tables import LedgerRow, UnitRow
    from nofei.storage.uow import UnitOfWork

    with UnitOfWork(app.extensions["nofei.sessions"]) as u:  # a filed March and an amended May (totals in kg)
        uid = u.session.query(UnitRow).filter_by(credit_code=s).one().id
        for month, version, kg in (("2024-03", 1, 1500), ("2024-05", 2, 250)):
            u.session.add(LedgerRow(unit_id=uid, month=month, year=2024, version=version, is_current=True,
                                    sha256=f"{month}{version}".ljust(64, "0"), uploaded_at=datetime.now(UTC),
                                    totals={"hazardous": {"generated": kg}}))
        u.session.commit()
    prof = reg.get(f"/units/{s}?year=2024").get_data(as_text=True)
    assert "2024 年月度台账" in prof and no in prof and "产生单位" in prof
    assert "产生 1.500 t" in prof and "已更正" in prof and "产生 0.250 t" in prof and "逐月产生量趋势" in prof
    assert reg.get(f"/units/{r}").status_code == 404


def test_pages_answer_a_missing_page_in_chinese(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404 and r.mimetype == "text/html" and "未找到" in r.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code in (401, 404) and api.mimetype == "application/json"
