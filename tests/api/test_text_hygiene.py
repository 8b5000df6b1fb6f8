"""Issue 17 items 5, 6, 11, 12: hostile text is refused at the edge (422 naming the field or cell), stored
text can never break or poison an export (one writer rule), ids/dates/depth outside range are 4xx, the
PATCH/405/download/park details, and /ledgers/check's documented default.

Each of these answered 500 (or 200 where it must not) before the fix."""

from __future__ import annotations

import glob
import io
import json
import os
import tempfile
import zipfile
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import update

from nofei.storage.tables import LedgerFileRow, LedgerRow, ManifestRow, UnitRow
from tests.factories import register, sheet, unit_payload
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HOSTILE = ["\x00", "\x03", "\x1f", "\x7f", "\x85", "\ufffe"]
WASTE = "900-249-08"


def _problem(r, field=None):
    assert r.status_code == 422, (r.status_code, r.get_data(as_text=True)[:300])
    body = r.json
    assert set(body) == {"code", "status", "message", "errors", "request_id"} and body["status"] == 422
    if field is not None:
        assert field in [e.get("field") for e in body["errors"]], body["errors"]
    return body


def _upload(client, headers, data, path="/api/v1/ledgers", name="台账.xlsx", **query):
    return client.post(path, query_string=query, headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.fixture(autouse=True)
def _own_temp_dir(tmp_path, monkeypatch):
    """openpyxl's temp files go to this test's own folder: other workers' files in /tmp must not count."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))


def _temp_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "openpyxl.*")))


def _has_formula(xlsx: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))


# --- the edge: JSON bodies, nested fields, query strings, paths, form fields --------------------------
@pytest.mark.parametrize("ch", HOSTILE)
def test_a_control_character_in_a_json_field_is_a_422_naming_it_and_nothing_is_stored(client, admin, ch):
    body = unit_payload(name=f"单位{ch}名")
    _problem(client.post("/api/v1/units", json=body, headers=admin), "name")
    assert client.get(f"/api/v1/units/{body['credit_code']}", headers=admin).status_code == 404


def test_nested_fields_keys_and_lone_surrogates_are_named_too(client, admin):
    p = unit_payload(permits=[{"number": "P\x03", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "1"}])
    _problem(client.post("/api/v1/units", json=p, headers=admin), "permits.0.number")
    raw = json.dumps(unit_payload()).replace('"name": "', '"name": "\\ud800', 1)
    _problem(client.post("/api/v1/units", data=raw, content_type="application/json", headers=admin), "name")
    _problem(client.post("/api/v1/units", json={**unit_payload(), "x\x00": 1}, headers=admin), "x\x00")


def test_newlines_only_where_a_field_is_multi_line(client, admin):
    _problem(client.post("/api/v1/units", json=unit_payload(name="第一行\n第二行"), headers=admin), "name")
    # a reason may span lines: the edge lets it through (the use case then answers: no such manifest)
    r = client.post("/api/v1/manifests/20250000000001/correct", json={"reason": "原因\n第二行\t说明"}, headers=admin)
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/units?q=%00", "/api/v1/units?q=a%03b", "/api/v1/units?district=%1b",
                                  "/api/v1/manifests?unit=%00", "/api/v1/units?%00=1"])
def test_a_control_character_in_the_query_string_is_a_422(client, admin, path):
    _problem(client.get(path, headers=admin))


@pytest.mark.parametrize("path", ["/api/v1/units/%00", "/api/v1/units/91630104MA%0300001/trace?year=2025",
                                  "/api/v1/units/x%00/ledgers/2025-03/versions"])
def test_a_control_character_in_the_path_is_a_422(client, admin, path):
    _problem(client.get(path, headers=admin), "path")


def test_a_control_character_in_a_form_field_is_refused(client, admin):
    r = client.post("/api/v1/ledgers", headers=admin, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(workbook(balanced_sheets())), "a.xlsx"), "dry_run": "1\x00"})
    _problem(r, "dry_run")


def test_the_edge_answers_anonymous_callers_401_first(client):
    assert client.get("/api/v1/units?q=%00").status_code == 401


@pytest.mark.parametrize("depth,status", [(1000, 422), (33, 422), (30, 201)])
def test_json_nesting_is_bounded_before_parsing(client, admin, depth, status):
    body = unit_payload()
    body["extra"] = json.loads("[" * (depth - 1) + "]" * (depth - 1)) if depth < 100 else None
    raw = json.dumps(body)
    if depth >= 100:
        raw = raw.replace('"extra": null', '"extra": ' + "[" * depth + "]" * depth)
    r = client.post("/api/v1/units", data=raw, content_type="application/json", headers=admin)
    if status == 422:
        assert _problem(r, "body")["errors"][0]["code"] == "too_deep"
    else:  # unknown fields are ignored: a shallow body is accepted
        assert r.status_code != 500 and r.json.get("code") != "too_deep"


def test_brackets_inside_strings_do_not_count_as_depth(client, admin):
    r = client.post("/api/v1/units", json=unit_payload(name="[" * 150), headers=admin)
    assert r.status_code == 201


# --- ids and dates ----------------------------------------------------------------------------------
@pytest.mark.parametrize("req", [("GET", "/api/v1/ledgers/2147483648"), ("GET", "/api/v1/ledgers/9223372036854775808"),
                                 ("GET", "/api/v1/ledgers/99999999999999999999999/file"),
                                 ("DELETE", "/api/v1/tokens/18446744073709551616"),
                                 ("GET", "/api/v1/ledgers/2147483647")])
def test_ids_past_an_id_column_are_404(client, admin, req):
    r = client.open(req[1], method=req[0], headers=admin)
    assert r.status_code == 404 and r.json["code"] == "not_found"


def test_the_id_bound_is_documented(client):
    spec = client.get("/api/v1/openapi.json").json
    (p,) = spec["paths"]["/api/v1/ledgers/{ledger_id}"]["parameters"]
    assert p["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


@pytest.mark.parametrize("day", ["0001-01-01", "1989-12-31", "2101-01-01", "9999-12-31"])
def test_dates_outside_the_window_are_422(client, admin, day):
    a, b = register(client, admin), register(client, admin, roles=["disposer"])
    m = {"shipper": a["credit_code"], "receiver": b["credit_code"], "planned_date": day,
         "lines": [{"waste_code": WASTE, "quantity_t": "1"}]}
    _problem(client.post("/api/v1/manifests", json=m, headers=admin), "planned_date")
    _problem(client.get(f"/api/v1/manifests?from={day}", headers=admin), "from")
    permit = {"number": "P1", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "1", "valid_from": day}
    _problem(client.post("/api/v1/units", json=unit_payload(permits=[permit]), headers=admin), "permits.0.valid_from")
    _problem(client.get(f"/api/v1/anomalies?year=2025&as_of={day}T00:00:00%2B08:00", headers=admin), "as_of")


def test_dates_inside_the_window_are_accepted(client, admin):
    a, b = register(client, admin), register(client, admin, roles=["disposer"])
    m = {"shipper": a["credit_code"], "receiver": b["credit_code"], "planned_date": "2100-12-31",
         "lines": [{"waste_code": WASTE, "quantity_t": "1"}]}
    assert client.post("/api/v1/manifests", json=m, headers=admin).status_code == 201


# --- PATCH, 405, parks --------------------------------------------------------------------------------
def test_a_patch_without_a_body_or_with_nothing_to_change_is_a_422(client, admin):
    u = register(client, admin)
    url = f"/api/v1/units/{u['credit_code']}"
    _problem(client.patch(url, headers=admin), "body")
    _problem(client.patch(url, data="name=x", content_type="application/x-www-form-urlencoded", headers=admin), "body")
    _problem(client.patch(url, json={}, headers=admin), "body")
    r = client.patch(url, json={"name": "新名称"}, headers=admin)
    assert r.status_code == 200 and r.json["name"] == "新名称"


def test_a_405_carries_allow_in_the_envelope(client, admin):
    r = client.put("/api/v1/units", headers=admin)
    assert r.status_code == 405 and r.json["code"] == "method_not_allowed"
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "POST"}
    r = client.delete("/api/v1/ledgers/1", headers=admin)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_a_units_park_must_lie_in_its_district(client, admin):
    # NANCHUAN lies in 630103 (parks.csv)
    body = _problem(client.post("/api/v1/units", json=unit_payload("630104", park="NANCHUAN"), headers=admin), "park")
    assert body["errors"][0]["code"] == "park_in_other_district"
    u = register(client, admin, district="630103", park="NANCHUAN")
    url = f"/api/v1/units/{u['credit_code']}"
    _problem(client.patch(url, json={"district": "630104"}, headers=admin), "park")
    assert client.patch(url, json={"district": "630104", "park": None}, headers=admin).status_code == 200
    _problem(client.patch(url, json={"park": "NANCHUAN"}, headers=admin), "park")


# --- downloads ------------------------------------------------------------------------------------------
def test_the_original_file_is_typed_by_its_bytes_and_its_name_sanitised(app, client, admin):
    register(client, admin, code=ME, name="测试化工有限公司")
    register(client, admin, code=RECV, name="接收单位", roles=["disposer"])
    r = _upload(client, admin, workbook(balanced_sheets()))
    assert r.status_code == 201, r.json
    lid = r.json["id"]
    with app.extensions["nofei.sessions"]() as s:  # what an uploader's name and type could have put there
        s.execute(update(LedgerRow).where(LedgerRow.id == lid).values(filename="evil\r\nSet-Cookie: x=1.html"))
        s.execute(update(LedgerFileRow).where(LedgerFileRow.ledger_id == lid).values(content_type="text/html\r\nX: 1"))
        s.commit()
    r = client.get(f"/api/v1/ledgers/{lid}/file", headers=admin)
    assert r.status_code == 200 and r.mimetype == XLSX
    cd = r.headers["Content-Disposition"]
    assert "\r" not in cd and "\n" not in cd and "Set-Cookie" not in r.headers
    assert cd.startswith(f'attachment; filename="ledger-{lid}.xlsx"; filename*=UTF-8\'\'') and cd.endswith(".xlsx")
    assert ".html" not in cd.split("filename*=")[1].rsplit(".", 1)[0][-8:] or cd.endswith(".xlsx")


def test_downloads_name_their_kind_for_xls_and_ods_too():
    from api.downloads import content_disposition, file_kind

    assert file_kind(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 10) == "xls"
    assert file_kind(b"PK\x03\x04" + b"\0" * 26 + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet") == "ods"
    assert file_kind(b"<html>") == "bin"
    cd = content_disposition('台账"\r\n;.xlsx', "x.xlsx")
    assert cd == "attachment; filename=\"x.xlsx\"; filename*=UTF-8''%E5%8F%B0%E8%B4%A6____.xlsx"


# --- stored text can no longer break or poison an export ---------------------------------------------
def _units_with_hostile_names(app, client, admin):
    """Units registered cleanly, then given hostile names in the database (data stored before the fix)."""
    a = register(client, admin, roles=["producer"])
    b = register(client, admin, roles=["disposer"],
                 permits=[{"number": "P1", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "100"}])
    with app.extensions["nofei.sessions"]() as s:
        s.execute(update(UnitRow).where(UnitRow.credit_code == a["credit_code"]).values(name="=HYPERLINK(\"x\")\x03"))
        s.execute(update(UnitRow).where(UnitRow.credit_code == b["credit_code"]).values(name="@SUM(1)\x1f"))
        s.commit()
    return a, b


def test_template_and_annual_report_survive_stored_control_characters_and_formulas(app, client, admin):
    a, _b = _units_with_hostile_names(app, client, admin)
    before = _temp_files()
    r = client.get(f"/api/v1/ledgers/template?unit={a['credit_code']}", headers=admin)
    assert r.status_code == 200
    cell = load_workbook(io.BytesIO(r.data))["填报信息"]["B2"]
    assert cell.value == "'=HYPERLINK(\"x\")\ufffd" and cell.data_type == "s"
    assert not _has_formula(r.data)
    r = client.get(f"/api/v1/reports/annual?year={date.today().year}&format=xlsx", headers=admin)
    assert r.status_code == 200 and r.mimetype == XLSX
    assert not _has_formula(r.data)
    texts = [c.value for ws in load_workbook(io.BytesIO(r.data)) for row in ws.iter_rows() for c in row
             if isinstance(c.value, str)]
    assert "'=HYPERLINK(\"x\")\ufffd" in texts and "'@SUM(1)\ufffd" in texts
    assert _temp_files() <= before


def test_manifest_exports_survive_a_stored_control_character(app, client, admin):
    a, b = register(client, admin), register(client, admin, roles=["disposer"])
    m = client.post("/api/v1/manifests", json={"shipper": a["credit_code"], "receiver": b["credit_code"],
                                              "planned_date": "2025-03-01",
                                              "lines": [{"waste_code": WASTE, "quantity_t": "1"}]}, headers=admin)
    assert m.status_code == 201, m.json
    with app.extensions["nofei.sessions"]() as s:
        s.execute(update(ManifestRow).values(driver="=1+2\x03", vehicle="-1"))
        s.commit()
    before = _temp_files()
    x = client.get("/api/v1/manifests?format=xlsx", headers=admin)
    assert x.status_code == 200 and not _has_formula(x.data)
    values = [c.value for row in load_workbook(io.BytesIO(x.data)).active.iter_rows() for c in row]
    assert "'=1+2\ufffd" in values and "'-1" in values
    c = client.get("/api/v1/manifests?format=csv", headers=admin)
    assert c.status_code == 200 and "'=1+2\ufffd" in c.get_data(as_text=True) and "\x03" not in c.get_data(as_text=True)
    assert _temp_files() <= before


def test_a_failed_save_leaves_no_temp_file(monkeypatch):
    from openpyxl.worksheet import _writer

    from imports.writer import workbook_bytes

    def broken(*_a, **_kw):
        raise RuntimeError("disk full")

    wb = Workbook()
    wb.active.append(["x"] * 10)
    monkeypatch.setattr(_writer, "write_cell", broken)
    before = _temp_files()
    with pytest.raises(RuntimeError):
        workbook_bytes(wb)
    assert _temp_files() == before


def test_the_annotated_error_list_never_holds_a_live_formula(client, admin):
    register(client, admin, code=ME, name="测试化工有限公司")
    s = balanced_sheets()
    s["利用处置"][1][1] = "+HYPERLINK(\"http://x\",\"点我\")"  # unknown method, shown in 错误清单 (值)
    s["转出"][1][3] = "@SUM(A1)"                               # not a number
    r = _upload(client, admin, workbook(s), path="/api/v1/ledgers/check", format="xlsx")
    assert r.status_code == 200 and int(r.headers["X-Ledger-Errors"]) >= 2
    ws = load_workbook(io.BytesIO(r.data))["错误清单"]
    shown = [row[6].value for row in ws.iter_rows(min_row=2)]
    assert "'+HYPERLINK(\"http://x\",\"点我\")" in shown and "'@SUM(A1)" in shown
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        first = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in first


# --- workbook cells ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["废\x03布", "废_x0003_布", "废_x0000_布"])
def test_a_control_character_in_a_cell_is_refused_at_its_cell(client, admin, text):
    """openpyxl writes ``_x0003_`` literally; calamine decodes it into U+0003 when reading."""
    register(client, admin, code=ME, name="测试化工有限公司")
    s = balanced_sheets()
    if "\x03" in text:  # openpyxl would refuse the raw character: write it as the escape Excel uses
        text = text.replace("\x03", "_x0003_")
    s["产生贮存"][1][1] = text
    r = _upload(client, admin, workbook(s))
    assert r.status_code == 422
    found = [e for e in r.json["errors"] if e["code"] == "control_character"]
    assert found and (found[0]["sheet"], found[0]["row"], found[0]["column"]) == ("产生贮存", 2, "B")


def test_a_control_character_on_the_cover_is_refused_at_its_cell(client, admin):
    register(client, admin, code=ME, name="测试化工有限公司")
    s = balanced_sheets()
    s["填报信息"][1][1] = "测试_x0007_化工"
    r = _upload(client, admin, workbook(s))
    assert r.status_code == 422
    assert ("control_character", "填报信息", "B") in [(e["code"], e["sheet"], e["column"]) for e in r.json["errors"]]


def test_manifest_import_refuses_a_control_character_at_its_cell(client, admin):
    a, b = register(client, admin), register(client, admin, roles=["disposer"])
    data = sheet([["分组", "移出单位统一社会信用代码", "接收单位统一社会信用代码", "计划转移日期", "废物代码", "数量（吨）", "包装方式"],
                  ["1", a["credit_code"], b["credit_code"], "2025-03-01", WASTE, 1, "桶_x001b_装"]])
    r = client.post("/api/v1/manifests/import", data=data, headers=admin,
                    content_type="application/octet-stream")
    assert r.status_code == 422
    (e,) = [e for e in r.json["errors"] if e["code"] == "control_character"]
    assert (e["row"], e["column"]) == (2, "G")


# --- /ledgers/check -----------------------------------------------------------------------------------------
def test_check_answers_json_by_default_and_documents_both_media_types(client, admin):
    register(client, admin, code=ME, name="测试化工有限公司")
    r = _upload(client, admin, workbook(balanced_sheets()), path="/api/v1/ledgers/check")
    assert r.status_code == 200 and r.mimetype == "application/json" and set(r.json) >= {"valid", "errors"}
    x = _upload(client, admin, workbook(balanced_sheets()), path="/api/v1/ledgers/check", format="xlsx")
    assert x.status_code == 200 and x.mimetype == XLSX
    op = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/ledgers/check"]["post"]
    (fmt,) = [p for p in op["parameters"] if p["name"] == "format"]
    assert fmt["schema"]["default"] == "json" and set(fmt["schema"]["enum"]) == {"json", "xlsx"}
    content = op["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckResult"}
    assert content[XLSX]["schema"] == {"type": "string", "format": "binary"}


def test_pages_refuse_control_characters_with_a_page_not_a_500(client):
    r = client.get("/login?next=%00")
    assert r.status_code == 422 and r.mimetype == "text/html"
    r = client.post("/login", data={"token": "nf_\x00"})
    assert r.status_code == 422 and r.mimetype == "text/html"
