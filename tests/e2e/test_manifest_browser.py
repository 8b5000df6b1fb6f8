"""Issue 16 in a real browser: a producer, a carrier and a receiver, each in its own browser session, move a load
from 提交联单 to 确认接收 on the pages alone; a refused load goes back and its shipper takes it in; the carrier's
and receiver's pages fit a 390 px phone (no horizontal scroll). The pages have no script; the test only reads
``document.scrollingElement.scrollWidth``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from nofei.domain.calendar import CST
from tests.e2e.test_browser import _issue, pytestmark, shot, sign_in  # noqa: F401 - pytestmark marks this module

CODE = "900-041-49"
PHONE = {"width": 390, "height": 844}


def _today() -> date:
    """Today where the users are (China Standard Time): after 16:00 UTC it is already tomorrow there, and a
    receipt accepted "today" by the UTC date would be before its shipping."""
    return datetime.now(CST).date()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import waitress

    from api import create_app
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork
    from tests.factories import unit_payload

    db = tmp_path_factory.mktemp("e2e-manifests") / "nofei.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING"})

    def reg(district: str, name: str, roles: list[str], permits: list[dict[str, Any]] | None = None) -> str:
        with UnitOfWork(app.extensions["nofei.sessions"], catalogue=app.extensions["nofei.catalogue"]) as u:
            return registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload(
                district, name=name, roles=roles, permits=permits))["credit_code"]

    plant = reg("630121", "大通铸造厂", ["producer"])
    site = reg("630106", "湟中危废处置中心", ["disposer"],
               [{"number": "青危许-001", "waste_codes": ["HW49"], "methods": ["D10"], "capacity_t": "5000"}])
    reg("630105", "城北再生公司", ["utiliser"],
        [{"number": "青危许-002", "waste_codes": ["HW08"], "methods": ["R9"], "capacity_t": "10"}])
    truck = reg("630102", "城东危货运输公司", ["carrier"])
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=srv.run, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{srv.effective_port}", "plant": plant, "site": site, "truck": truck,
           "producer": _issue(app, "enterprise", units=[plant], name="张三"),
           "carrier": _issue(app, "enterprise", units=[truck], name="李四"),
           "receiver": _issue(app, "enterprise", units=[site], name="王五"),
           "regulator": _issue(app, "regulator", district="630100", name="市生态环境局")}
    srv.close()
    app.extensions["nofei.engine"].dispose()


def session(browser: Any, world: dict[str, Any], who: str, viewport: dict[str, int] | None = None) -> Any:
    ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 860}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, world["url"], world[who])
    return page


def fits_phone(page: Any) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"{page.url} scrolls sideways: {width} px"


def submit_manifest(page: Any, world: dict[str, Any], qty: str = "9.5") -> str:
    base = world["url"]
    page.goto(f"{base}/manifests/new")
    page.get_by_label("按废物代码").fill(CODE)
    page.get_by_role("button", name="查找").click()
    page.wait_for_load_state()
    options = page.get_by_label("接收单位").inner_text()
    assert "湟中危废处置中心" in options and "城北再生公司" not in options  # only permits covering HW49
    page.get_by_label("接收单位").select_option(world["site"])
    page.get_by_label("承运单位").select_option(world["truck"])
    page.get_by_label("计划转移日期").fill(_today().isoformat())
    assert page.get_by_label("废物代码", exact=True).first.input_value() == CODE
    page.get_by_label("数量（吨）").first.fill(qty)
    page.get_by_label("包装方式").first.fill("铁桶")
    page.get_by_label("包装数量（件）").first.fill("2")
    page.get_by_role("button", name="提交联单").click()
    page.wait_for_selector("#done")
    no = page.locator("h1 .no").inner_text().strip()
    assert re.fullmatch(r"\d{4}6301\d{6}", no), no  # 大通 is a county of Xining: 6301 (第十五条)
    return no


def ship(page: Any, world: dict[str, Any], no: str) -> None:
    page.goto(f"{world['url']}/manifests/party/carrier")
    fits_phone(page)
    assert no in page.locator("#manifest-list").inner_text()
    page.locator("#manifest-list li", has_text=no).get_by_role("link", name="发运").click()
    page.wait_for_selector("#ship-form")
    fits_phone(page)
    page.get_by_label("车牌号").fill("青A·D1234")
    page.get_by_label("驾驶员").fill("李四")
    page.get_by_label("营运证件号").fill("青交运管630100123")
    page.get_by_role("button", name="发运").click()
    page.wait_for_selector("#done")
    fits_phone(page)
    assert "运输中" in page.locator(".kv").inner_text()


def test_three_parties_move_a_load_from_submission_to_receipt(browser: Any, world: dict[str, Any]) -> None:
    producer = session(browser, world, "producer")
    carrier = session(browser, world, "carrier", PHONE)
    receiver = session(browser, world, "receiver", PHONE)
    no = submit_manifest(producer, world)
    shot(producer, "20-manifest-submitted")
    ship(carrier, world, no)
    shot(carrier, "21-manifest-shipped-phone")

    receiver.goto(f"{world['url']}/manifests/party/receiver")
    fits_phone(receiver)
    receiver.locator("#manifest-list li", has_text=no).get_by_role("link", name="接收/拒收").click()
    receiver.wait_for_selector("#receive-form")
    fits_phone(receiver)
    form = receiver.locator("#receive-form")
    form.get_by_label("实收量（吨）").fill("9.42")
    form.get_by_label("利用处置方式").select_option("D10")
    form.get_by_label("接受日期").fill(_today().isoformat())
    receiver.get_by_role("button", name="确认接收").click()
    receiver.wait_for_selector("#done")
    fits_phone(receiver)
    shot(receiver, "22-manifest-received-phone")

    producer.goto(f"{world['url']}/manifests/{no}")
    assert "已接收" in producer.locator(".kv").inner_text()
    history = producer.locator("#history").inner_text()
    for text in ("提交联单", "发运", "确认接收", "城东危货运输公司（承运人）", "湟中危废处置中心（接受人）", "大通铸造厂（移出人）"):
        assert text in history, text
    producer.get_by_role("link", name="打印联单").click()
    producer.wait_for_selector("#manifest-sheet")
    assert producer.locator("#qr svg").count() == 1 and producer.locator(".hw-label").count() == 2
    assert "9.42" in producer.locator("#manifest-sheet").inner_text()
    producer.emulate_media(media="print")
    assert producer.locator(".noprint").first.is_hidden()
    shot(producer, "23-manifest-print")
    # the producer's list counts it as received
    producer.goto(f"{world['url']}/manifests/party/shipper")
    assert producer.locator("#counts a[data-status=received] strong").inner_text() == "1"


def test_a_refused_load_returns_and_the_regulator_sees_no_anomaly(browser: Any, world: dict[str, Any]) -> None:
    producer = session(browser, world, "producer")
    carrier = session(browser, world, "carrier", PHONE)
    receiver = session(browser, world, "receiver", PHONE)
    no = submit_manifest(producer, world, qty="3")
    ship(carrier, world, no)
    receiver.goto(f"{world['url']}/manifests/{no}/receive")
    rej = receiver.locator("#reject-form")
    rej.get_by_label("拒收原因").fill("包装破损，桶体渗漏")
    rej.get_by_label("包装方式").check()
    receiver.get_by_role("button", name="拒收", exact=True).click()
    receiver.wait_for_selector("#done")
    fits_phone(receiver)
    back = receiver.locator("#done a").inner_text().strip()
    assert back != no and "拒收/退回" in receiver.locator(".kv").inner_text()

    producer.goto(f"{world['url']}/manifests/{back}")
    producer.get_by_role("link", name="退回入库").click()
    producer.wait_for_selector("#receive-form")
    assert producer.locator("#reject-form").count() == 0
    producer.get_by_role("button", name="确认接收").click()
    producer.wait_for_selector("#done")
    assert "已接收" in producer.locator(".kv").inner_text()
    shot(producer, "24-return-received")

    regulator = session(browser, world, "regulator")
    regulator.goto(f"{world['url']}/anomalies?year={_today().year}")
    body = regulator.locator("main").inner_text()
    assert no not in body and back not in body


def test_the_parties_pages_fit_a_phone(browser: Any, world: dict[str, Any]) -> None:
    producer = session(browser, world, "producer", PHONE)
    no = submit_manifest(producer, world, qty="1.2")
    for path in ("/manifests/new", f"/manifests/new?code={CODE}", "/manifests/party/shipper", "/manifests",
                 f"/manifests/{no}", f"/manifests/{no}/print"):
        producer.goto(world["url"] + path)
        fits_phone(producer)
    carrier = session(browser, world, "carrier", PHONE)
    for path in ("/manifests/party/carrier", f"/manifests/{no}/ship", f"/manifests/{no}"):
        carrier.goto(world["url"] + path)
        fits_phone(carrier)
    shot(carrier, "25-ship-form-phone")
