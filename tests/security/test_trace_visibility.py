"""Issue 17 item 8: a trace shows only what its caller may read. An enterprise that ships 1 kg to any unit
used to read, in that manifest's trace, the unit's downstream receivers, a year's tonnage on those edges and
other parties' manifest numbers (each a 404 for it elsewhere)."""

from __future__ import annotations

import json
import re

import pytest

from ledgers import trace as tr
from ledgers import trace_view
from nofei.access import SYSTEM, Actor
from nofei.storage import flowdata
from tests.api.test_trace_api import _flow, _ledgers
from tests.api.test_web_pages import sign_in
from tests.factories import register
from tests.services import test_manifest_trace as mt
from tests.services.test_manifest_trace import HW, ship, unit

city = mt.city  # the fixture: P1, P2 → C1 → C2 → D with a loop

HIDDEN = "其他单位（不可见）"


def dump(x) -> str:
    return json.dumps(x, ensure_ascii=False, default=str)


def third_party(city, *keys) -> list[str]:
    return [city[k] for k in keys] + list(city["nos"].values())


def test_one_kilogram_to_a_collector_reveals_nothing_beyond_it(uow_factory, city):
    spy = unit(uow_factory, district="630105")
    no = ship(uow_factory, spy, city["c1"], "0.001")
    flowdata.clear_cache()  # the trace reads the one flow model (issue 12)
    with uow_factory() as uow:
        full = tr.trace_manifest(uow=uow, actor=SYSTEM, number=no)
    assert {(h["from"], h["to"]) for h in full["forward"][0]["hops"]} >= {(city["c1"], city["c2"])}  # it is there
    with uow_factory() as uow:
        t = tr.trace_manifest(uow=uow, actor=Actor("enterprise", units=frozenset({spy})), number=no)
    text = dump(t)
    for secret in third_party(city, "c2", "d", "p1", "p2"):
        assert secret not in text, secret
    (f,) = t["forward"]
    assert f["hops"] == []  # every onward edge is between third parties
    ends = full["forward"][0]["terminals"]  # all at third parties: one anonymous entry of their sum
    mass, share = round(sum(e["mass_t"] for e in ends), 3), round(sum(e["share"] for e in ends), 6)
    assert f["terminals"] == [{"unit": None, "name": HIDDEN, "fate": "hidden", "mass_t": mass, "share": share}]
    assert f["fates"] == {"U": 0.0, "D": 0.0, "S": 0.0, "X": 0.0, "hidden": mass}
    assert t["manifest_hops"] == full["manifest_hops"]  # its own manifest, in full
    nodes = {n["id"]: n for n in t["graph"]["nodes"]}
    assert set(nodes) == {f"{city['c1']}|{HW}", f"{spy}|{HW}", f"hidden|{HW}"} | {
        i for i in nodes if i.startswith("origin|")}
    assert nodes[f"hidden|{HW}"] == {"id": f"hidden|{HW}", "kind": "hidden", "name": HIDDEN, "waste_code": HW}
    assert all(ln["source"] in nodes and ln["target"] in nodes for ln in t["graph"]["links"])
    assert [ln["mass_t"] for ln in t["graph"]["links"] if ln["target"] == f"hidden|{HW}"] == [None]
    (b,) = t["backward"]
    assert [p["unit"] for p in b["producers"]] == [spy]  # its own waste, generated (or unknown) at itself


def test_a_unit_trace_keeps_the_hops_the_unit_is_party_to(uow_factory, city):
    c1 = Actor("enterprise", units=frozenset({city["c1"]}))
    with uow_factory() as uow:
        full = tr.trace_unit(uow=uow, actor=SYSTEM, credit_code=city["c1"], year=2024, waste_code=HW)
    with uow_factory() as uow:
        t = tr.trace_unit(uow=uow, actor=c1, credit_code=city["c1"], year=2024, waste_code=HW)
    (f0,), (f,) = full["traces"], t["traces"]
    hops0 = {(h["from"], h["to"]): h for h in f0["hops"]}
    assert (city["c2"], city["d"]) in hops0
    kept = {(h["from"], h["to"]): h for h in f["hops"]}
    assert set(kept) == {k for k in hops0 if city["c1"] in k}  # C2 → D is between others
    assert all(kept[k] == hops0[k] for k in kept)  # the kept ones in full
    assert {e["unit"] for e in f["terminals"]} == {city["c1"], None}  # C1's own U; D's D is anonymous
    assert f["fates"]["U"] == next(e["mass_t"] for e in f0["terminals"] if e["unit"] == city["c1"])
    assert f["fates"]["D"] == 0 and f["fates"]["hidden"] == pytest.approx(f0["fates"]["D"], abs=0.002)
    assert city["nos"]["c2d"] not in dump(t) and city["p1"] not in dump(t)


def test_admins_and_city_regulators_see_the_whole_trace(uow_factory, city):
    with uow_factory() as uow:
        full = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"])
    for a in (Actor("admin", name="x"), Actor("regulator", district="630100")):
        with uow_factory() as uow:
            assert tr.trace_manifest(uow=uow, actor=a, number=city["nos"]["p1"]) == full


