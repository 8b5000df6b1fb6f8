"""Manifests through HTTP: the lifecycle as a state machine × every role, history, versions, list, export, import."""

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from nofei.domain.manifests import ACTIONS, STATUSES, allowed
from tests.factories import credit_code, register, sheet

CODE = "900-200-08"


@pytest.fixture
def world(client, admin, tokens):
    s = register(client, admin, district="630104", roles=["producer"])["credit_code"]
    r = register(client, admin, district="630102", roles=["disposer"],
                 permits=[{"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "1000"}])["credit_code"]
    c = register(client, admin, district="630105", roles=["carrier"])["credit_code"]
    o = register(client, admin, district="630104", roles=["producer"])["credit_code"]
    h = {
        "shipper": tokens("enterprise", units=[s]), "receiver": tokens("enterprise", units=[r]),
        "carrier": tokens("enterprise", units=[c]), "other": tokens("enterprise", units=[o]),
        "regulator_shipper_district": tokens("regulator", district="630104"),
        "regulator_elsewhere": tokens("regulator", district="630103"),
        "city": tokens("regulator", district="630100"), "admin": admin,
    }
    return {"s": s, "r": r, "c": c, "o": o, "h": h}


def _create(client, w, *, carrier=True, qty="10", lines=None):
    body = {"receiver": w["r"], "planned_date": "2024-03-04",
            "lines": lines or [{"waste_code": CODE, "quantity_t": qty, "planned_method": "D10"}]}
    if carrier:
        body["carrier"] = w["c"]
    r = client.post("/api/v1/manifests", json=body, headers=w["h"]["shipper"])
    assert r.status_code == 201, r.json
    return r.json


SHIP = {"vehicle": "青A12345", "driver": "张三", "time": "2024-03-04T09:00:00+08:00"}
RECEIVE = {"lines": [{"line_no": 1, "received_t": "10", "method": "D10"}], "time": "2024-03-05T10:00:00+08:00"}
REJECT = {"reason": "包装破损", "time": "2024-03-05T10:00:00+08:00"}
CORRECT = {"reason": "改车牌", "vehicle": "青A99999"}
BODIES = {"ship": SHIP, "receive": RECEIVE, "reject": REJECT, "correct": CORRECT}
PARTY = {"ship": "carrier", "receive": "receiver", "reject": "receiver", "correct": "shipper"}
ROLES = ["shipper", "receiver", "carrier", "other", "regulator_shipper_district", "regulator_elsewhere", "city",
         "admin"]
OUTSIDERS = ("other", "regulator_elsewhere")  # neither end nor the carrier is theirs: they cannot read it


def _bring_to(client, w, status):
    m = _create(client, w)
    no = m["number"]
    admin = w["h"]["admin"]
    if status == "submitted":
        return no
    assert client.post(f"/api/v1/manifests/{no}/ship", json=SHIP, headers=admin).status_code == 200
    if status == "in_transit":
        return no
    if status == "received":
        r = client.post(f"/api/v1/manifests/{no}/receive", json=RECEIVE, headers=admin)
    elif status == "rejected":
        r = client.post(f"/api/v1/manifests/{no}/reject", json=REJECT, headers=admin)
    else:
        r = client.post(f"/api/v1/manifests/{no}/reject", json={**REJECT, "lines": [
            {"line_no": 1, "received_t": "6", "method": "D10"}]}, headers=admin)
    assert r.status_code == 200 and r.json["status"] == status, r.json
    return no


@pytest.mark.parametrize("status", STATUSES)
def test_every_step_from_every_status_by_every_role(client, world, status):
    """The whole state machine: the right party in the right status succeeds; a wrong party who can read the
    manifest is 403, one who cannot is 404 (as for a number that does not exist); the right party out of order
    is 409 naming the current status; nothing changes on failure."""
    for action in ACTIONS:
        for role in ROLES:
            no = _bring_to(client, world, status)
            before = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["admin"]).json
            r = client.post(f"/api/v1/manifests/{no}/{action}", json=BODIES[action], headers=world["h"][role])
            is_party = role == "admin" or role == PARTY[action]
            if role in OUTSIDERS:
                assert (r.status_code, r.json["code"]) == (404, "unknown_manifest"), (action, role, status, r.json)
            elif not is_party:
                assert r.status_code == 403, (action, role, status, r.json)
            elif not allowed(action, status):
                assert r.status_code == 409, (action, role, status, r.json)
                assert status in r.json["message"] and r.json["code"] == "wrong_status"
            else:
                assert r.status_code == 200, (action, role, status, r.json)
            after = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["admin"]).json
            if r.status_code != 200:
                assert after == before


def test_shipper_carries_when_no_carrier_is_named(client, world):
    no = _create(client, world, carrier=False)["number"]
    h = world["h"]
    # a carrier the manifest does not name is an outsider to it: 404, as for a number that does not exist
    assert client.post(f"/api/v1/manifests/{no}/ship", json=SHIP, headers=h["carrier"]).status_code == 404
    r = client.post(f"/api/v1/manifests/{no}/ship", json=SHIP, headers=h["shipper"])
    assert r.status_code == 200 and r.json["status"] == "in_transit" and r.json["vehicle"] == "青A12345"


def test_number_is_year_region_serial(client, world):
    a = _create(client, world)["number"]
    b = _create(client, world)["number"]
    assert a == "2024" + world["s"][2:6] + "000001" and b.endswith("000002") and len(b) == 14


def test_only_the_shipper_creates(client, world):
    body = {"shipper": world["s"], "receiver": world["r"], "planned_date": "2024-03-04",
            "lines": [{"waste_code": CODE, "quantity_t": "1"}]}
    assert client.post("/api/v1/manifests", json=body, headers=world["h"]["other"]).status_code == 403
    assert client.post("/api/v1/manifests", json=body, headers=world["h"]["city"]).status_code == 403
    assert client.post("/api/v1/manifests", json=body, headers=world["h"]["admin"]).status_code == 201


def test_bad_create_names_every_field(client, world):
    r = client.post("/api/v1/manifests", json={"receiver": "91630104MA00000010", "planned_date": "2024-03-04",
                                               "lines": [{"waste_code": "SW01", "quantity_t": "0.0001"},
                                                         {"waste_code": CODE, "quantity_t": "1",
                                                          "planned_method": "Z9"}]},
                    headers=world["h"]["shipper"])
    assert r.status_code == 422
    assert {e["field"] for e in r.json["errors"]} == {"receiver", "lines.0.waste_code", "lines.0.quantity_t",
                                                      "lines.1.planned_method"}


def test_discrepancy_is_recorded_on_receipt(client, world):
    no = _bring_to(client, world, "in_transit")
    r = client.post(f"/api/v1/manifests/{no}/receive", json={"lines": [
        {"line_no": 1, "received_t": "9.4", "method": "D10"}]}, headers=world["h"]["receiver"])
    assert r.json["lines"][0]["discrepancy"] is True and r.json["discrepancy"] is True
    assert r.json["lines"][0]["received_t"] == 9.4


def test_partial_rejection_makes_a_linked_follow_on(client, world):
    no = _bring_to(client, world, "in_transit")
    r = client.post(f"/api/v1/manifests/{no}/reject", json={"reason": "超出许可", "lines": [
        {"line_no": 1, "received_t": "6.5", "method": "D10"}]}, headers=world["h"]["receiver"])
    assert r.status_code == 200 and r.json["status"] == "partially_received"
    assert r.json["lines"][0]["rejected_t"] == 3.5 and r.json["lines"][0]["discrepancy"] is False
    (fo,) = r.json["follow_ons"]
    f = client.get(f"/api/v1/manifests/{fo}", headers=world["h"]["shipper"]).json
    assert f["parent_number"] == no and f["status"] == "in_transit"
    assert f["receiver"]["credit_code"] == world["s"] and f["lines"][0]["quantity_t"] == 3.5
    # the shipper, as receiver of the returned load, takes it back into its storage (S, issue 16), not D10
    r2 = client.post(f"/api/v1/manifests/{fo}/receive", json={"lines": [{"line_no": 1, "received_t": "3.5",
                                                                          "method": "D10"}]},
                     headers=world["h"]["shipper"])
    assert r2.status_code == 422 and r2.json["errors"][0]["code"] == "return_storage_only"
    r2 = client.post(f"/api/v1/manifests/{fo}/receive", json={"lines": [{"line_no": 1, "received_t": "3.5"}]},
                     headers=world["h"]["shipper"])
    assert r2.status_code == 200 and r2.json["lines"][0]["method"] == "S"
    assert client.get(f"/api/v1/manifests/{no}", headers=world["h"]["shipper"]).json["follow_ons"] == [fo]


def test_full_rejection_to_another_destination(client, world):
    dest = register(client, world["h"]["admin"], district="630103", roles=["disposer"])["credit_code"]
    no = _bring_to(client, world, "in_transit")
    r = client.post(f"/api/v1/manifests/{no}/reject", json={**REJECT, "destination": dest},
                    headers=world["h"]["receiver"])
    assert r.json["status"] == "rejected" and r.json["lines"][0]["received_t"] == 0
    f = client.get(f"/api/v1/manifests/{r.json['follow_ons'][0]}", headers=world["h"]["admin"]).json
    assert f["receiver"]["credit_code"] == dest and f["lines"][0]["quantity_t"] == 10


def test_correction_is_a_new_version_and_keeps_the_old(client, world):
    no = _create(client, world)["number"]
    r = client.post(f"/api/v1/manifests/{no}/correct", json={"reason": "数量填错", "lines": [
        {"waste_code": CODE, "quantity_t": "12.5"}]}, headers=world["h"]["shipper"])
    assert r.status_code == 200 and r.json["version"] == 2 and r.json["lines"][0]["quantity_t"] == 12.5
    got = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["shipper"]).json
    assert [(v["version"], v["is_current"]) for v in got["versions"]] == [(1, False), (2, True)]
    assert [e["action"] for e in got["history"]] == ["create", "correct"]


