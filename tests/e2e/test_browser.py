"""The pages in a real browser: Debian's headless chromium driven by Playwright against the real app
served by waitress on a free port with a fresh SQLite database.

A clerk uploads a bad workbook and sees its errors, then a good one and sees the receipt; a regulator
opens the dashboard and the charts are there; an admin manages units and tokens. Screenshots of every
page go to ``artifacts/screenshots/`` (not committed)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import workbooks

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (make browser-deps)")]


def _issue(app: Any, role: str, **kw: Any) -> str:
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    with UnitOfWork(app.extensions["nofei.sessions"], catalogue=app.extensions["nofei.catalogue"]) as uow:
        return registry.create_token(uow=uow, actor=SYSTEM, role=role, **kw).token


def _seed(app: Any) -> dict[str, Any]:
    """Three units, one month of accepted ledgers (so the dashboard has figures and flows), and tokens."""
    from imports import read_monthly_ledger
    from ledgers import ledger, registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork
    from tests.factories import unit_payload

    def uow() -> UnitOfWork:
        return UnitOfWork(app.extensions["nofei.sessions"], catalogue=app.extensions["nofei.catalogue"])

    with uow() as u:
        plant = registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload("630104", name="城西冶炼厂"))
    with uow() as u:
        cement = registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload("630106", name="湟中水泥厂",
                                                                               roles=["utiliser"]))
    with uow() as u:
        registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload("630102", name="城东机械厂"))
    with uow() as u:
        disposer = registry.register_unit(uow=u, actor=SYSTEM, data=unit_payload(
            "630106", name="湟中危废处置中心", roles=["disposer"],
            permits=[{"number": "P-1", "waste_codes": ["HW49"], "methods": ["D10"], "capacity_t": "1000"}]))
    number = _manifest(app, plant["credit_code"], disposer["credit_code"])
    hw_a, hw_b = workbooks.hw_pair(plant["credit_code"], plant["name"], disposer["credit_code"], disposer["name"], number)
    for data in (workbooks.good(plant["credit_code"], plant["name"], "2025-02", receiver=cement["credit_code"]),
                 workbooks.receiver(cement["credit_code"], cement["name"], "2025-02", sender=plant["credit_code"]),
                 hw_a, hw_b):
        with uow() as u:
            draft = read_monthly_ledger(data, filename="seed.xlsx", catalogue=u.catalogue)
            ledger.submit_monthly_ledger(uow=u, actor=SYSTEM, draft=draft, content=data, filename="seed.xlsx")
    return {"plant": plant, "cement": cement, "disposer": disposer, "manifest": number,
            "clerk": _issue(app, "enterprise", units=[plant["credit_code"]], name="张三"),
            "regulator": _issue(app, "regulator", district="630100", name="市生态环境局"),
            "admin": _issue(app, "admin", name="管理员")}


def _manifest(app: Any, shipper: str, receiver: str) -> str:
    """A manifest taken through its lifecycle by the parties named on it, through the API."""
    c = app.test_client()
    ship = {"Authorization": "Bearer " + _issue(app, "enterprise", units=[shipper])}
    recv = {"Authorization": "Bearer " + _issue(app, "enterprise", units=[receiver])}
    r = c.post("/api/v1/manifests", headers=ship, json={"receiver": receiver, "planned_date": "2025-01-10",
                                                         "lines": [{"waste_code": "900-041-49", "quantity_t": "8"}]})
    assert r.status_code == 201, r.json
    no = r.json["number"]
    r = c.post(f"/api/v1/manifests/{no}/ship", headers=ship,
               json={"vehicle": "青A12345", "driver": "李四", "time": "2025-01-10T09:00:00+08:00"})
    assert r.status_code == 200, r.json
    r = c.post(f"/api/v1/manifests/{no}/receive", headers=recv,
               json={"lines": [{"line_no": 1, "received_t": "8", "method": "D10"}], "time": "2025-01-10T15:00:00+08:00"})
    assert r.status_code == 200, r.json
    return no


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import waitress

    from api import create_app

    db = tmp_path_factory.mktemp("e2e") / "nofei.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING"})
    seed = _seed(app)
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield {"url": f"http://127.0.0.1:{srv.effective_port}", "app": app, **seed}
    srv.close()
    app.extensions["nofei.engine"].dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN", accept_downloads=True)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_clerk_sees_errors_then_a_receipt(server: dict[str, Any], page: Any, tmp_path: Path) -> None:
    base, plant, cement = server["url"], server["plant"], server["cement"]
    page.goto(f"{base}/login")
    shot(page, "01-login")
    sign_in(page, base, server["clerk"])
    assert page.url.endswith("/ledgers")
    shot(page, "02-ledgers")

    bad = tmp_path / "三月台账.xlsx"
    bad.write_bytes(workbooks.bad(plant["credit_code"], plant["name"], "2025-03"))
    page.set_input_files("input[type=file]", str(bad))
    page.click("#upload")
    page.wait_for_selector("#rejected")
    rows = page.locator("table.errors tbody tr")
    assert rows.count() >= 3
    text = page.locator("table.errors").inner_text()
    assert "Z9" in text and "很多" in text and "利用处置" in text
    assert page.locator("#annotated").is_visible()
    shot(page, "03-upload-errors")
    with page.expect_download() as dl:
        page.click("#annotated")
    assert dl.value.suggested_filename.endswith(".xlsx")

    good = tmp_path / "三月台账-修改.xlsx"
    good.write_bytes(workbooks.good(plant["credit_code"], plant["name"], "2025-03", receiver=cement["credit_code"]))
    page.set_input_files("input[type=file]", str(good))
    page.click("#upload")
    page.wait_for_selector("#receipt")
    receipt = page.locator("#receipt").inner_text()
    assert "上传成功" in receipt and "2025-03" in receipt and "第 1 版" in receipt
    shot(page, "04-upload-receipt")

    page.click("text=查看此版本 →")
    page.wait_for_selector("h1")
    assert "2025-03" in page.locator("h1").inner_text()
    shot(page, "05-ledger-version")


def test_regulator_dashboard_draws_its_charts(server: dict[str, Any], page: Any) -> None:
    base = server["url"]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, base, server["regulator"])
    assert page.url.endswith("/dashboard")
    page.goto(f"{base}/dashboard?year=2025&region=630100")
    assert page.locator("article.card").count() == 12  # nine, and issue 18 adds three
    assert page.locator("svg.chart").count() >= 9 + 1 + 5
    # the general industrial Sankey has bands, and the rate chart bars
    assert page.locator("svg.sankey path.link").count() > 0
    assert page.locator("svg.bars rect.bar").count() > 0
    box = page.locator("svg.sankey").first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    assert not [e for e in errors if "Content Security Policy" in e], errors
    shot(page, "06-dashboard")

    page.click("article[data-key=general_industrial_utilisation_rate] a.lineage")
    page.wait_for_selector("table.lineage-units")
    assert "城西冶炼厂" in page.locator("table.lineage-units").inner_text()
    shot(page, "07-lineage")

    page.goto(f"{base}/reports/annual?year=2025&region=630100")
    assert page.locator("svg.sankey").count() >= 1
    shot(page, "08-annual-report")
    page.goto(f"{base}/anomalies?year=2025")
    assert page.locator("h1").inner_text() == "异常事项"
    shot(page, "09-anomalies")
    page.goto(f"{base}/manifests")
    assert server["manifest"] in page.locator("table.data").inner_text()
    shot(page, "10-manifests")
    page.fill("input[name=number]", server["manifest"])
    page.click("form.inline button[type=submit]")
    page.wait_for_selector("svg.path")
    trace = page.locator("svg.path")
    assert trace.locator("rect.node").count() >= 4  # producer, shipper, disposer, fate
    labels = trace.text_content() or ""
    assert "处置" in labels and "湟中危废处置中心" in labels
    assert trace.locator("path.edge").count() >= 3
    shot(page, "10b-manifest-trace")


def test_admin_manages_units_and_tokens(server: dict[str, Any], page: Any) -> None:
    base = server["url"]
    sign_in(page, base, server["admin"])
    page.goto(f"{base}/admin/units")
    assert "城西冶炼厂" in page.locator("table.data").inner_text()
    shot(page, "11-admin-units")
    page.goto(f"{base}/admin/tokens")
    page.select_option("select[name=role]", "regulator")
    page.select_option("select[name=district]", "630104")
    page.fill("input[name=name]", "城西区监管")
    page.click("form.inline button[type=submit]")
    page.wait_for_selector("#new-token")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("nf_")
    shot(page, "12-admin-tokens")
    # the new token signs a regulator in, who sees only their district
    page.click("text=退出")
    sign_in(page, base, token)
    resp = page.goto(f"{base}/dashboard?region=630102")
    assert resp is not None and resp.status == 403


def test_admin_registers_a_clinic_and_changes_a_unit_type(server: dict[str, Any], page: Any) -> None:
    """Issue 18: unit_type and the ≤ 19-bed clinic mark on the admin page, at phone width."""
    from nofei.domain.units import make_credit_code

    base = server["url"]
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, server["admin"])
    page.goto(f"{base}/admin/units")
    cc = make_credit_code("630104", "CLN000001", dept="1", kind="2")
    form = page.locator("form.inline[method=post]").first
    form.locator("input[name=credit_code]").fill(cc)
    form.locator("input[name=name]").fill("城西社区卫生服务站")
    form.locator("select[name=unit_type]").select_option("medical_institution")
    form.locator("input[name=small_clinic]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "已登记：城西社区卫生服务站" in page.inner_text("body")
    row = page.locator("table.data tr", has_text=cc)
    assert row.locator("select[name=unit_type]").input_value() == "medical_institution"
    assert row.locator("input[name=small_clinic]").is_checked()
    # change it to a social-source unit from its row: the clinic mark goes
    row.locator("select[name=unit_type]").select_option("social_source")
    row.locator("input[name=small_clinic]").uncheck()
    row.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "为社会源产生单位" in page.inner_text("body")
    row = page.locator("table.data tr", has_text=cc)
    assert row.locator("select[name=unit_type]").input_value() == "social_source"
    shot(page, "13-admin-unit-types")


def test_clerk_downloads_declarations_and_regulator_sees_who_is_late(server: dict[str, Any], page: Any,
                                                                      tmp_path: Path) -> None:
    """Issue 14: the clerk's declaration page (tier, calendar, one-click and chosen-period downloads) and the
    regulator's status grid, at desktop width and at 390 px."""
    from openpyxl import load_workbook

    base, plant = server["url"], server["plant"]
    sign_in(page, base, server["clerk"])
    page.click("text=危废申报")
    page.wait_for_selector(f"#unit-{plant['credit_code']}")
    card = page.locator(f"#unit-{plant['credit_code']}")
    assert "登记管理" in card.locator("#tier").inner_text()
    assert "8.000 吨" in card.locator(".reason").inner_text()
    shot(page, "20-declarations")
    with page.expect_download() as dl:
        card.locator("a.button", has_text="2025年度").click()
    path = tmp_path / "annual.xlsx"
    dl.value.save_as(path)
    ws = load_workbook(path)["表C.3"]
    assert ws["A1"].value.startswith("危险废物年度申报报告")
    cells = [c.value for row in ws.iter_rows() for c in row]
    assert "900-041-49" in cells and plant["name"] in cells
    card.locator("input[name=period]").fill("2025-01")
    with page.expect_download() as dl:
        card.locator("form button[type=submit]").click()
    dl.value.save_as(tmp_path / "m.xlsx")
    assert "表C.1" in load_workbook(tmp_path / "m.xlsx").sheetnames
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    shot(page, "21-declarations-390")

    page.click("text=退出")
    page.set_viewport_size({"width": 1366, "height": 860})
    sign_in(page, base, server["regulator"])
    page.goto(f"{base}/declarations/status?year=2025")
    assert "家有逾期未齐的申报" in page.locator("#summary").inner_text()
    disposer = server["disposer"]
    grid = page.locator("#district-630106 table.grid")
    row = grid.locator("tr", has_text=disposer["name"])
    assert "重点监管" in row.inner_text()  # its HW permit makes it a key unit: monthly declarations
    assert row.locator(".badge.bad").count() >= 10  # February to November (and more) have no ledger
    assert page.locator("#district-630104 tr", has_text=plant["name"]).count() == 1
    shot(page, "22-declaration-status")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # the grid scrolls inside its box
    shot(page, "23-declaration-status-390")