def test_restrict_trace_is_a_pure_rule():
    """The rule on a made-up result: A (visible) → B (named) → C (hidden) → D; fates at B, C and D."""
    r = {"unit": "A", "year": 2024, "direction": "forward", "traces": [{
        "waste_code": "w", "start_t": 10.0, "closed_loop": False, "hops_omitted": {"count": 0, "mass_t": 0.0},
        "hops": [{"from": "A", "to": "B", "mass_t": 10.0, "edge_t": 50.0, "example_manifest": "1"},
                 {"from": "B", "to": "C", "mass_t": 6.0, "edge_t": 80.0, "example_manifest": "2"}],
        "terminals": [{"unit": "B", "fate": "U", "mass_t": 4.0, "share": 0.4},
                      {"unit": "C", "fate": "D", "mass_t": 6.0, "share": 0.6}],
        "fates": {"U": 4.0, "D": 6.0, "S": 0.0, "X": 0.0}}],
        "graph": {"directed": True, "multigraph": False, "graph": {}, "nodes": [
            {"id": "A|w", "kind": "unit", "unit": "A", "name": "甲"}, {"id": "B|w", "kind": "unit", "unit": "B", "name": "乙"},
            {"id": "C|w", "kind": "unit", "unit": "C", "name": "丙"}, {"id": "U|w", "kind": "fate", "fate": "U"},
            {"id": "D|w", "kind": "fate", "fate": "D"}],
            "links": [{"source": "A|w", "target": "B|w", "mass_t": 10.0}, {"source": "B|w", "target": "C|w", "mass_t": 6.0},
                      {"source": "B|w", "target": "U|w", "mass_t": 4.0}, {"source": "C|w", "target": "D|w", "mass_t": 6.0}]}}
    t = trace_view.restrict_trace(r, Actor("enterprise", units=frozenset({"A"})), {"A"})
    (f,) = t["traces"]
    assert f["hops"] == [r["traces"][0]["hops"][0]]
    assert f["terminals"] == [{"unit": None, "name": HIDDEN, "mass_t": 10.0, "share": 1.0, "fate": "hidden"}]
    assert f["fates"] == {"U": 0.0, "D": 0.0, "S": 0.0, "X": 0.0, "hidden": 10.0}
    assert {n["id"] for n in t["graph"]["nodes"]} == {"A|w", "B|w", "hidden|w"}
    assert [(ln["source"], ln["target"]) for ln in t["graph"]["links"]] == [("A|w", "B|w"), ("B|w", "hidden|w")]
    assert "丙" not in dump(t) and '"C' not in dump(t) and "80.0" not in dump(t)
    assert trace_view.restrict_trace(r, SYSTEM, set()) is r


def test_over_http_a_district_regulator_sees_its_districts_part(app, client, admin, tokens):
    p = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    d = register(client, admin, district="630105", roles=["disposer"])["credit_code"]
    no = _flow(client, admin, p, c, 4)
    onward = _flow(client, admin, c, d, 4)
    # the ledgers declaring those moves: the trace reads the one flow model (issue 12)
    _ledgers(app, {p: (0, [(c, 4, no)], 0), c: (4, [(d, 4, onward)], 0), d: (4, [], 4)})
    reg = tokens("regulator", district="630104")
    r = client.get(f"/api/v1/manifests/{no}/trace", headers=reg)
    assert r.status_code == 200
    assert d not in r.get_data(as_text=True) and onward not in r.get_data(as_text=True)
    assert r.json["forward"][0]["hops"] == [] and r.json["forward"][0]["fates"]["hidden"] == 4.0
    assert r.json["forward"][0]["terminals"] == [{"unit": None, "name": HIDDEN, "fate": "hidden", "mass_t": 4.0,
                                                  "share": 1.0}]
    assert admin and client.get(f"/api/v1/manifests/{no}/trace", headers=admin).json["forward"][0]["hops"]
    # the unit trace of its own unit, forward: P → C is its own, C → D is not
    u = client.get(f"/api/v1/units/{p}/trace", query_string={"year": 2024}, headers=reg)
    assert u.status_code == 200 and [(h["from"], h["to"]) for h in u.json["traces"][0]["hops"]] == [(p, c)]
    assert d not in u.get_data(as_text=True)


def test_an_enterprise_shipping_1kg_reads_no_third_party_over_http_and_on_the_page(client, admin, tokens):
    spy = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    d = register(client, admin, district="630105", roles=["disposer"])["credit_code"]
    onward = _flow(client, admin, c, d, 40)
    ent = tokens("enterprise", units=[spy])
    no = client.post("/api/v1/manifests", json={"receiver": c, "planned_date": "2024-06-03",
                                                "lines": [{"waste_code": HW, "quantity_t": "0.001"}]},
                     headers=ent).json["number"]
    assert client.post(f"/api/v1/manifests/{no}/ship", json={"vehicle": "青A1", "driver": "王"},
                       headers=ent).status_code == 200
    assert client.get(f"/api/v1/manifests/{onward}", headers=ent).status_code == 404  # not its business
    r = client.get(f"/api/v1/manifests/{no}/trace", headers=ent)
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert d not in body and onward not in body and "40.0" not in body
    sign_in(client, ent)
    page = client.get(f"/manifests/{no}").get_data(as_text=True)
    assert HIDDEN in page and d not in page and onward not in page and not re.search(r"40(\.0+)? t", page)