def test_history_lists_every_step(client, world):
    no = _bring_to(client, world, "received")
    got = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["receiver"]).json
    assert [(e["action"], e["from_status"], e["to_status"]) for e in got["history"]] == [
        ("create", None, "submitted"), ("ship", "submitted", "in_transit"), ("receive", "in_transit", "received")]


def test_read_access_by_role(client, world):
    no = _create(client, world)["number"]
    h = world["h"]
    for role in ("shipper", "receiver", "carrier", "regulator_shipper_district", "city", "admin"):
        assert client.get(f"/api/v1/manifests/{no}", headers=h[role]).status_code == 200, role
    for role in ("other", "regulator_elsewhere"):
        assert client.get(f"/api/v1/manifests/{no}", headers=h[role]).status_code == 404, role
    assert client.get("/api/v1/manifests/20240000000000", headers=h["admin"]).status_code == 404


def test_list_filters_and_visibility(client, world, tokens):
    a = _create(client, world)["number"]
    b = _bring_to(client, world, "in_transit")
    h = world["h"]
    page = client.get("/api/v1/manifests", headers=h["shipper"]).json
    assert page["total"] == 2 and {m["number"] for m in page["items"]} == {a, b}
    assert client.get("/api/v1/manifests", query_string={"status": "in_transit"}, headers=h["city"]).json["total"] == 1
    assert client.get("/api/v1/manifests", headers=h["other"]).json["total"] == 0
    assert client.get("/api/v1/manifests", headers=h["regulator_elsewhere"]).json["total"] == 0
    recv_reg = tokens("regulator", district="630102")
    assert client.get("/api/v1/manifests", headers=recv_reg).json["total"] == 2
    assert client.get("/api/v1/manifests", query_string={"region": "630103"}, headers=h["admin"]).json["total"] == 0
    assert client.get("/api/v1/manifests", query_string={"code": CODE, "from": "2024-03-01", "to": "2024-03-31"},
                      headers=h["admin"]).json["total"] == 2
    assert client.get("/api/v1/manifests", query_string={"from": "2024-04-01"}, headers=h["admin"]).json["total"] == 0
    assert client.get("/api/v1/manifests", query_string={"unit": world["c"], "per_page": 1},
                      headers=h["admin"]).json["total"] == 2


