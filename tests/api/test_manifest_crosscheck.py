"""Issue 16 §7: a ledger's 转出 rows checked against the manifests they cite (warnings pinned to cells), a missing
sheet refused by name, and a rejected upload's warnings shown with its errors (API, page, annotated workbook)."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook

from tests.api.test_web_pages import csrf_of, sign_in
from tests.factories import register
from tests.imports.ledger_builders import ME, RECV, balanced_sheets, cover, workbook

CODE = "900-041-49"


@pytest.fixture
def world(client, admin, tokens):
    register(client, admin, code=ME, district="630104", name="测试化工有限公司", roles=["producer"])
    register(client, admin, code=RECV, district="630105", roles=["disposer"], permits=[
        {"number": "P1", "waste_codes": ["HW49", "HW08"], "methods": ["D10"], "capacity_t": "1000"}])
    me = tokens("enterprise", units=[ME])
    return {"me": me}


def manifest(client, admin, *, planned="2025-03-05", qty="9.5", code=CODE) -> str:
    r = client.post("/api/v1/manifests", headers=admin, json={
        "shipper": ME, "receiver": RECV, "planned_date": planned,
        "lines": [{"waste_code": code, "quantity_t": qty, "planned_method": "D10"}]})
    assert r.status_code == 201, r.json
    return r.json["number"]


def sheets(month: str, number: str | None, qty: float = 8, *, receiver: str = RECV, code: str = CODE):
    """The balanced ledger with its HW 转出 row citing ``number`` for ``qty`` t (production adjusted to balance)."""
    y, m = int(month[:4]), int(month[5:])
    s = balanced_sheets(date(y, m, 7))
    s["填报信息"] = cover(month=month)
    row = s["转出"][1]
    row[1], row[3], row[5], row[2] = number, qty, receiver, code
    if code == CODE:  # 1.5 open + generated + 2 in - 3 treated - qty out = 2.5 close
        s["产生贮存"][1][3] = qty + 2
    else:  # the 转出 row is another code: 900-041-49 keeps 2 t generated, the other balances on its own line
        s["产生贮存"][1][3] = 2
        s["产生贮存"].append([code, None, 0, qty, 0, "吨", None])
    return s


def upload(client, headers, data: bytes):
    return client.post("/api/v1/ledgers", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "ledger.xlsx")})


def warnings_of(r) -> dict[str, dict]:
    assert r.status_code in (200, 201), r.json
    return {w["code"]: w for w in r.json["warnings"] if w["code"].startswith("manifest_")}


def test_a_row_matching_its_manifest_gives_no_warning(client, admin, world):
    no = manifest(client, admin, qty="8.2")  # 0.2 t off: within 5 % (0.41 t) — the local setting
    assert warnings_of(upload(client, world["me"], workbook(sheets("2025-03", no, 8)))) == {}


def test_quantity_beyond_the_rule_is_a_warning_on_the_quantity_cell(client, admin, world):
    no = manifest(client, admin, qty="9.5")
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-03", no, 12))))
    assert set(got) == {"manifest_quantity"}
    w = got["manifest_quantity"]
    assert (w["sheet"], w["row"], w["column"], w["severity"]) == ("转出", 2, "D", "warning")
    assert "9.5" in w["message"] and "12" in w["message"] and "本地设置" in w["message"]


def test_other_receiver_and_code_are_pinned_to_their_cells(client, admin, world):
    no = manifest(client, admin, qty="8")
    stranger = register(client, admin, district="630102", roles=["disposer"], permits=[
        {"number": "P9", "waste_codes": ["HW49"], "methods": ["D10"], "capacity_t": "10"}])["credit_code"]
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-03", no, 8, receiver=stranger))))
    assert set(got) == {"manifest_other_receiver"} and got["manifest_other_receiver"]["column"] == "F"
    no2 = manifest(client, admin, qty="8")
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-04", no2, 8, code="900-249-08"))))
    assert set(got) == {"manifest_other_code"} and got["manifest_other_code"]["column"] == "C"


def test_another_shippers_manifest_is_a_warning(client, admin, world):
    other = register(client, admin, district="630104", roles=["producer"])["credit_code"]
    r = client.post("/api/v1/manifests", headers=admin, json={
        "shipper": other, "receiver": RECV, "planned_date": "2025-03-05",
        "lines": [{"waste_code": CODE, "quantity_t": "8"}]})
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-03", r.json["number"], 8))))
    assert set(got) == {"manifest_other_shipper"} and got["manifest_other_shipper"]["column"] == "B"


def test_year_rule_unknown_number_and_a_number_cited_in_two_months(client, admin, world):
    old = manifest(client, admin, planned="2023-11-20", qty="8")  # two years before the ledger: warned
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-03", old, 8))))
    assert set(got) == {"manifest_year"}
    last_year = manifest(client, admin, planned="2024-12-30", qty="8")  # the year before: allowed
    assert warnings_of(upload(client, world["me"], workbook(sheets("2025-01", last_year, 8)))) == {}
    # cited again in February: the second month is warned, naming the first
    got = warnings_of(upload(client, world["me"], workbook(sheets("2025-02", last_year, 8))))
    assert set(got) == {"manifest_cited_twice"} and "2025-01" in got["manifest_cited_twice"]["message"]
    # a number nofei does not know is left to the reconciliation anomaly (unknown_number), not warned per row
    assert warnings_of(upload(client, world["me"], workbook(sheets("2025-05", "20256301999999", 8)))) == {}


def test_a_renamed_sheet_is_refused_naming_the_missing_sheet(client, admin, world):
    s = balanced_sheets()
    s["转出表"] = s.pop("转出")
    r = upload(client, world["me"], workbook(s))
    assert r.status_code == 422
    (p,) = [e for e in r.json["errors"] if e["code"] == "missing_sheet"]
    assert p["sheet"] == "转出" and "转出表" in p["message"]
    # sheets simply left out stay optional
    s = balanced_sheets()
    s["产生贮存"] = [s["产生贮存"][0], ["SW01", None, 0, 5000, 5000, "千克", None]]
    del s["利用处置"], s["转出"], s["转入"]
    assert upload(client, world["me"], workbook(s)).status_code == 201


def test_a_rejected_upload_shows_its_warnings_too(app, client, admin, world):
    s = balanced_sheets()
    s["转出"][1][1] = "2025030000001"  # 13 digits: a warning
    s["产生贮存"][1][4] = 99  # does not balance: an error
    data = workbook(s)
    r = upload(client, world["me"], data)
    assert r.status_code == 422 and any(w["code"] == "bad_manifest" for w in r.json["warnings"])
    # the page: errors and warnings, and the annotated workbook with the warning cell yellow beside the red
    c = app.test_client()
    sign_in(c, world["me"])
    page = c.get("/ledgers").get_data(as_text=True)
    r = c.post("/ledgers/upload", data={"csrf_token": csrf_of(page), "file": (io.BytesIO(data), "bad.xlsx")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'id="rejected-warnings"' in html and "bad_manifest" in html
    href = re.search(r'id="annotated" href="([^"]+)"', html).group(1)
    wb = load_workbook(io.BytesIO(c.get(href).get_data()))
    assert wb["转出"]["B2"].fill.fgColor.rgb.endswith("FFF2CC")  # the warning: yellow
    assert any(c.fill.fgColor.rgb.endswith("FF9999") for row in wb["产生贮存"].iter_rows() for c in row)  # errors: red
