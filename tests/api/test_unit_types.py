"""Issue 18: ``unit_type`` and the ≤ 19-bed clinic mark are registry fields of POST/PATCH /units and the OpenAPI."""

from __future__ import annotations

from tests.factories import unit_payload


def test_unit_type_defaults_to_industrial_and_can_change(client, admin):
    body = unit_payload()
    r = client.post("/api/v1/units", json=body, headers=admin)
    assert r.status_code == 201, r.json
    assert (r.json["unit_type"], r.json["small_clinic"]) == ("industrial", False)
    cc = r.json["credit_code"]
    r = client.patch(f"/api/v1/units/{cc}", json={"unit_type": "medical_institution", "small_clinic": True},
                     headers=admin)
    assert r.status_code == 200, r.json
    assert (r.json["unit_type"], r.json["small_clinic"]) == ("medical_institution", True)
    # no longer a medical institution: the clinic mark goes with it
    r = client.patch(f"/api/v1/units/{cc}", json={"unit_type": "social_source"}, headers=admin)
    assert (r.json["unit_type"], r.json["small_clinic"]) == ("social_source", False)
    assert client.get(f"/api/v1/units/{cc}", headers=admin).json["unit_type"] == "social_source"


def test_bad_unit_types_are_refused_naming_the_field(client, admin):
    r = client.post("/api/v1/units", json={**unit_payload(), "unit_type": "farm"}, headers=admin)
    assert r.status_code == 422 and "unit_type" in str(r.json)
    r = client.post("/api/v1/units", json={**unit_payload(), "unit_type": "licensed", "small_clinic": True},
                    headers=admin)
    assert r.status_code == 422 and "small_clinic" in str(r.json)


def test_the_openapi_documents_unit_type_and_the_indicator_scopes(client):
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    unit_in = next(v for k, v in schemas.items() if k.startswith("UnitIn"))
    assert set(unit_in["properties"]["unit_type"]["enum"]) == {"industrial", "social_source", "medical_institution",
                                                               "licensed"}
    ind = next(v for k, v in schemas.items() if k.startswith("IndicatorOut"))
    assert "industrial_solid_waste_intensity 工业固体废物产生强度 ★ (national)" in ind["properties"]["key"]["description"]
    assert "manifest_execution_rate 危险废物转移电子联单执行率 (local)" in ind["properties"]["key"]["description"]
    stat = next(v for k, v in schemas.items() if k.startswith("StatisticIn"))
    assert "medical_institutions" in stat["properties"]