def test_csv_and_xlsx_export(client, world):
    no = _create(client, world, lines=[{"waste_code": CODE, "quantity_t": "1.5"},
                                       {"waste_code": "900-201-08", "quantity_t": "2"}])["number"]
    r = client.get("/api/v1/manifests", query_string={"format": "csv"}, headers=world["h"]["shipper"])
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "联单编号" and len(rows) == 3 and rows[1][0] == no and rows[2][14] == "2"
    r = client.get("/api/v1/manifests", query_string={"format": "xlsx"}, headers=world["h"]["shipper"])
    ws = load_workbook(io.BytesIO(r.data)).active
    vals = list(ws.values)
    assert vals[1][0] == no and vals[1][14] == "1.5" and len(vals) == 3


def _xlsx(rows):
    return sheet(rows)


HEAD = ["分组", "接收单位统一社会信用代码", "承运单位统一社会信用代码", "计划转移日期", "废物代码", "数量（吨）", "拟利用处置方式"]


def test_import_creates_manifests_grouping_lines(client, world):
    data = _xlsx([HEAD, ["A", world["r"], world["c"], date(2024, 5, 6), CODE, 1.25, "D10"],
                  ["A", world["r"], world["c"], date(2024, 5, 6), "900-201-08", 2, "D10"],
                  [None, world["r"], None, "2024-05-07", CODE, "3", None]])
    r = client.post("/api/v1/manifests/import", data={"file": (io.BytesIO(data), "m.xlsx")},
                    headers=world["h"]["shipper"])
    assert r.status_code == 201, r.json
    assert r.json["created"] == 2
    m = client.get(f"/api/v1/manifests/{r.json['numbers'][0]}", headers=world["h"]["shipper"]).json
    assert [ln["quantity_t"] for ln in m["lines"]] == [1.25, 2.0]


