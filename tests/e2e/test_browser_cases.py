"""Casework in a real browser (issue 13): an enterprise answers a case on 我的待办 in one browser session, the
district regulator closes it in another; both pages at phone width without horizontal scroll."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM, _issue, pytestmark, shot, sign_in  # noqa: F401


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import waitress

    from api import create_app
    from tests.factories import register

    db = tmp_path_factory.mktemp("e2e-cases") / "nofei.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING"})
    c = app.test_client()
    admin = {"Authorization": "Bearer " + _issue(app, "admin", name="管理员")}
    s = register(c, admin, district="630104", name="城西冶炼厂")["credit_code"]
    r = register(c, admin, district="630104", name="城西危废处置中心", roles=["disposer"], permits=[
        {"number": "P-1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "1000"}])["credit_code"]
    body = {"shipper": s, "receiver": r, "planned_date": "2025-03-03",
            "lines": [{"waste_code": "900-200-08", "quantity_t": "2", "planned_method": "D10"}]}
    no = c.post("/api/v1/manifests", json=body, headers=admin).json["number"]
    assert c.post(f"/api/v1/manifests/{no}/ship", headers=admin, json={
        "vehicle": "青A12345", "driver": "李四", "time": "2025-03-03T09:00:00+08:00"}).status_code == 200
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield {"url": f"http://127.0.0.1:{srv.effective_port}", "manifest": no,
           "receiver": _issue(app, "enterprise", units=[r], name="处置中心"),
           "regulator": _issue(app, "regulator", district="630104", name="城西区生态环境局")}
    srv.close()
    app.extensions["nofei.engine"].dispose()


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1"))


def test_a_regulator_closes_a_case_the_enterprise_answered(world: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    base = world["url"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        reg = b.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN").new_page()
        ent = b.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()

        sign_in(reg, base, world["regulator"])
        reg.goto(f"{base}/cases?year=2025")
        reg.select_option("select[name=kind]", "receipt_overdue")
        reg.click("form.inline button[type=submit]")
        assert "超过5个工作日未确认接收" in reg.locator("table.data").inner_text()
        reg.click("table.data a[href^='/cases/']")
        reg.wait_for_selector("h1")
        case_url = reg.url
        reg.select_option("select[name=action]", "notify")
        reg.fill("textarea[name=text]", "请说明联单未确认接收的原因")
        reg.click("form.panel button[type=submit]")
        assert "已通知企业" in reg.locator("main").inner_text()
        shot(reg, "20-case-notified")

        sign_in(ent, base, world["receiver"])
        ent.goto(f"{base}/todo")
        assert "已通知企业" in ent.locator("main").inner_text()
        assert no_horizontal_scroll(ent)
        shot(ent, "21-todo-390px")
        ent.fill("textarea[name=text]", "车辆故障，已于次日卸货，补录接收")
        ent.fill("input[name=link]", f"manifest:{world['manifest']}")
        ent.click("text=提交答复")
        ent.wait_for_load_state()
        assert ent.url.endswith("/todo")

        reg.goto(case_url)
        main = reg.locator("main").inner_text()
        assert "企业已答复" in main and "车辆故障" in main
        assert reg.locator(f"a[href='/manifests/{world['manifest']}']").count() >= 1
        reg.select_option("select[name=action]", "close")
        reg.fill("textarea[name=text]", "核实无误，结案")
        reg.click("form.panel button[type=submit]")
        main = reg.locator("main").inner_text()
        assert "已结案" in main and "结案（已解决）" in main
        shot(reg, "22-case-closed")
        phone = b.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
        sign_in(phone, base, world["regulator"])
        phone.goto(case_url)
        assert no_horizontal_scroll(phone)
        phone.goto(f"{base}/cases?year=2025")
        assert no_horizontal_scroll(phone)
        shot(phone, "23-cases-390px")
        b.close()
