"""Trace endpoints through HTTP: JSON hops and node-link subgraph, visibility."""

from sqlalchemy.orm import Session

from tests.factories import register
from tests.flowfactory import draft, store

HW = "900-200-08"


def _ledgers(app, flows: dict[str, tuple[float, list[tuple[str, float, str]], float]]) -> None:
    """June ledgers declaring what the manifests moved: unit -> (received t, [(receiver, t, number)], disposed t);
    the trace reads the one flow model, whose flows are what the ledgers declare."""
    with Session(app.extensions["nofei.engine"]) as s:
        for cc, (inn, outs, disposed) in flows.items():
            gen = sum(t for _r, t, _n in outs) + disposed - inn
            store(s, draft(cc, "2024-06", stocks=[(HW, 0, gen, 0)], treat=[(HW, "D10", disposed)] if disposed else [],
                           out=[(HW, r, t, n) for r, t, n in outs],
                           into=[(HW, "91630100MA00000000", inn)] if inn else []))
        s.commit()


def _flow(client, admin, a, b, t):
    no = client.post("/api/v1/manifests", json={"shipper": a, "receiver": b, "planned_date": "2024-06-03",
                                                "lines": [{"waste_code": HW, "quantity_t": str(t)}]}, headers=admin).json["number"]
    client.post(f"/api/v1/manifests/{no}/ship", json={"vehicle": "青A1", "driver": "王"}, headers=admin)
    r = client.post(f"/api/v1/manifests/{no}/receive", json={"lines": [{"line_no": 1, "received_t": str(t),
                                                                         "method": "D10"}]}, headers=admin)
    assert r.status_code == 200
    return no


def test_manifest_and_unit_traces(app, client, admin, tokens):
    p = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    d = register(client, admin, district="630105", roles=["disposer"])["credit_code"]
    no = _flow(client, admin, p, c, 4)
    no2 = _flow(client, admin, c, d, 4)
    _ledgers(app, {p: (0, [(c, 4, no)], 0), c: (4, [(d, 4, no2)], 0)})  # d has reported no ledger: X
    r = client.get(f"/api/v1/manifests/{no}/trace", headers=admin)
    assert r.status_code == 200, r.json
    f = r.json["forward"][0]
    assert [(h["from"], h["to"]) for h in f["hops"]] == [(c, d)] and f["fates"]["X"] == 4.0
    g = r.json["graph"]
    assert g["directed"] is True and {n["id"] for n in g["nodes"]} >= {f"{c}|{HW}", f"{d}|{HW}", f"X|{HW}"}
    u = client.get(f"/api/v1/units/{d}/trace", query_string={"direction": "backward", "year": 2024}, headers=admin)
    assert u.status_code == 200 and u.json["traces"][0]["producers"][0]["unit"] == p
    other = tokens("regulator", district="630103")
    assert client.get(f"/api/v1/manifests/{no}/trace", headers=other).status_code == 404
    assert client.get(f"/api/v1/units/{d}/trace", query_string={"year": 2024}, headers=other).status_code == 404
    assert client.get(f"/api/v1/units/{d}/trace", query_string={"year": 2024, "direction": "up"},
                      headers=admin).status_code == 422


def test_max_hops_query(app, client, admin):
    p = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    ds = [register(client, admin, district="630105", roles=["disposer"])["credit_code"] for _ in range(2)]
    no = _flow(client, admin, p, c, 4)
    n1 = _flow(client, admin, c, ds[0], 3)
    n2 = _flow(client, admin, c, ds[1], 1)
    _ledgers(app, {p: (0, [(c, 4, no)], 0), c: (4, [(ds[0], 3, n1), (ds[1], 1, n2)], 0),
                   ds[0]: (3, [], 3), ds[1]: (1, [], 1)})
    r = client.get(f"/api/v1/manifests/{no}/trace", query_string={"max_hops": 1}, headers=admin)
    assert r.status_code == 200, r.json
    f = r.json["forward"][0]
    assert [(h["from"], h["to"]) for h in f["hops"]] == [(c, ds[0])]
    assert f["hops_omitted"] == {"count": 1, "mass_t": 1.0}
    whole = client.get(f"/api/v1/manifests/{no}/trace", headers=admin).json["forward"][0]
    assert len(whole["hops"]) == 2 and whole["hops_omitted"]["count"] == 0
    assert client.get(f"/api/v1/manifests/{no}/trace", query_string={"max_hops": 0}, headers=admin).status_code == 422
    u = client.get(f"/api/v1/units/{c}/trace", query_string={"year": 2024, "max_hops": 1}, headers=admin)
    assert u.status_code == 200 and len(u.json["traces"][0]["hops"]) == 1