def test_import_pins_every_bad_row_to_its_cell_and_stores_nothing(client, world):
    data = _xlsx([HEAD, [None, world["r"], None, "2024-05-07", "XX-1", "3", None],
                  [None, "BAD", None, "2024-05-07", CODE, "-1", "Q1"]])
    r = client.post("/api/v1/manifests/import", data={"file": (io.BytesIO(data), "m.xlsx")},
                    headers=world["h"]["shipper"])
    assert r.status_code == 422
    cells = {(e["row"], e["column"], e["code"]) for e in r.json["errors"]}
    assert cells == {(2, "E", "unknown_code"), (3, "B", "bad_credit_code"), (3, "F", "bad_quantity"),
                     (3, "G", "unknown_method")}
    assert client.get("/api/v1/manifests", headers=world["h"]["admin"]).json["total"] == 0


def test_import_refuses_non_xlsx(client, world):
    r = client.post("/api/v1/manifests/import", data=b"a,b\n1,2", headers=world["h"]["shipper"])
    assert r.status_code == 415


def test_a_fresh_credit_code_shape_is_accepted_as_unregistered_receiver(client, world):
    stranger = credit_code("632100")
    r = client.post("/api/v1/manifests", json={"receiver": stranger, "planned_date": "2024-03-04",
                                               "lines": [{"waste_code": CODE, "quantity_t": "1"}]},
                    headers=world["h"]["shipper"])
    assert r.status_code == 201 and r.json["receiver"]["registered"] is False


