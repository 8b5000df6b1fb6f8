"""The foundation through the Flask client: health, auth, units registry, catalogue, errors, OpenAPI."""

import re

import pytest

from tests.factories import credit_code, register, unit_payload


def test_health_needs_no_token(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.json["status"] == "ok"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_every_other_endpoint_needs_a_valid_token(client, header):
    h = {"Authorization": header} if header else {}
    r = client.get("/api/v1/units", headers=h)
    assert r.status_code == 401
    assert r.json["code"] == "unauthenticated" and r.json["status"] == 401 and r.json["errors"] == []


def test_register_and_read_a_unit(client, admin):
    body = unit_payload("630104", roles=["producer", "utiliser"],
                        permits=[{"number": "QH-01", "waste_codes": ["HW08", "900-041-49"], "methods": ["r9"],
                                  "capacity_t": "1200.5"}])
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 201
    assert r.json["permits"][0]["methods"] == ["R9"] and r.json["permits"][0]["capacity_t"] == "1200.5"
    got = client.get(f"/api/v1/units/{body['credit_code']}", headers=admin).json
    assert got["roles"] == ["producer", "utiliser"] and got["district"] == "630104"


def test_duplicate_unit_is_409(client, admin):
    body = unit_payload()
    assert client.post("/api/v1/units", json=body, headers=admin).status_code == 201
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 409 and r.json["code"] == "duplicate_unit"


def test_bad_credit_code_and_district_are_422_naming_fields(client, admin):
    body = unit_payload()
    body["credit_code"] = body["credit_code"][:-1] + ("0" if body["credit_code"][-1] != "0" else "1")
    body["district"] = "639999"
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 422
    assert {(e["field"], e["code"]) for e in r.json["errors"]} == {("credit_code", "bad_credit_code"),
                                                                   ("district", "unknown_district")}
    assert client.get("/api/v1/units", headers=admin).json["total"] == 0


def test_malformed_json_fields_are_422_with_field_names(client, admin):
    r = client.post("/api/v1/units", json={"credit_code": 5, "roles": ["boss"]}, headers=admin)
    assert r.status_code == 422
    assert {"credit_code", "name", "district", "roles.0"} <= {e["field"] for e in r.json["errors"]}


def test_patch_unit_changes_fields_and_keeps_identity(client, admin):
    u = register(client, admin)
    r = client.patch(f"/api/v1/units/{u['credit_code']}", json={"name": "新名称", "roles": ["collector"]}, headers=admin)
    assert r.status_code == 200 and r.json["name"] == "新名称" and r.json["roles"] == ["collector"]
    assert client.patch("/api/v1/units/91630104MA0000099X", json={"name": "x"}, headers=admin).status_code == 404


def test_roles_see_only_what_they_may(client, admin, tokens):
    a = register(client, admin, district="630104")
    b = register(client, admin, district="630102")
    ent = tokens("enterprise", units=[a["credit_code"]])
    reg_b = tokens("regulator", district="630102")
    city = tokens("regulator", district="630100")
    assert [u["credit_code"] for u in client.get("/api/v1/units", headers=ent).json["items"]] == [a["credit_code"]]
    assert [u["credit_code"] for u in client.get("/api/v1/units", headers=reg_b).json["items"]] == [b["credit_code"]]
    assert client.get("/api/v1/units", headers=city).json["total"] == 2
    assert client.get(f"/api/v1/units/{b['credit_code']}", headers=ent).status_code == 404
    # neither may register units
    for h in (ent, reg_b, city):
        r = client.post("/api/v1/units", json=unit_payload(), headers=h)
        assert r.status_code == 403 and r.json["code"] == "forbidden"


def test_revoked_token_is_refused(client, admin, tokens):
    t = client.post("/api/v1/tokens", json={"role": "regulator", "district": "630104"}, headers=admin).json
    h = {"Authorization": f"Bearer {t['token']}"}
    assert client.get("/api/v1/units", headers=h).status_code == 200
    assert client.delete(f"/api/v1/tokens/{t['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/units", headers=h).status_code == 401
    listed = client.get("/api/v1/tokens", headers=admin).json
    assert all("token_hash" not in x and "token" not in x for x in listed)


def test_enterprise_token_needs_a_registered_unit(client, admin):
    r = client.post("/api/v1/tokens", json={"role": "enterprise", "units": [credit_code()]}, headers=admin)
    assert r.status_code == 422 and r.json["errors"][0]["code"] == "unknown_unit"


def test_catalogue_endpoints(client, admin):
    codes = client.get("/api/v1/catalogue/waste-codes?stream=medical", headers=admin).json
    assert {c["code"] for c in codes} >= {"841-001-01", "841-002-01"} and {c["stream"] for c in codes} == {"medical"}
    assert client.get("/api/v1/catalogue/waste-codes?stream=bogus", headers=admin).status_code == 422
    # issue 18: the complete 2021 名录 with 危险特性 and edition; 841-006-01 … do not exist
    assert {c["code"] for c in codes} == {f"841-00{i}-01" for i in range(1, 6)}
    hw = client.get("/api/v1/catalogue/waste-codes?stream=hazardous&year=2026", headers=admin).json
    assert len(hw) == 462
    by = {c["code"]: c for c in hw}
    assert (by["900-052-31"]["hazard"], by["900-052-31"]["edition"]) == ("T，C", 2021)
    sw = client.get("/api/v1/catalogue/waste-codes?stream=general_industrial", headers=admin).json
    assert {c["edition"] for c in sw} == {None} and {c["hazard"] for c in sw} == {None}
    methods = {m["code"]: m["class"] for m in client.get("/api/v1/catalogue/methods", headers=admin).json}
    assert methods["C1"] == "disposal" and methods["R4"] == "utilisation"
    kinds = {d["code"]: d["kind"] for d in client.get("/api/v1/catalogue/districts", headers=admin).json}
    assert kinds["630100"] == "city" and kinds["630121"] == "county" and kinds["GANHE"] == "park"


def test_statistics_need_admin_and_valid_region(client, admin, tokens):
    body = {"year": 2025, "region": "630100", "industrial_value_added": "1234567.8"}
    assert client.put("/api/v1/statistics", json=body, headers=admin).status_code == 200
    assert client.put("/api/v1/statistics", json={**body, "region": "999"}, headers=admin).status_code == 422
    assert client.put("/api/v1/statistics", json=body, headers=tokens("regulator", district="630100")).status_code == 403


def test_unknown_paths_and_methods_answer_in_the_envelope(client, admin):
    r = client.get("/api/v1/nothing", headers=admin)
    assert r.status_code == 404 and r.json["code"] == "not_found"
    r = client.delete("/api/v1/units", headers=admin)
    assert r.status_code == 405 and r.json["status"] == 405


def test_openapi_documents_every_route(client, app):
    spec = client.get("/api/v1/openapi.json").json
    documented = {p for p in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") and rule.rule != "/api/v1/openapi.json":
            path = re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)
            assert path in documented, path
    assert client.get("/api/docs").status_code == 200


def test_request_id_is_echoed(client):
    r = client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
