"""HTTP and CLI for indicators, lineage, fate, flows and balance on the hand-worked city."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nofei.storage.uow import UnitOfWork
from tests.flowfactory import CITY_UNITS, P1, P3, P4, add_unit, small_city, store_all


@pytest.fixture
def city(app):
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        for u, d, p, roles in CITY_UNITS:
            add_unit(uow.session, u, d, park=p, roles=roles)
        store_all(uow.session, small_city())


def test_indicators_json_shape_and_values(client, admin, city):
    r = client.get("/api/v1/indicators?year=2025&region=630100", headers=admin)
    assert r.status_code == 200, r.json
    body = r.json
    assert set(body) == {"year", "region", "indicators"}
    keys = [i["key"] for i in body["indicators"]]
    # issue 18 adds three keys (industrial_solid_waste_intensity, medical_collection_coverage_rate,
    # greenhouse_film_recovery_rate) and keeps every earlier one
    assert keys == ["general_industrial_utilisation_rate", "general_industrial_storage_disposal",
                    "general_industrial_intensity", "industrial_solid_waste_intensity", "hazardous_utilisation_rate",
                    "hazardous_utilisation_disposal_rate", "medical_central_disposal_rate",
                    "medical_collection_coverage_rate", "agricultural_film_recovery_rate",
                    "greenhouse_film_recovery_rate", "kitchen_waste_utilisation_rate", "manifest_execution_rate"]
    by = {i["key"]: i for i in body["indicators"]}
    assert by["hazardous_utilisation_disposal_rate"]["value"] == 78.57
    assert by["general_industrial_intensity"]["value"] is None and by["general_industrial_intensity"]["note"]
    # which are national ★ and which local
    assert {k for k, i in by.items() if i["national"]} == {
        "general_industrial_utilisation_rate", "general_industrial_storage_disposal",
        "industrial_solid_waste_intensity", "medical_collection_coverage_rate"}
    assert by["manifest_execution_rate"]["scope"] == "local" and by["medical_central_disposal_rate"]["scope"] == "local"
    assert by["hazardous_utilisation_rate"]["beside"]["social_source"]["generated_t"] == 0.0


def test_statistic_feeds_intensity(client, admin, city):
    r = client.put("/api/v1/statistics", json={"year": 2025, "region": "630100", "industrial_value_added": "8000"},
                   headers=admin)
    assert r.status_code == 200, r.json
    by = {i["key"]: i for i in client.get("/api/v1/indicators?year=2025", headers=admin).json["indicators"]}
    assert by["general_industrial_intensity"]["value"] == 0.05
    # (400 t general industrial + 30 t industrial hazardous) / 8000 万元 = 0.05375 → 0.0538 (half-even)
    assert by["industrial_solid_waste_intensity"]["value"] == 0.0538
    assert by["industrial_solid_waste_intensity"]["target"] == 0.87


def test_statistics_take_the_number_of_medical_institutions(client, admin, city):
    r = client.put("/api/v1/statistics", json={"year": 2025, "region": "630100", "medical_institutions": 4},
                   headers=admin)
    assert r.status_code == 200, r.json
    assert r.json == {"year": 2025, "region": "630100", "industrial_value_added": None, "medical_institutions": 4}
    r = client.put("/api/v1/statistics", json={"year": 2025, "region": "630100", "industrial_value_added": "8000"},
                   headers=admin)
    assert r.json["medical_institutions"] == 4  # left out = kept
    assert client.put("/api/v1/statistics", json={"year": 2025, "region": "630100"}, headers=admin).status_code == 422
    assert client.put("/api/v1/statistics", json={"year": 2025, "region": "630100", "medical_institutions": -1},
                      headers=admin).status_code == 422
    by = {i["key"]: i for i in client.get("/api/v1/indicators?year=2025", headers=admin).json["indicators"]}
    # the small city registers no medical_institution (H is industrial by default): 0 of 4
    assert (by["medical_collection_coverage_rate"]["value"], by["medical_collection_coverage_rate"]["denominator"]) \
        == (0.0, 4.0)


def test_access_rules(client, tokens, city):
    reg = tokens("regulator", district="630102")
    assert client.get("/api/v1/indicators?year=2025&region=630102", headers=reg).status_code == 200
    assert client.get("/api/v1/indicators?year=2025&region=630103", headers=reg).status_code == 403
    ent = tokens("enterprise", units=[P4])
    assert client.get("/api/v1/indicators?year=2025&region=630100", headers=ent).status_code == 200
    assert client.get("/api/v1/indicators?year=2025&region=630103", headers=ent).status_code == 403
    assert client.get("/api/v1/indicators/manifest_execution_rate/lineage?year=2025", headers=ent).status_code == 403
    assert client.get("/api/v1/flows?year=2025&stream=hazardous", headers=ent).status_code == 403
    r = client.get("/api/v1/fate?year=2025&stream=hazardous", headers=ent)
    assert r.status_code == 200 and [p["unit"] for p in r.json["producers"]] == [P4]
    assert client.get(f"/api/v1/balance?year=2025&unit={P3}", headers=ent).status_code == 404
    assert client.get(f"/api/v1/balance?year=2025&unit={P4}", headers=ent).status_code == 200
    assert client.get("/api/v1/indicators?year=2025").status_code == 401


def test_bad_input_is_422_or_404_never_500(client, admin, city):
    assert client.get("/api/v1/indicators?year=2025&region=nowhere", headers=admin).status_code == 422
    assert client.get("/api/v1/indicators", headers=admin).status_code == 422
    assert client.get("/api/v1/fate?year=2025&stream=plastic", headers=admin).status_code == 422
    assert client.get("/api/v1/indicators/bogus/lineage?year=2025", headers=admin).status_code == 404
    assert client.get("/api/v1/balance?year=2025&unit=XYZ", headers=admin).status_code == 404
    r = client.get("/api/v1/indicators?year=2030", headers=admin)  # no ledgers at all: every rate null
    assert r.status_code == 200 and all(i["value"] is None for i in r.json["indicators"]
                                        if i["unit"] == "%")


def test_lineage_flows_fate_balance_over_http(client, admin, city):
    r = client.get("/api/v1/indicators/general_industrial_utilisation_rate/lineage?year=2025&region=630102",
                   headers=admin)
    assert r.status_code == 200
    p1 = next(u for u in r.json["units"] if u["credit_code"] == P1)
    assert (p1["numerator"], p1["denominator"], p1["ledgers"][0]["month"]) == (60.0, 100.0, "2025-03")
    r = client.get("/api/v1/flows?year=2025&stream=general_industrial&region=630104", headers=admin)
    assert r.status_code == 200 and r.json["sankey"]["links"]
    r = client.get("/api/v1/fate?year=2025&stream=general_industrial", headers=admin)
    assert r.json["totals"]["utilised_t"] == 180.0
    r = client.get(f"/api/v1/balance?year=2025&unit={P3}", headers=admin)
    assert r.json["codes"][0]["months"][0]["residual"] == 0.0


def test_endpoints_are_in_the_openapi(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for p in ("/api/v1/indicators", "/api/v1/indicators/{key}/lineage", "/api/v1/fate", "/api/v1/flows",
              "/api/v1/balance"):
        assert p in paths, p


def test_cli_indicators_table_and_json(app, database_url, city):
    from api import cli as cli_mod

    if not cli_mod._loaded:
        cli_mod._load_command_modules()
        cli_mod._loaded = True
    r = CliRunner().invoke(cli_mod.cli, ["--database-url", database_url, "indicators", "--year", "2025",
                                         "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    by = {i["key"]: i for i in json.loads(r.output)["indicators"]}
    assert by["kitchen_waste_utilisation_rate"]["value"] == 70.0
    r = CliRunner().invoke(cli_mod.cli, ["--database-url", database_url, "indicators", "--year", "2025",
                                         "--region", "630103"], catch_exceptions=False)
    assert r.exit_code == 0 and "general_industrial_utilisation_rate" in r.output and "40.0" in r.output
    r = CliRunner().invoke(cli_mod.cli, ["--database-url", database_url, "indicators", "--year", "2025",
                                         "--region", "nowhere"])
    assert r.exit_code == 2
