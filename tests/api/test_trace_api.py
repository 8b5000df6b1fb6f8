"""Trace endpoints through HTTP: JSON hops and node-link subgraph, visibility."""

from tests.factories import register

HW = "900-200-08"


def _flow(client, admin, a, b, t):
    no = client.post("/api/v1/manifests", json={"shipper": a, "receiver": b, "planned_date": "2024-06-03",
                                                "lines": [{"waste_code": HW, "quantity_t": str(t)}]}, headers=admin).json["number"]
    client.post(f"/api/v1/manifests/{no}/ship", json={"vehicle": "青A1", "driver": "王"}, headers=admin)
    r = client.post(f"/api/v1/manifests/{no}/receive", json={"lines": [{"line_no": 1, "received_t": str(t),
                                                                         "method": "D10"}]}, headers=admin)
    assert r.status_code == 200
    return no


def test_manifest_and_unit_traces(client, admin, tokens):
    p = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    d = register(client, admin, district="630105", roles=["disposer"])["credit_code"]
    no = _flow(client, admin, p, c, 4)
    _flow(client, admin, c, d, 4)
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


def test_max_hops_query(client, admin):
    p = register(client, admin, district="630104")["credit_code"]
    c = register(client, admin, district="630102", roles=["collector"])["credit_code"]
    ds = [register(client, admin, district="630105", roles=["disposer"])["credit_code"] for _ in range(2)]
    no = _flow(client, admin, p, c, 4)
    _flow(client, admin, c, ds[0], 3)
    _flow(client, admin, c, ds[1], 1)
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
