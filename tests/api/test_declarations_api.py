"""The declarations over HTTP, the CLI and the pages: contracts, the xlsx layout, overrides, errors (issue 14)."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from openpyxl import load_workbook

from api import cli as cli_mod
from nofei.storage.uow import UnitOfWork
from tests.api.test_web_pages import sign_in
from tests.factories import register
from tests.flowfactory import draft, store_all
from tests.services.test_declarations import OIL, W, q1_drafts

A_NAME = "=HYPERLINK(\"http://x\",\"点我\")"


def _city(app, client, admin):
    from tests.services import test_declarations as t

    register(client, admin, code=t.A, district="630102", name=A_NAME)
    register(client, admin, code=t.R, district="630104", roles=["disposer"], permits=[
        {"number": "P-HW-001", "waste_codes": ["HW49", "HW08"], "methods": ["D10"], "capacity_t": "5000"}])
    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        store_all(uow.session, [draft(t.A, "2024-03", stocks=[(W, 0, 120, 0)], out=[(W, t.R, 120)]), *q1_drafts()])
    return t.A, t.R


def test_tier_contract_and_override_over_http(app, client, admin, tokens):
    a, r = _city(app, client, admin)
    got = client.get(f"/api/v1/units/{a}/tier?year=2025", headers=admin)
    assert got.status_code == 200, got.json
    assert set(got.json) >= {"tier", "tier_zh", "reason", "figures"}
    assert (got.json["tier"], got.json["tier_zh"], got.json["figures"]["annual_t"]) == ("key", "重点监管", "120.000")
    reg = tokens("regulator", district="630102")
    bad = client.put(f"/api/v1/units/{a}/tier", json={"year": 2025, "tier": "medium", "reason": "x"}, headers=reg)
    assert bad.status_code == 422 and bad.json["errors"][0]["field"].endswith("tier")
    put = client.put(f"/api/v1/units/{a}/tier", json={"year": 2025, "tier": "simplified", "reason": "核查后调整"},
                     headers=reg)
    assert put.status_code == 200 and put.json["tier"] == "simplified"
    assert client.get(f"/api/v1/units/{a}/tier?year=2025", headers=admin).json["tier"] == "simplified"
    audit = client.get("/api/v1/audit", headers=admin, query_string={"per_page": 1000}).json["items"]
    assert any(e["action"] == "tier.override" and e["object"] == f"unit:{a}" for e in audit)
    assert client.delete(f"/api/v1/units/{a}/tier?year=2025", headers=reg).status_code == 204
    assert client.delete(f"/api/v1/units/{a}/tier?year=2025", headers=reg).status_code == 404
    assert client.get(f"/api/v1/units/{a}/tier?year=2025", headers=admin).json["tier"] == "key"


def test_declaration_json_has_exact_strings_and_the_contract_fields(app, client, admin):
    a, r = _city(app, client, admin)
    got = client.get(f"/api/v1/units/{a}/declarations?period=2025-Q1", headers=admin)
    assert got.status_code == 200, got.json
    d = got.json
    assert (d["table"], d["tier"]) == ("C.2", "key")
    w = next(x for x in d["rows"] if x["code"] == W)
    assert set(w) == {"code", "name", "category", "hazard", "generated_t", "own", "entrusted", "stock_open_t",
                      "stock_close_t", "gaps"}
    assert (w["generated_t"], w["stock_open_t"], w["stock_close_t"]) == ("4.000", "1.000", "0.500")
    assert set(w["entrusted"][0]) == {"receiver", "receiver_name", "province", "licence", "method", "qty_t"}
    assert d["totals"]["generated_t"] == "5.500"
    for bad in ("2025-13", "2025-Q5", "25", "2025-03-01"):
        e = client.get(f"/api/v1/units/{a}/declarations?period={bad}", headers=admin)
        assert e.status_code == 422 and e.json["errors"][0]["field"].endswith("period"), (bad, e.json)


def test_declaration_xlsx_is_laid_out_like_the_official_table_with_formulas_neutralised(app, client, admin):
    a, r = _city(app, client, admin)
    got = client.get(f"/api/v1/units/{a}/declarations?period=2025-Q1&format=xlsx", headers=admin)
    assert got.status_code == 200 and got.mimetype.endswith("sheet")
    wb = load_workbook(io.BytesIO(got.data))
    ws = wb["表C.2"]
    assert "季度申报报告" in ws["A1"].value and "C.2" in ws["A1"].value
    assert ws["B2"].value == "'" + A_NAME  # the unit's name cannot run as a formula
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert not any(isinstance(v, str) and v.startswith("=") for row in values for v in row)
    h1 = next(i for i, row in enumerate(values) if row[0] == "废物名称")
    assert values[h1][:8] == ["废物名称", "废物类别", "废物代码", "有害成分名称", "形态", "危险特性", "产生量（吨）", "计量单位"]
    assert values[h1][8] == "自行利用/处置" and values[h1][10] == "委托外单位利用/处置" and values[h1][15] == "剩余贮存量（吨）"
    assert values[h1 + 1][10:17] == ["省（区、市）", "单位名称", "许可证编号/豁免单位编号/出口核准通知单编号", "方式", "量（吨）",
                                     "上季度末", "本季度末"]
    body = values[h1 + 2:]
    codes = [row[2] for row in body if row[2] in (W, OIL)]
    assert sorted(codes) == sorted([W, OIL])
    total = next(row for row in body if row[0] == "合计")
    assert float(total[6]) == 5.5 and float(total[14]) == 6.0  # W 3.5 + 1.0, OIL 1.5
    src = wb["数据来源"]
    assert src.max_row - 1 == len(client.get(f"/api/v1/units/{a}/declarations?period=2025-Q1", headers=admin).json["trace"])


def test_calendar_and_status_over_http(app, client, admin, tokens):
    a, r = _city(app, client, admin)
    cal = client.get(f"/api/v1/units/{a}/declarations/calendar?year=2025", headers=admin)
    assert cal.status_code == 200 and len(cal.json["items"]) == 13
    st = client.get("/api/v1/declarations/status?year=2025", headers=tokens("regulator", district="630102"))
    assert st.status_code == 200 and [g["district"] for g in st.json["districts"]] == ["630102"]
    assert client.get("/api/v1/declarations/status?year=2025&district=630104",
                      headers=tokens("regulator", district="630102")).status_code == 403
    assert client.get("/api/v1/declarations/status?year=2025&district=999999", headers=admin).status_code == 422


def test_cli_writes_the_declaration(app, client, admin, database_url, tmp_path):
    if not cli_mod._loaded:
        cli_mod._load_command_modules()
        cli_mod._loaded = True
    cli = cli_mod.cli
    a, r = _city(app, client, admin)
    out = tmp_path / "q1.xlsx"
    res = CliRunner().invoke(cli, ["--database-url", database_url, "declarations", "--unit", a, "--period", "2025-Q1",
                                   "--format", "xlsx", "--output", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "C.2 2025-Q1, 2 wastes" in res.output
    assert load_workbook(out)["表C.2"]["A1"].value.startswith("危险废物季度申报报告")
    js = tmp_path / "m.json"
    res = CliRunner().invoke(cli, ["--database-url", database_url, "declarations", "--unit", a, "--period", "2025-02",
                                   "--format", "json", "--output", str(js)], catch_exceptions=False)
    assert res.exit_code == 0 and json.loads(js.read_text(encoding="utf-8"))["table"] == "C.1"
    bad = CliRunner().invoke(cli, ["--database-url", database_url, "declarations", "--unit", a, "--period", "2025-Q9",
                                   "--output", str(out)])
    assert bad.exit_code == 2


def test_pages_enterprise_downloads_and_regulator_grid(app, client, admin, tokens):
    a, r = _city(app, client, admin)
    sign_in(client, tokens("enterprise", units=[a]))
    page = client.get("/declarations?year=2025")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "重点监管" in html and "下载申报表" in html and a in html
    dl = client.get(f"/declarations/download?unit={a}&period=2025-Q1")
    assert dl.status_code == 200 and dl.mimetype.endswith("sheet")
    pl = client.get(f"/declarations/plan?unit={a}&year=2026")
    assert pl.status_code == 200 and "表A.3" in load_workbook(io.BytesIO(pl.data)).sheetnames
    assert client.get(f"/declarations/download?unit={r}&period=2025-Q1").status_code == 404
    assert client.get("/declarations/status").status_code == 403
    other = app.test_client()
    sign_in(other, tokens("regulator", district="630102"))
    grid = other.get("/declarations/status?year=2025")
    assert grid.status_code == 200
    g = grid.get_data(as_text=True)
    assert "城东区" in g and a in g and r not in g


def test_the_unit_directory_shows_the_tier(app, client, admin, tokens):
    from ledgers.declarations import today_cst
    from tests.services import test_declarations as t

    a, r = _city(app, client, admin)
    sign_in(client, admin)
    html = client.get("/admin/units").get_data(as_text=True)
    assert f"危废管理类别（{today_cst().year}）" in html
    row = next(line for line in html.split("<tr>") if t.R in line)
    assert "重点监管" in row  # R's HW permit (valid without end date) makes it a key unit every year
    other = app.test_client()  # the regulators' unit directory (单位名录) shows it too, within the district
    sign_in(other, tokens("regulator", district="630104"))
    html = other.get("/units").get_data(as_text=True)
    row = next(line for line in html.split("<tr>") if t.R in line)
    assert "重点监管" in row and t.A not in html


def test_management_plan_json_and_xlsx(app, client, admin):
    a, r = _city(app, client, admin)
    js = client.get(f"/api/v1/units/{a}/management-plan?year=2026", headers=admin)
    assert js.status_code == 200, js.json
    assert {x["code"]: x["planned_t"] for x in js.json["tables"]["A.3"]} == {W: "4.000", OIL: "1.500"}
    x = client.get(f"/api/v1/units/{a}/management-plan?year=2026&format=xlsx", headers=admin)
    wb = load_workbook(io.BytesIO(x.data))
    assert wb.sheetnames == ["表A.3", "表A.4", "表A.5", "表A.7", "说明"]
    ws = wb["表A.7"]
    assert "管理计划" in ws["A1"].value and ws["A2"].value.startswith("单位：")
    assert [c.value for c in ws[4]][:4] == ["废物名称", "废物代码", "接收单位所在省（区、市）", "接收单位名称"]
    assert ws.max_row >= 4 + 3


def test_licensed_report_for_the_licence_holder_and_its_regulator_only(app, client, admin, tokens):
    a, r = _city(app, client, admin)
    for h, want in ((tokens("enterprise", units=[r]), 200), (tokens("regulator", district="630104"), 200),
                    (tokens("enterprise", units=[a]), 404), (tokens("regulator", district="630102"), 404)):
        got = client.get(f"/api/v1/units/{r}/licensed-report?year=2025", headers=h)
        assert got.status_code == want, got.json
    assert client.get(f"/api/v1/units/{a}/licensed-report?year=2025", headers=admin).json["code"] == "not_licensed"
    x = client.get(f"/api/v1/units/{r}/licensed-report?year=2025&format=xlsx", headers=admin)
    assert load_workbook(io.BytesIO(x.data)).sheetnames == ["经营情况", "许可证能力"]
