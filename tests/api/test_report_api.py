"""GET /api/v1/reports/annual in its three formats, its access rules, and ``nofei report``."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from openpyxl import load_workbook

from tests.factories import register


def test_annual_report_json_has_every_section(client, admin):
    code = register(client, admin, district="630104")["credit_code"]
    r = client.get("/api/v1/reports/annual?year=2024", headers=admin)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["year"] == 2024 and body["region"] == "630100" and body["region_name"] == "西宁市"
    assert len(body["indicators"]) == 12  # nine, and issue 18 adds three
    for k in ("trends", "tonnage", "fate", "sankey", "anomalies", "completeness", "districts"):
        assert k in body
    assert [c["unit"] for c in body["completeness"]] == [code]


def test_annual_report_xlsx_opens_with_frozen_headers(client, admin):
    r = client.get("/api/v1/reports/annual?year=2024&format=xlsx", headers=admin)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    assert "指标" in wb.sheetnames and "填报完整性" in wb.sheetnames
    assert all(wb[s].freeze_panes == "A2" for s in wb.sheetnames if s != "说明")


def test_annual_report_html_is_self_contained(client, admin):
    r = client.get("/api/v1/reports/annual?year=2024&format=html", headers=admin)
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "年度“无废城市”建设报告" in page and "<svg" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<script" not in page
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_annual_report_access_and_validation(client, admin, tokens):
    assert client.get("/api/v1/reports/annual?year=2024").status_code == 401
    reg = tokens("regulator", district="630102")
    assert client.get("/api/v1/reports/annual?year=2024&region=630102", headers=reg).status_code == 200
    r = client.get("/api/v1/reports/annual?year=2024&region=630104", headers=reg)
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert client.get("/api/v1/reports/annual?year=2024", headers=reg).status_code == 403
    r = client.get("/api/v1/reports/annual?year=2024&region=999999", headers=admin)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "region"
    r = client.get("/api/v1/reports/annual?year=2024&format=pdf", headers=admin)
    assert r.status_code == 422
    assert client.get("/api/v1/reports/annual", headers=admin).status_code == 422


def test_report_is_in_the_openapi(client):
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/reports/annual" in spec["paths"]


def test_cli_report_writes_each_format(app, settings, tmp_path):
    from api.cli import _load_command_modules, cli

    _load_command_modules()
    runner = CliRunner()
    for fmt in ("json", "xlsx", "html"):
        out = tmp_path / f"r.{fmt}"
        res = runner.invoke(cli, ["--database-url", settings["DATABASE_URL"], "report", "--year", "2024",
                                  "--format", fmt, "--output", str(out)])
        assert res.exit_code == 0, res.output
        assert out.stat().st_size > 0
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["year"] == 2024
    load_workbook(tmp_path / "r.xlsx")
    res = runner.invoke(cli, ["--database-url", settings["DATABASE_URL"], "report", "--year", "2024",
                              "--region", "nowhere", "--output", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "region" in res.output


def test_report_figures_are_the_indicator_endpoints_figures(app, client, admin):
    """The report adds no arithmetic of its own: every figure equals GET /api/v1/indicators, city and districts."""
    from tests.e2e.test_browser import _seed

    seed = _seed(app)
    rep = client.get("/api/v1/reports/annual?year=2025", headers=admin).json
    ind = client.get("/api/v1/indicators?year=2025&region=630100", headers=admin).json
    assert {i["key"]: i["value"] for i in rep["indicators"]} == {i["key"]: i["value"] for i in ind["indicators"]}
    west = client.get("/api/v1/indicators?year=2025&region=630104", headers=admin).json
    row = next(d for d in rep["districts"] if d["district"] == "630104")
    assert row["values"] == {i["key"]: i["value"] for i in west["indicators"]}
    assert rep["engine"] == "ok"
    gi = next(t for t in rep["tonnage"] if t["stream"] == "general_industrial" and t["level"] == "region")
    assert gi["generated_t"] == 10.0  # one month of 10 t from the seeded plant
    assert any(lk["target"] == "U" for lk in rep["sankey"]["general_industrial"]["links"])
    plant = next(c for c in rep["completeness"] if c["unit"] == seed["plant"]["credit_code"])
    assert "2025-02" in plant["reported_months"] and "2025-02" not in plant["missing_months"]
