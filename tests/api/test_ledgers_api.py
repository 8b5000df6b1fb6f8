"""The ledger endpoints through the Flask client: template, upload, check, versions, file, CLI."""

from __future__ import annotations

import io
from datetime import date

from click.testing import CliRunner
from openpyxl import load_workbook

import api.cli as cli_mod
from tests.factories import register
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, cover, workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _units(client, admin):
    register(client, admin, code=ME, name="测试化工有限公司")
    register(client, admin, code=RECV, name="接收单位", roles=["disposer"])


def _post(client, headers, data, path="/api/v1/ledgers", name="台账.xlsx", **query):
    return client.post(path, query_string=query, headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _bad_sheets():
    s = balanced_sheets()
    s["转出"][1][3] = "十吨"                       # not_a_number at 转出!D2
    s["利用处置"][1][1] = "Z9"                     # unknown_method at 利用处置!B2
    s["转入"][1][5] = ME[:-1] + ("0" if ME[-1] != "0" else "1")  # bad_credit_code at 转入!F2
    return s


def test_template_has_the_five_sheets_dropdowns_and_a_prefilled_cover(client, admin, tokens):
    _units(client, admin)
    ent = tokens("enterprise", units=[ME])
    r = client.get("/api/v1/ledgers/template", headers=ent)
    assert r.status_code == 200 and r.mimetype == XLSX
    wb = load_workbook(io.BytesIO(r.data))
    assert {"填报信息", "产生贮存", "利用处置", "转出", "转入", "填报说明"} <= set(wb.sheetnames)
    assert wb["填报信息"]["B1"].value == ME and wb["填报信息"]["B2"].value == "测试化工有限公司"
    out = wb["转出"]
    assert out.freeze_panes == "A2" and out["A1"].value == "转移日期" and out["D1"].value == "数量（吨）"
    formulas = {dv.formula1 for dv in out.data_validations.dataValidation}
    assert any("代码表" in f and "$A$" in f for f in formulas) and any("$C$" in f for f in formulas)
    assert wb["代码表"].sheet_state == "hidden"
    assert client.get("/api/v1/ledgers/template", headers=admin).status_code == 200


def test_template_is_accepted_by_the_reader_once_filled(client, admin, tokens):
    """The template and the reader come from one spec: fill the downloaded template and upload it."""
    _units(client, admin)
    ent = tokens("enterprise", units=[ME])
    wb = load_workbook(io.BytesIO(client.get("/api/v1/ledgers/template", headers=ent).data))
    wb["填报信息"]["B3"] = "2025-03"
    for name, rows in balanced_sheets().items():
        if name == "填报信息":
            continue
        for r in rows[1:]:
            wb[name].append(r)
    buf = io.BytesIO()
    wb.save(buf)
    r = _post(client, ent, buf.getvalue())
    assert r.status_code == 201, r.json
    assert r.json["rows"] == {"产生贮存": 2, "利用处置": 1, "转出": 2, "转入": 1}


def test_upload_receipt_duplicate_amendment_and_reads(client, admin, tokens):
    _units(client, admin)
    ent = tokens("enterprise", units=[ME])
    data = workbook(balanced_sheets())
    r = _post(client, ent, data)
    assert r.status_code == 201, r.json
    rc = r.json
    assert rc["version"] == 1 and rc["duplicate"] is False and rc["totals"]["hazardous"]["disposed_t"] == 3.0
    again = _post(client, ent, data)
    assert again.status_code == 200 and again.json["duplicate"] is True and again.json["id"] == rc["id"]
    s = balanced_sheets()
    s["填报信息"] = cover(name="测试化工有限公司")
    s["转出"][1][9] = "更正"
    v2 = _post(client, ent, workbook(s))
    assert v2.status_code == 201 and v2.json["version"] == 2
    vs = client.get(f"/api/v1/units/{ME}/ledgers/2025-03/versions", headers=ent).json
    assert [(v["version"], v["is_current"]) for v in vs] == [(1, False), (2, True)]
    one = client.get(f"/api/v1/ledgers/{rc['id']}", headers=ent).json
    assert one["version"] == 1 and len(one["transfers"]) == 3 and one["stocks"][0]["code"] == "900-041-49"
    f = client.get(f"/api/v1/ledgers/{rc['id']}/file", headers=ent)
    assert f.status_code == 200 and f.data == data
    page = client.get("/api/v1/ledgers", query_string={"unit": ME, "month": "2025-03"}, headers=ent).json
    assert page["total"] == 2
    assert client.get("/api/v1/ledgers", query_string={"year": 2024}, headers=admin).json["total"] == 0
    # another enterprise sees nothing of it
    other = tokens("enterprise", units=[RECV])
    assert client.get(f"/api/v1/ledgers/{rc['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/ledgers/{rc['id']}/file", headers=other).status_code == 404
    assert client.get("/api/v1/ledgers", headers=other).json["total"] == 0
    assert client.get(f"/api/v1/units/{ME}/ledgers/2025-03/versions", headers=other).status_code == 404
    reg = tokens("regulator", district="630104")
    assert client.get(f"/api/v1/ledgers/{rc['id']}", headers=reg).status_code == 200


def test_rejected_upload_lists_every_error_with_its_cell_and_stores_nothing(client, admin):
    _units(client, admin)
    r = _post(client, admin, workbook(_bad_sheets()))
    assert r.status_code == 422 and r.json["code"] == "ledger_rejected"
    got = {(e["code"], e["sheet"], e["row"], e["column"]) for e in r.json["errors"]}
    assert got == {("not_a_number", "转出", 2, "D"), ("unknown_method", "利用处置", 2, "B"),
                   ("bad_credit_code", "转入", 2, "F")}
    e = next(e for e in r.json["errors"] if e["code"] == "not_a_number")
    assert e["header"] == "数量" and e["value"] == "十吨" and e["message"] and e["message_en"]
    assert client.get("/api/v1/ledgers", headers=admin).json["total"] == 0


def test_check_returns_the_annotated_workbook_and_json(client, admin):
    _units(client, admin)
    r = _post(client, admin, workbook(_bad_sheets()), path="/api/v1/ledgers/check", format="xlsx")
    assert r.status_code == 200 and r.mimetype == XLSX and r.headers["X-Ledger-Errors"] == "3"
    wb = load_workbook(io.BytesIO(r.data))
    cell = wb["转出"]["D2"]
    assert cell.fill.fgColor.rgb.endswith("FF9999") and "not_a_number" in cell.comment.text
    assert wb["利用处置"]["B2"].comment is not None and wb["转出"]["A2"].comment is None
    assert wb.sheetnames[0] == "错误清单" and wb["错误清单"].max_row == 1 + 3
    j = _post(client, admin, workbook(_bad_sheets()), path="/api/v1/ledgers/check", format="json").json
    assert j["valid"] is False and len(j["errors"]) == 3
    ok = _post(client, admin, workbook(balanced_sheets()), path="/api/v1/ledgers/check", format="json").json
    assert ok["valid"] is True and ok["receipt"]["version"] == 1
    assert client.get("/api/v1/ledgers", headers=admin).json["total"] == 0


def test_permissions_401_403(client, admin, tokens):
    _units(client, admin)
    data = workbook(balanced_sheets())
    assert _post(client, {}, data).status_code == 401
    r = _post(client, tokens("enterprise", units=[RECV]), data)
    assert r.status_code == 403
    r = _post(client, tokens("regulator", district="630100"), data)
    assert r.status_code == 403


def test_size_and_type_limits(app, client, admin):
    _units(client, admin)
    r = _post(client, admin, b"a,b,c\n1,2,3\n", name="fake.xlsx")
    assert r.status_code == 415 and r.json["code"] == "not_a_spreadsheet"
    app.config["MAX_UPLOAD_BYTES"] = 1000
    r = _post(client, admin, workbook(balanced_sheets()))
    assert r.status_code == 413


def test_dry_run_validates_without_storing(client, admin):
    _units(client, admin)
    r = _post(client, admin, workbook(balanced_sheets()), dry_run="true")
    assert r.status_code == 200 and r.json["id"] is None
    assert client.get("/api/v1/ledgers", headers=admin).json["total"] == 0


def test_openapi_documents_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for p in ("/api/v1/ledgers", "/api/v1/ledgers/check", "/api/v1/ledgers/template", "/api/v1/ledgers/{ledger_id}",
              "/api/v1/ledgers/{ledger_id}/file", "/api/v1/units/{code}/ledgers/{month}/versions"):
        assert p in paths
    assert "multipart/form-data" in paths["/api/v1/ledgers"]["post"]["requestBody"]["content"]


def _cli():
    if not cli_mod._loaded:
        cli_mod._load_command_modules()
        cli_mod._loaded = True
    return cli_mod.cli


def test_cli_import_prints_receipts_and_fails_on_rejected_files(database_url, tmp_path, app, client, admin):
    cli = _cli()
    _units(client, admin)
    good, bad = tmp_path / "good.xlsx", tmp_path / "bad.xlsx"
    good.write_bytes(workbook(balanced_sheets()))
    bad.write_bytes(workbook(_bad_sheets()))
    r = CliRunner().invoke(cli, ["--database-url", database_url, "import", str(good)])
    assert r.exit_code == 0, r.output
    assert "v1" in r.output and ME in r.output
    r = CliRunner().invoke(cli, ["--database-url", database_url, "import", str(good), str(bad)])
    assert r.exit_code == 1
    assert "duplicate" in r.output and "not_a_number" in r.output


def test_future_month_is_rejected(client, admin):
    _units(client, admin)
    s = balanced_sheets()
    nxt = date.today().replace(day=1)
    fut = f"{nxt.year + 1}-01"
    s["填报信息"] = cover(month=fut)
    r = _post(client, admin, workbook(s))
    assert r.status_code == 422 and "future_month" in {e["code"] for e in r.json["errors"]}


def test_hostile_uploads_are_refused_and_the_server_keeps_serving(client, admin):
    import zipfile

    _units(client, admin)
    src = zipfile.ZipFile(io.BytesIO(workbook(balanced_sheets())))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            z.writestr(item.filename, src.read(item.filename))
        z.writestr("xl/media/pad.bin", b"\0" * (40 * 1024 * 1024))
    r = _post(client, admin, buf.getvalue())
    assert r.status_code == 413 and r.json["code"] == "compression_ratio"
    r = _post(client, admin, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "EncryptionInfo".encode("utf-16-le"))
    assert r.status_code == 415 and r.json["code"] == "encrypted"
    assert client.get("/api/v1/health").status_code == 200
    assert _post(client, admin, workbook(balanced_sheets())).status_code == 201


def test_template_columns_carry_number_formats(client, admin):
    wb = load_workbook(io.BytesIO(client.get("/api/v1/ledgers/template", headers=admin).data))
    out = wb["转出"]
    assert out.column_dimensions["D"].number_format == "#,##0.000"
    assert out.column_dimensions["B"].number_format == "@"
    assert out.column_dimensions["A"].number_format == "yyyy-mm-dd"
    assert wb["填报说明"]["A1"].value.startswith("月度固体废物管理台账")


def test_a_full_width_credit_code_names_the_same_unit_on_every_endpoint(client, admin, tokens):
    """Issue 15: credit codes are looked up through ``normalise_credit_code`` everywhere (full-width and lower
    case as a clerk may type them), not upper-cased in some places only."""
    _units(client, admin)
    ent = tokens("enterprise", units=[ME])
    assert _post(client, ent, workbook(balanced_sheets())).status_code == 201
    fw = "".join(chr(ord(c) + 0xFEE0) for c in ME.lower())
    assert client.get(f"/api/v1/units/{fw}", headers=ent).json["credit_code"] == ME
    vs = client.get(f"/api/v1/units/{fw}/ledgers/2025-03/versions", headers=ent)
    assert vs.status_code == 200 and [v["version"] for v in vs.json] == [1]
    tier = client.get(f"/api/v1/units/{fw}/tier", query_string={"year": 2025}, headers=ent)
    assert tier.status_code == 200 and tier.json["unit"] == ME
    r = client.patch(f"/api/v1/units/{fw}", json={"name": "改名化工有限公司"}, headers=admin)
    assert r.status_code == 200 and r.json["credit_code"] == ME and r.json["name"] == "改名化工有限公司"
