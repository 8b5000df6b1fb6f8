"""The three parties' manifest pages (issue 16) through the Flask client: write, save, submit, copy, ship, receive,
refuse and take back, print; the labels and buttons of the page contract; CSRF on every form."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from nofei.catalogue import Catalogue
from nofei.domain.calendar import CST
from nofei.domain.manifests import WorkCalendar
from tests.api.test_web_pages import csrf_of, sign_in
from tests.factories import register

CODE = "900-041-49"
PERMIT = [{"number": "许-1", "waste_codes": ["HW49"], "methods": ["D10"], "capacity_t": "1000"}]


@pytest.fixture
def world(app, admin, tokens):
    c = app.test_client()
    plant = register(c, admin, district="630106", name="湟中冶炼厂", roles=["producer"])
    site = register(c, admin, district="630105", name="城北危废处置中心", roles=["disposer"], permits=PERMIT)
    other = register(c, admin, district="630105", name="城北回收站", roles=["utiliser"],
                     permits=[{"number": "许-2", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "10"}])
    truck = register(c, admin, district="630102", name="城东危货运输公司", roles=["carrier"])
    return {"plant": plant, "site": site, "other": other, "truck": truck,
            "producer": tokens("enterprise", units=[plant["credit_code"]], name="张三"),
            "carrier": tokens("enterprise", units=[truck["credit_code"]], name="李四"),
            "receiver": tokens("enterprise", units=[site["credit_code"]], name="王五")}


def client_for(app, headers):
    c = app.test_client()
    sign_in(c, headers)
    return c


def new_manifest(c, w, *, qty="9.5", action="submit", extra=None):
    page = c.get("/manifests/new").get_data(as_text=True)
    data = {"csrf_token": csrf_of(page), "receiver": w["site"]["credit_code"], "carrier": w["truck"]["credit_code"],
            "planned_date": date.today().isoformat(), "lines-0-waste_code": CODE, "lines-0-quantity_t": qty,
            "lines-0-packaging": "桶", "lines-0-container_count": "3", "lines-0-planned_method": "D10",
            "action": action, **(extra or {})}
    return c.post("/manifests/new", data=data)


def number_of(r) -> str:
    m = re.search(r"/manifests/(\d{14})", r.headers["Location"])
    assert m, r.headers["Location"]
    return m.group(1)


def test_the_form_has_the_contracts_labels_and_lists_only_covering_receivers(app, world):
    c = client_for(app, world["producer"])
    page = c.get(f"/manifests/new?code={CODE}").get_data(as_text=True)
    for label in ("接收单位", "承运单位", "计划转移日期", "废物代码", "数量（吨）"):
        assert f"<label>{label}" in page, label
    assert ">提交联单</button>" in page and "<script" not in page
    assert "城北危废处置中心" in page and "城北回收站" not in page  # HW08 permit does not cover HW49
    assert "城东危货运输公司" in page  # the carrier list
    # the name search is a plain GET form and narrows the list
    page = c.get("/manifests/new?code=&q=回收站").get_data(as_text=True)
    assert "城北回收站" in page and "城北危废处置中心" not in page
    # the code's name, category and 危险特性 beside it
    page = c.get(f"/manifests/new?code={CODE}").get_data(as_text=True)
    info = Catalogue.default().codes[CODE]
    assert info.name_zh in page and f"危险特性 {info.hazard}" in page


def test_save_a_draft_then_submit_it_copy_it_and_count_by_status(app, world):
    c = client_for(app, world["producer"])
    r = new_manifest(c, world, action="save")
    assert r.status_code == 302 and "draft=" in r.headers["Location"]
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "草稿已保存" in page and 'value="9.5"' in page
    listing = c.get("/manifests/party/shipper").get_data(as_text=True)
    assert "草稿 #" in listing
    draft = re.search(r"draft=(\d+)", r.headers["Location"]).group(1)
    r = c.post(f"/manifests/new?draft={draft}", data={
        "csrf_token": csrf_of(page), "receiver": world["site"]["credit_code"], "carrier": world["truck"]["credit_code"],
        "planned_date": date.today().isoformat(), "lines-0-waste_code": CODE, "lines-0-quantity_t": "9.5",
        "action": "submit"})
    no = number_of(r)
    assert no[4:8] == "6301"  # 湟中 is in Xining: the shipping site's province + city (第十五条)
    listing = c.get("/manifests/party/shipper").get_data(as_text=True)
    assert "草稿 #" not in listing and no in listing
    assert re.search(r'data-status="submitted">已提交/待运输 <strong>1</strong>', listing)
    # copy last manifest: same receiver, carrier and lines, today's date
    page = c.get(f"/manifests/new?copy=1&receiver={world['site']['credit_code']}").get_data(as_text=True)
    assert f"已复制联单 {no}" in page and 'value="9.5"' in page
    assert f'<option value="{world["site"]["credit_code"]}" selected>' in page
    r = new_manifest(c, world, qty="0")
    assert r.status_code == 422 and "数量须大于 0" in r.get_data(as_text=True)


def test_three_parties_move_a_load_on_the_pages(app, world):
    prod, carrier, recv = (client_for(app, world[k]) for k in ("producer", "carrier", "receiver"))
    no = number_of(new_manifest(prod, world))
    waiting = carrier.get("/manifests/party/carrier").get_data(as_text=True)
    assert no in waiting and ">发运</a>" in waiting
    page = carrier.get(f"/manifests/{no}/ship").get_data(as_text=True)
    for label in ("车牌号", "驾驶员", "营运证件号"):
        assert f"<label>{label}" in page
    # the producer may not ship (a carrier is named): the form is not offered and a POST is refused
    ppage = prod.get(f"/manifests/{no}/ship").get_data(as_text=True)
    assert 'id="ship-form"' not in ppage
    assert prod.post(f"/manifests/{no}/ship", data={"csrf_token": csrf_of(ppage), "vehicle": "青A1", "driver": "x",
                                                     "permit_no": "6301"}).status_code == 403
    r = carrier.post(f"/manifests/{no}/ship", data={"csrf_token": csrf_of(page), "vehicle": "青A·D1234",
                                                     "driver": "李四", "permit_no": "青交运管630100001", "time": ""})
    assert r.status_code == 302
    incoming = recv.get("/manifests/party/receiver").get_data(as_text=True)
    assert no in incoming
    page = recv.get(f"/manifests/{no}/receive").get_data(as_text=True)
    for label in ("实收量（吨）", "利用处置方式", "接受日期", "拒收原因"):
        assert f"<label>{label}" in page
    assert ">确认接收</button>" in page and ">拒收</button>" in page
    r = recv.post(f"/manifests/{no}/receive", data={
        "csrf_token": csrf_of(page), "action": "receive", "received-1": "9.1", "method-1": "D10",
        "mismatch-1": "packaging", "accepted_on": datetime.now(CST).date().isoformat(), "time": ""})  # today on CST
    assert r.status_code == 302, r.get_data(as_text=True)
    view = recv.get(f"/manifests/{no}").get_data(as_text=True)
    assert "已接收" in view and "包装方式不符" in view and ">打印联单</a>" in view
    # history in Chinese, with unit names and roles
    hist = view[view.index('id="history"'):]
    for text in ("提交联单", "发运", "确认接收", "城东危货运输公司（承运人）", "城北危废处置中心（接受人）", "企业 王五"):
        assert text in hist, text
    assert "admin:" not in hist and "in_transit" not in hist


def test_a_refused_load_goes_back_and_is_taken_into_storage_with_no_anomaly(app, world, admin):
    prod, carrier, recv = (client_for(app, world[k]) for k in ("producer", "carrier", "receiver"))
    no = number_of(new_manifest(prod, world))
    page = carrier.get(f"/manifests/{no}/ship").get_data(as_text=True)
    carrier.post(f"/manifests/{no}/ship", data={"csrf_token": csrf_of(page), "vehicle": "青A1", "driver": "李四",
                                                "permit_no": "P1"})
    page = recv.get(f"/manifests/{no}/receive").get_data(as_text=True)
    r = recv.post(f"/manifests/{no}/receive", data={"csrf_token": csrf_of(page), "action": "reject", "refuse-1": "1",
                                                    "reason": "包装破损渗漏", "mismatch-1": "packaging"})
    assert r.status_code == 302
    back = re.search(r"follow=(\d{14})", r.headers["Location"]).group(1)
    # the shipper receives its own load back: S (退回移出人贮存) is the only method offered there
    page = prod.get(f"/manifests/{back}/receive").get_data(as_text=True)
    assert "退回入库" in page and 'value="S" selected' in page and 'id="reject-form"' not in page
    r = prod.post(f"/manifests/{back}/receive", data={"csrf_token": csrf_of(page), "action": "receive",
                                                      "received-1": "9.5", "method-1": "S"})
    assert r.status_code == 302, r.get_data(as_text=True)
    m = app.test_client().get(f"/api/v1/manifests/{back}", headers=admin).json
    assert m["status"] == "received" and m["is_return"] and m["lines"][0]["method"] == "S"
    year = date.today().year
    got = app.test_client().get(f"/api/v1/anomalies?year={year}", headers=admin).json
    mine = [a for a in got["items"] if {no, back} & set(a.get("manifests") or [])]
    assert mine == [], mine


def test_print_is_an_a4_page_with_a_qr_code_and_one_label_per_container(app, world):
    prod = client_for(app, world["producer"])
    no = number_of(new_manifest(prod, world))
    r = prod.get(f"/manifests/{no}/print")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "<script" not in page and "http" not in page.split("<body")[0].replace(
        'href="/', "")
    assert page.count('class="hw-label"') == 3  # 3 containers
    qr = page[page.index('id="qr"'):]
    assert qr.index("<svg") < qr.index("</figure>")
    assert "危险特性" in page and "湟中冶炼厂" in page and no in page
    css = prod.get("/assets/report.css").get_data(as_text=True)
    assert "@page { size:A4" in css and "@media print" in css


def test_time_rules_on_the_page_refuse_a_future_shipping(app, world):
    prod, carrier = client_for(app, world["producer"]), client_for(app, world["carrier"])
    no = number_of(new_manifest(prod, world))
    page = carrier.get(f"/manifests/{no}/ship").get_data(as_text=True)
    future = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    r = carrier.post(f"/manifests/{no}/ship", data={"csrf_token": csrf_of(page), "vehicle": "青A1", "driver": "李四",
                                                     "permit_no": "P1", "time": future})
    assert r.status_code == 422 and "发生时间晚于当前时间" in r.get_data(as_text=True)
    # 14 working days back: recorded and flagged as 补录
    cal = WorkCalendar()
    past = datetime.now()
    while cal.working_days_between(past.date(), date.today()) <= 11:
        past -= timedelta(days=1)
    r = carrier.post(f"/manifests/{no}/ship", data={"csrf_token": csrf_of(page), "vehicle": "青A1", "driver": "李四",
                                                     "permit_no": "P1", "time": past.strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 302
    assert "补录超过10个工作日" in carrier.get(f"/manifests/{no}").get_data(as_text=True)


def test_forms_need_the_csrf_token(app, world):
    prod = client_for(app, world["producer"])
    r = prod.post("/manifests/new", data={"receiver": world["site"]["credit_code"], "action": "submit"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