def test_anomaly_list_over_http(client, world):
    no = _bring_to(client, world, "in_transit")
    h = world["h"]
    q = {"year": 2024, "kind": "receipt_overdue", "as_of": "2024-04-01T00:00:00+08:00"}
    r = client.get("/api/v1/anomalies", query_string=q, headers=h["city"])
    assert r.status_code == 200, r.json
    assert r.json["total"] == 1 and r.json["items"][0]["manifests"] == [no]
    assert r.json["items"][0]["mass_t"] == 10 and r.json["summary"]["receipt_overdue"]["count"] == 1
    assert client.get("/api/v1/anomalies", query_string=q, headers=h["regulator_elsewhere"]).json["total"] == 0
    assert client.get("/api/v1/anomalies", query_string={**q, "kind": "nope"}, headers=h["city"]).status_code == 422


@pytest.mark.parametrize("action", ACTIONS)
def test_a_step_by_an_outsider_looks_like_a_missing_number(client, world, action):
    """Sequential numbers are guessable: for a caller who cannot read the manifest, a step on a real number
    answers exactly like one on a number that does not exist (404, same code), and changes nothing."""
    no = _bring_to(client, world, "in_transit")
    fake = no[:-6] + "999999"
    for role in OUTSIDERS:
        real = client.post(f"/api/v1/manifests/{no}/{action}", json=BODIES[action], headers=world["h"][role])
        missing = client.post(f"/api/v1/manifests/{fake}/{action}", json=BODIES[action], headers=world["h"][role])
        assert (real.status_code, real.json["code"]) == (missing.status_code, missing.json["code"]) \
            == (404, "unknown_manifest"), (role, real.json, missing.json)
        assert world["s"] not in real.get_data(as_text=True)
    got = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["admin"]).json
    assert got["status"] == "in_transit" and got["version"] == 1


def test_a_regulator_who_can_read_it_still_may_not_take_a_step(client, world):
    no = _bring_to(client, world, "in_transit")
    for role in ("regulator_shipper_district", "city"):
        assert client.get(f"/api/v1/manifests/{no}", headers=world["h"][role]).status_code == 200
        r = client.post(f"/api/v1/manifests/{no}/receive", json=RECEIVE, headers=world["h"][role])
        assert (r.status_code, r.json["code"]) == (403, "not_your_step"), r.json


@pytest.mark.parametrize("role", ["regulator_shipper_district", "regulator_elsewhere", "city"])
def test_regulators_may_not_import_and_the_file_is_not_read(client, world, role):
    """403 for the whole request, before parsing: a valid workbook and garbage get the same answer."""
    valid = _xlsx([HEAD, ["A", world["r"], None, date(2024, 5, 6), CODE, 1, "D10"]])
    for body in (valid, b"not a workbook at all"):
        r = client.post("/api/v1/manifests/import", headers=world["h"][role], content_type="multipart/form-data",
                        data={"file": (io.BytesIO(body), "m.xlsx")})
        assert (r.status_code, r.json["code"]) == (403, "not_a_shipper"), r.json
    assert client.get("/api/v1/manifests", headers=world["h"]["admin"]).json["total"] == 0


def test_openapi_documents_the_exports_and_decimal_strings(client):
    spec = client.get("/api/v1/openapi.json").json
    content = spec["paths"]["/api/v1/manifests"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} \
        <= set(content)
    schemas = spec["components"]["schemas"]
    for name, f in (("ManifestLineIn", "quantity_t"), ("ManifestReceiveLineIn", "received_t"),
                    ("ManifestReceiveLineIn", "rejected_t")):
        p = schemas[name]["properties"][f]
        assert p["type"] == "string" and "minimum" not in p and "maximum" not in p, (name, f, p)


def test_decimal_strings_still_bound_the_quantities(client, world):
    for qty, status in (("10000001", 422), ("-1", 422), ("0", 422), ("abc", 422), (2.5, 201), ("2.5", 201)):
        body = {"receiver": world["r"], "planned_date": "2024-03-04",
                "lines": [{"waste_code": CODE, "quantity_t": qty}]}
        r = client.post("/api/v1/manifests", json=body, headers=world["h"]["shipper"])
        assert r.status_code == status, (qty, r.json)
