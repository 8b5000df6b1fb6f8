"""Issue 16 §5 and §8 through HTTP: event time beside entry time, what is refused and what is flagged, the
接受日期 and the deadline counted from it, the number's prefix from the shipping site's district, the OpenAPI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from nofei.domain.calendar import to_cst
from nofei.domain.manifests import WorkCalendar
from tests.api.test_manifest_api import CODE, _create
from tests.api.test_manifest_api import world as world  # noqa: F401 - the fixture
from tests.factories import register

BEIJING = timezone(timedelta(hours=8))


def _today() -> str:
    return datetime.now(BEIJING).date().isoformat()


def _iso(d: datetime) -> str:
    return d.astimezone(UTC).isoformat()


def _ship(client, w, no, time=None, **kw):
    body = {"vehicle": "青A12345", "driver": "张三", "permit_no": "青交运管001", **kw}
    if time is not None:
        body["time"] = time
    return client.post(f"/api/v1/manifests/{no}/ship", json=body, headers=w["h"]["carrier"])


def _receive(client, w, no, **kw):
    body = {"lines": [{"line_no": 1, "received_t": "10", "method": "D10"}], **kw}
    return client.post(f"/api/v1/manifests/{no}/receive", json=body, headers=w["h"]["receiver"])


def test_future_and_out_of_order_events_are_refused_and_change_nothing(client, world):  # noqa: F811
    no = _create(client, world)["number"]
    future = datetime.now(UTC) + timedelta(hours=2)
    r = _ship(client, world, no, _iso(future))
    assert r.status_code == 422 and r.json["errors"][0]["code"] == "in_future" and r.json["errors"][0]["field"] == "time"
    assert client.get(f"/api/v1/manifests/{no}", headers=world["h"]["shipper"]).json["status"] == "submitted"
    shipped = datetime.now(UTC) - timedelta(hours=3)
    assert _ship(client, world, no, _iso(shipped)).status_code == 200
    r = _receive(client, world, no, time=_iso(shipped - timedelta(hours=1)))
    assert r.status_code == 422 and r.json["errors"][0]["code"] == "before_shipping"
    # 接受日期 before the shipping date, or after the receipt time: refused
    r = _receive(client, world, no, accepted_on=(shipped - timedelta(days=2)).date().isoformat())
    assert r.status_code == 422 and r.json["errors"][0]["code"] == "before_shipping"
    r = _receive(client, world, no, time=_iso(shipped + timedelta(hours=1)),
                 accepted_on=(datetime.now(UTC) + timedelta(days=3)).date().isoformat())
    assert r.status_code == 422 and {e["code"] for e in r.json["errors"]} >= {"after_receipt", "in_future"}
    assert client.get(f"/api/v1/manifests/{no}", headers=world["h"]["shipper"]).json["status"] == "in_transit"


def test_each_step_has_event_and_entry_time_and_a_late_entry_is_flagged(client, world):  # noqa: F811
    no = _create(client, world)["number"]
    cal = WorkCalendar()
    today = datetime.now(UTC)
    back = today - timedelta(days=1)
    while cal.working_days_between(back.date(), today.date()) <= 10:
        back -= timedelta(days=1)
    assert _ship(client, world, no, _iso(back)).status_code == 200
    r = _receive(client, world, no)  # time defaults to now: 接受日期 today
    assert r.status_code == 200 and r.json["accepted_on"] == _today()
    m = client.get(f"/api/v1/manifests/{no}", headers=world["h"]["shipper"]).json
    ship_ev = next(h for h in m["history"] if h["action"] == "ship")
    assert datetime.fromisoformat(ship_ev["event_time"]) < datetime.fromisoformat(ship_ev["time"]) - timedelta(days=10)
    assert "late_entry" in ship_ev["flags"] and "补录超过10个工作日" in ship_ev["flags_zh"]
    assert "before_submission" in ship_ev["flags"]  # shipped before the 联单 existed in nofei: paper fallback
    assert (ship_ev["action_zh"], ship_ev["party_zh"], ship_ev["to_status_zh"]) == ("发运", "承运人", "运输中")
    assert ship_ev["unit"] == world["c"] and ship_ev["unit_name"]
    assert m["permit_no"] == "青交运管001" and m["shipped_entered_at"] and m["received_entered_at"]
    recv_ev = next(h for h in m["history"] if h["action"] == "receive")
    assert recv_ev["flags"] == [] and recv_ev["actor_zh"].startswith("企业")


def test_receipt_overdue_counts_from_the_acceptance_date(client, world, admin):  # noqa: F811
    """Shipped 30 days ago, accepted today and confirmed today: in time (第十八条 在接受之日起); accepted 30 days
    ago and confirmed today: overdue, saying when it was recorded."""
    shipped = datetime.now(UTC) - timedelta(days=30)
    on_time = _create(client, world)["number"]
    late = _create(client, world)["number"]
    for no in (on_time, late):
        assert _ship(client, world, no, _iso(shipped)).status_code == 200
    assert _receive(client, world, on_time).status_code == 200
    # the 接受日期 of the late one is the shipping day on China Standard Time (16:00-24:00 UTC is the next day there)
    assert _receive(client, world, late, accepted_on=to_cst(shipped).date().isoformat()).status_code == 200
    year = date.today().year
    got = client.get(f"/api/v1/anomalies?year={year}&kind=receipt_overdue", headers=admin).json["items"]
    assert {a["manifests"][0] for a in got} == set()  # planned 2024: not this year's
    got = client.get("/api/v1/anomalies?year=2024&kind=receipt_overdue", headers=admin).json["items"]
    by_no = {a["manifests"][0]: a for a in got}
    assert late in by_no and on_time not in by_no
    assert by_no[late]["detail"]["counted_from"] == "accepted_on"
    assert by_no[late]["detail"]["recorded_on"] == _today()


def test_the_number_prefix_is_the_shipping_sites_city(client, admin, tokens):
    """第十五条: digits 5-8 are the 移出地 province and 设区的市. A unit in 湟源 (630123) registered with a credit code
    of another authority still numbers 6301."""
    from nofei.domain.units import make_credit_code

    cc = make_credit_code("632100", "MA7654321")  # registered in Haidong (6321), site in 湟源
    s = register(client, admin, code=cc, district="630123", roles=["producer"])["credit_code"]
    r = register(client, admin, district="630102", roles=["disposer"], permits=[
        {"number": "P1", "waste_codes": ["HW08"], "methods": ["D10"], "capacity_t": "10"}])["credit_code"]
    got = client.post("/api/v1/manifests", headers=tokens("enterprise", units=[s]), json={
        "receiver": r, "planned_date": "2025-06-01", "lines": [{"waste_code": CODE, "quantity_t": "1"}]})
    assert got.status_code == 201 and got.json["number"].startswith("20256301")


def test_openapi_says_which_time_rules_refuse_and_which_flag_and_that_the_tolerance_is_local(client):
    spec = client.get("/api/v1/openapi.json").json
    text = str(spec)
    assert "REFUSED" in text and "FLAGGED" in text and "第二十条" in text
    assert "LOCAL SETTING" in text and "accepted_on" in text and "permit_no" in text
