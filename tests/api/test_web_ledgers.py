"""The enterprise's ledger pages through the Flask client: template, errors with the annotated workbook,
receipt, duplicate, versions, the original file again, and another unit's ledger refused."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from tests.api.test_web_pages import csrf_of, sign_in
from tests.e2e import workbooks
from tests.factories import register


def setup(client, admin, tokens):
    me = register(client, admin, district="630104", name="城西冶炼厂")
    recv = register(client, admin, district="630105", roles=["utiliser"])
    other = register(client, admin, district="630104")
    sign_in(client, tokens("enterprise", units=[me["credit_code"]], name="clerk"))
    return me, recv, other


def upload(client, data: bytes, name: str = "台账.xlsx", **form):
    csrf = csrf_of(client.get("/ledgers").get_data(as_text=True))
    return client.post("/ledgers/upload", data={"csrf_token": csrf, "file": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def test_template_is_prefilled_for_the_enterprise(client, admin, tokens):
    me, _, _ = setup(client, admin, tokens)
    r = client.get(f"/ledgers/template?unit={me['credit_code']}")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert "产生贮存" in wb.sheetnames
    cover = wb["填报信息"]
    assert me["credit_code"] in [c.value for row in cover.iter_rows() for c in row]


def test_bad_workbook_lists_every_error_and_offers_the_annotated_copy(client, admin, tokens):
    me, _, _ = setup(client, admin, tokens)
    r = upload(client, workbooks.bad(me["credit_code"], me["name"]))
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "台账未通过校验" in page
    codes = set(re.findall(r"<code>([a-z_]+)</code>", page))
    assert {"unknown_method", "not_a_number"} <= codes
    href = re.search(r'id="annotated" href="([^"]+)"', page).group(1)
    a = client.get(href)
    assert a.status_code == 200
    wb = load_workbook(io.BytesIO(a.data))
    assert wb["利用处置"]["B2"].comment is not None
    # nothing stored
    assert "尚未提交台账" in client.get("/ledgers").get_data(as_text=True)


def test_annotated_copy_belongs_to_the_session_that_uploaded(client, app, admin, tokens):
    me, _, _ = setup(client, admin, tokens)
    page = upload(client, workbooks.bad(me["credit_code"], me["name"])).get_data(as_text=True)
    href = re.search(r'id="annotated" href="([^"]+)"', page).group(1)
    other = app.test_client()
    sign_in(other, tokens("enterprise", units=[me["credit_code"]]))
    assert other.get(href).status_code == 404


def test_good_workbook_gives_a_receipt_then_duplicate_then_version_two(client, admin, tokens):
    me, recv, _ = setup(client, admin, tokens)
    data = workbooks.good(me["credit_code"], me["name"], receiver=recv["credit_code"])
    r = upload(client, data, dry_run="1")
    assert r.status_code == 200 and "此次仅检查，未保存" in r.get_data(as_text=True)
    r = upload(client, data)
    page = r.get_data(as_text=True)
    assert r.status_code == 201, page
    assert "上传成功" in page and "第 1 版" in page and "2025-03" in page
    r = upload(client, data)
    assert r.status_code == 200 and "未重复保存" in r.get_data(as_text=True)
    changed = workbooks.good(me["credit_code"], me["name"] + " ", receiver=recv["credit_code"])
    r = upload(client, changed, name="台账-更正.xlsx")
    page = r.get_data(as_text=True)
    assert r.status_code == 201 and "第 2 版" in page
    lid = re.search(r'href="/ledgers/(\d+)">查看此版本', page).group(1)
    detail = client.get(f"/ledgers/{lid}").get_data(as_text=True)
    assert "现行版本" in detail and "第 1 版" in detail and "第 2 版" in detail and "冶炼废渣" in detail
    f = client.get(f"/ledgers/{lid}/file")
    assert f.status_code == 200 and f.data == changed


def test_an_enterprise_cannot_upload_or_read_for_another_unit(client, admin, tokens):
    me, recv, other = setup(client, admin, tokens)
    r = upload(client, workbooks.good(other["credit_code"], other["name"], receiver=recv["credit_code"]))
    assert r.status_code == 403
    # the other unit's ledger, uploaded by admin through the API, is a 404 page for this clerk
    data = workbooks.good(other["credit_code"], other["name"], receiver=recv["credit_code"])
    res = client.post("/api/v1/ledgers", data={"file": (io.BytesIO(data), "x.xlsx")}, headers=admin,
                      content_type="multipart/form-data")
    if res.status_code == 201:
        assert client.get(f"/ledgers/{res.json['id']}").status_code == 404
