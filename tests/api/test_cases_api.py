"""The case API (issue 13): list with totals, one case with its thread, steps with their 4xx answers."""

from __future__ import annotations

from tests.factories import register

SHIP = {"vehicle": "青A12345", "driver": "张三", "time": "2024-03-04T09:00:00+08:00"}
PERMIT = [{"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "1000"}]


def world(client, admin, tokens):
    s = register(client, admin, district="630104")["credit_code"]
    r = register(client, admin, district="630102", roles=["disposer"], permits=PERMIT)["credit_code"]
    body = {"shipper": s, "receiver": r, "planned_date": "2024-03-04",
            "lines": [{"waste_code": "900-200-08", "quantity_t": "2", "planned_method": "D10"}]}
    no = client.post("/api/v1/manifests", json=body, headers=admin).json["number"]
    assert client.post(f"/api/v1/manifests/{no}/ship", json=SHIP, headers=admin).status_code == 200
    return s, r, no


def test_a_case_is_worked_to_an_end_through_the_api(client, admin, tokens):
    s, r, no = world(client, admin, tokens)
    reg = tokens("regulator", district="630104")
    ent = tokens("enterprise", units=[s])
    page = client.get("/api/v1/cases?year=2024&kind=receipt_overdue", headers=reg).json
    assert page["total"] == 1 and page["counts"] == {"open": 1, "notified": 0, "responded": 0, "closed": 0}
    case = page["items"][0]
    assert case["manifests"] == [no] and case["kind_zh"] == "超过5个工作日未确认接收"
    assert "notify" in case["actions"] and "respond" not in case["actions"]
    # the anomaly list names its case
    an = client.get("/api/v1/anomalies?year=2024&kind=receipt_overdue", headers=reg).json["items"][0]
    assert (an["case_id"], an["status"]) == (case["id"], "open")

    url = f"/api/v1/cases/{case['id']}/events"
    r1 = client.post(url, json={"action": "notify", "text": "请说明", "due": "2025-01-10"}, headers=reg)
    assert r1.status_code == 201 and r1.json["status"] == "notified" and r1.json["due"] == "2025-01-10"
    bad = client.post(url, json={"action": "respond"}, headers=ent)
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "text"
    forbidden = client.post(url, json={"action": "close"}, headers=ent)
    assert forbidden.status_code == 403 and forbidden.json["code"]
    ok = client.post(url, json={"action": "respond", "text": "已接收", "link": f"manifest:{no}"}, headers=ent)
    assert ok.status_code == 201 and ok.json["status"] == "responded"
    assert ok.json["events"][-1]["link"] == f"manifest:{no}" and ok.json["events"][-1]["action_zh"] == "企业答复"
    done = client.post(url, json={"action": "close", "text": "核实"}, headers=reg)
    assert done.status_code == 201 and done.json["status"] == "closed"
    again = client.post(url, json={"action": "close"}, headers=reg)
    assert again.status_code == 409 and again.json["code"] == "wrong_status"
    unknown = client.post(url, json={"action": "delete"}, headers=reg)
    assert unknown.status_code == 422
    closed = client.get("/api/v1/cases?year=2024&kind=receipt_overdue&status=closed", headers=reg).json
    assert closed["total"] == 1 and closed["counts"]["closed"] == 1
    audit = client.get(f"/api/v1/audit?object=case:{case['id']}", headers=admin).json["items"]
    assert [e["action"] for e in audit] == ["case.notify", "case.respond", "case.close"]


def test_a_missing_case_and_a_foreign_one_answer_alike(client, admin, tokens):
    s, r, no = world(client, admin, tokens)
    cid = client.get("/api/v1/cases?year=2024&kind=receipt_overdue", headers=admin).json["items"][0]["id"]
    outsider = tokens("regulator", district="630106")
    a = client.get(f"/api/v1/cases/{cid}", headers=outsider)
    b = client.get("/api/v1/cases/999999", headers=outsider)
    assert (a.status_code, a.json["code"]) == (b.status_code, b.json["code"]) == (404, "unknown_case")
