"""Traces through two collectors and a loop, to fates with proportional shares and back to producers."""

from datetime import UTC, date, datetime

import pytest

from ledgers import manifests as man
from ledgers import registry
from ledgers import trace as tr
from nofei.access import SYSTEM, Actor
from nofei.errors import NotFound
from nofei.storage import flowdata, flowstore
from nofei.storage.repo import unit_row
from nofei.storage.tables import LedgerRow, StockEntryRow, TransferEntryRow, TreatmentEntryRow
from tests.factories import unit_payload

HW = "900-200-08"


def unit(uow_factory, district="630104"):
    with uow_factory() as uow:
        return registry.register_unit(uow=uow, actor=SYSTEM, data=unit_payload(district))["credit_code"]


def ledger(uow_factory, cc, *, gen=0, out=(), treat=(), stock_close=0, version=1):
    """The unit's June ledger of HW: ``out`` = [(receiver, kg, manifest number)] declared as 转出 rows."""
    with uow_factory() as uow:
        u = unit_row(uow.session, cc)
        if version > 1:
            for old in uow.session.query(LedgerRow).filter_by(unit_id=u.id, month="2024-06"):
                old.is_current = False
            uow.session.flush()
        lr = LedgerRow(unit_id=u.id, month="2024-06", year=2024, version=version, is_current=True,
                       sha256="x" * 64, uploaded_at=datetime.now(UTC))
        uow.session.add(lr)
        uow.session.flush()
        uow.session.add(StockEntryRow(ledger_id=lr.id, code=HW, stream="hazardous", open_kg=0, generated_kg=gen,
                                      close_kg=stock_close))
        for m, kg in treat:
            uow.session.add(TreatmentEntryRow(ledger_id=lr.id, code=HW, stream="hazardous", method=m, qty_kg=kg))
        for receiver, kg, no in out:
            uow.session.add(TransferEntryRow(ledger_id=lr.id, direction="out", day=date(2024, 6, 3), code=HW,
                                             stream="hazardous", qty_kg=kg, counterpart=receiver, manifest_no=no))
        uow.session.flush()
        flowstore.summarise_ledgers(uow.session, [lr.id])  # what an upload writes with its rows
        uow.commit()


def ship(uow_factory, a, b, t):
    with uow_factory() as uow:
        no = man.create_manifest(uow=uow, actor=SYSTEM, data={"shipper": a, "receiver": b, "planned_date": date(2024, 6, 3),
                                                              "lines": [{"waste_code": HW, "quantity_t": str(t)}]})["number"]
    with uow_factory() as uow:
        man.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王"})
    with uow_factory() as uow:
        man.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={"lines": [
            {"line_no": 1, "received_t": str(t), "method": "D10"}]})
    return no


@pytest.fixture
def city(uow_factory):
    """P1, P2 → C1 → C2 → D, with C1 → D, C1 utilising some and C2 sending part back to C1 (a loop)."""
    p1, p2, c1, c2, d = (unit(uow_factory) for _ in range(5))
    nos = {"p1": ship(uow_factory, p1, c1, 10), "p2": ship(uow_factory, p2, c1, 10),
           "c1c2": ship(uow_factory, c1, c2, 15), "c1d": ship(uow_factory, c1, d, 5),
           "c2d": ship(uow_factory, c2, d, 10), "c2c1": ship(uow_factory, c2, c1, 5)}
    ledger(uow_factory, p1, gen=10_000, out=[(c1, 10_000, nos["p1"])])
    ledger(uow_factory, p2, gen=10_000, out=[(c1, 10_000, nos["p2"])])
    ledger(uow_factory, c1, treat=[("R9", 5_000)], out=[(c2, 15_000, nos["c1c2"]), (d, 5_000, nos["c1d"])])
    ledger(uow_factory, c2, out=[(d, 10_000, nos["c2d"]), (c1, 5_000, nos["c2c1"])])
    ledger(uow_factory, d, treat=[("D10", 15_000)])
    flowdata.clear_cache()
    return {"p1": p1, "p2": p2, "c1": c1, "c2": c2, "d": d, "nos": nos}


def test_forward_through_two_collectors_and_a_loop(uow_factory, city):
    with uow_factory() as uow:
        t = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"])
    (f,) = t["forward"]
    # absorbing chain by hand: from C1, a = 0.6·(2/3 + a/3) + 0.2 → a = 0.75 disposed, 0.25 utilised (at C1)
    assert f["fates"]["D"] == pytest.approx(7.5, abs=0.002)
    assert f["fates"]["U"] == pytest.approx(2.5, abs=0.002)
    assert f["fates"]["X"] == 0 and not f["closed_loop"]
    ends = {(e["unit"], e["fate"]): e["mass_t"] for e in f["terminals"]}
    assert ends[(city["d"], "D")] == pytest.approx(7.5, abs=0.002) and ends[(city["c1"], "U")] == pytest.approx(2.5, abs=0.002)
    hops = {(h["from"], h["to"]) for h in f["hops"]}
    assert {(city["c1"], city["c2"]), (city["c2"], city["d"]), (city["c2"], city["c1"]), (city["c1"], city["d"])} == hops
    assert t["manifest_hops"][0]["from"] == city["p1"] and t["manifest_hops"][0]["mass_t"] == 10
    (b,) = t["backward"]
    assert [(p["unit"], p["mass_t"]) for p in b["producers"]] == [(city["p1"], 10.0)]


def test_backward_shares_through_the_loop(uow_factory, city):
    with uow_factory() as uow:
        t = tr.trace_unit(uow=uow, actor=SYSTEM, credit_code=city["d"], direction="backward", year=2024)
    (b,) = t["traces"]
    prod = {p["unit"]: p["mass_t"] for p in b["producers"]}
    # D took 15 t, all through C1 whose inputs are P1 10, P2 10 and C2's return 5 (which came from C1): 7.5 t each
    assert prod == {city["p1"]: pytest.approx(7.5, abs=0.002), city["p2"]: pytest.approx(7.5, abs=0.002)}
    nodes = {n["id"] for n in t["graph"]["nodes"]}
    assert all(lk["source"] in nodes and lk["target"] in nodes for lk in t["graph"]["links"])


def test_unit_forward_trace(uow_factory, city):
    with uow_factory() as uow:
        t = tr.trace_unit(uow=uow, actor=SYSTEM, credit_code=city["p2"], direction="forward", year=2024,
                          waste_code=HW)
    (f,) = t["traces"]
    assert f["start_t"] == 10 and f["fates"]["D"] == pytest.approx(7.5, abs=0.002)


def test_unresolved_when_the_receiver_reports_nothing(uow_factory):
    a, b = unit(uow_factory), unit(uow_factory)
    no = ship(uow_factory, a, b, 3)
    with uow_factory() as uow:
        (f,) = tr.trace_manifest(uow=uow, actor=SYSTEM, number=no)["forward"]
    assert f["fates"] == {"U": 0, "D": 0, "S": 0, "X": 3.0}


def test_a_closed_loop_terminates_and_is_reported(uow_factory):
    a, b = unit(uow_factory), unit(uow_factory)
    no = ship(uow_factory, a, b, 3)
    back = ship(uow_factory, b, a, 3)
    ledger(uow_factory, a, out=[(b, 3_000, no)])
    ledger(uow_factory, b, out=[(a, 3_000, back)])
    with uow_factory() as uow:
        t = tr.trace_manifest(uow=uow, actor=SYSTEM, number=no)
    assert t["forward"][0]["closed_loop"] is True and t["forward"][0]["fates"]["X"] == pytest.approx(3.0, abs=0.01)


def test_cache_follows_new_events(uow_factory, city):
    with uow_factory() as uow:
        before = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"])["forward"][0]["fates"]["D"]
    more = ship(uow_factory, city["c1"], city["d"], 20)  # more leaves C1 for D: the shares change
    ledger(uow_factory, city["c1"], treat=[("R9", 5_000)], version=2,
           out=[(city["c2"], 15_000, city["nos"]["c1c2"]), (city["d"], 25_000, more)])
    with uow_factory() as uow:
        after = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"])["forward"][0]["fates"]
    assert before == pytest.approx(7.5, abs=0.002)
    # by hand, C1's new ledger: 45 t handled, 15 to C2 (1/3), 25 to D (5/9), 5 utilised (1/9); C2 as before
    # (2/3 to D, 1/3 back to C1). a = 1/3·(2/3 + a/3) + 5/9 → a = 7/8 disposed; u = 1/3·u/3 + 1/9 → u = 1/8
    assert after["D"] == pytest.approx(8.75, abs=0.002)
    assert after["U"] == pytest.approx(1.25, abs=0.002) and after["X"] == 0


def test_trace_hidden_from_outsiders(uow_factory, city):
    with uow_factory() as uow, pytest.raises(NotFound):
        tr.trace_manifest(uow=uow, actor=Actor("regulator", district="630103"), number=city["nos"]["p1"])
    with uow_factory() as uow:
        assert tr.trace_manifest(uow=uow, actor=Actor("regulator", district="630104"), number=city["nos"]["p1"])


def test_hops_are_capped_heaviest_first_with_the_rest_counted(uow_factory, city):
    with uow_factory() as uow:
        full = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"], max_hops=100)
    with uow_factory() as uow:
        capped = tr.trace_manifest(uow=uow, actor=SYSTEM, number=city["nos"]["p1"], max_hops=2)
    f_all, f_cap = full["forward"][0], capped["forward"][0]
    assert len(f_all["hops"]) == 4 and f_all["hops_omitted"] == {"count": 0, "mass_t": 0.0}
    heaviest = sorted(f_all["hops"], key=lambda h: -h["mass_t"])
    assert {(h["from"], h["to"]) for h in f_cap["hops"]} == {(h["from"], h["to"]) for h in heaviest[:2]}
    assert f_cap["hops_omitted"]["count"] == 2
    assert f_cap["hops_omitted"]["mass_t"] == pytest.approx(sum(h["mass_t"] for h in heaviest[2:]), abs=0.002)
    assert f_cap["fates"] == f_all["fates"]  # the cap lists less, it does not change where the waste went
    links = {(lk["source"], lk["target"]) for lk in capped["graph"]["links"] if lk["direction"] == "forward"
             and "|" in lk["target"] and not lk["target"].startswith(("U|", "D|", "S|", "X|"))}
    assert links == {(f"{h['from']}|{HW}", f"{h['to']}|{HW}") for h in heaviest[:2]}


def test_a_rejected_manifest_delivers_nothing_and_the_return_goes_back_to_the_shipper(uow_factory):
    p, d = unit(uow_factory), unit(uow_factory)
    with uow_factory() as uow:
        no = man.create_manifest(uow=uow, actor=SYSTEM, data={"shipper": p, "receiver": d, "planned_date": date(2024, 6, 3),
                                                              "lines": [{"waste_code": HW, "quantity_t": "1.488"}]})["number"]
    with uow_factory() as uow:
        man.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={"vehicle": "青A1", "driver": "王"})
    with uow_factory() as uow:
        follow = man.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={"reason": "包装破损"})["follow_ons"][0]
    # the shipper's ledger names the 转出 as the manifest told it, and takes the load back into its stock
    ledger(uow_factory, p, gen=1_488, stock_close=1_488, out=[(d, 1_488, no)])
    ledger(uow_factory, d, treat=[("D10", 5_000)], gen=5_000)
    with uow_factory() as uow:
        t = tr.trace_manifest(uow=uow, actor=SYSTEM, number=no)
    assert [(h["from"], h["to"], h["mass_t"], h["manifest"]) for h in t["manifest_hops"]] == [(d, p, 1.488, follow)]
    (f,) = t["forward"]
    assert f["fates"] == {"U": 0, "D": 0, "S": 1.488, "X": 0}  # back in the shipper's stock, nothing disposed
    assert all(h["to"] != d for h in f["hops"])
    assert not [lk for lk in t["graph"]["links"] if lk["target"] == f"{d}|{HW}" and lk["direction"] == "forward"]
    with uow_factory() as uow:
        _data, g, fate = flowdata.stream_year(uow.session, "hazardous", 2024)
    # the model: nothing flows to the refusing receiver, the load sits on the shipper's own node
    assert g.edges[(p, HW), (d, HW)]["kg"] == 0 and g.edges[(p, HW), (d, HW)]["rejected"] == 1_488
    assert g.edges[(p, HW), (p, HW)]["kg"] == 1_488
    assert f["fates"]["S"] == pytest.approx(1.488 * fate.shares(fate.index[(p, HW)])["S"], abs=0.001)


def test_a_freshly_received_manifest_awaits_the_receivers_ledger(uow_factory):
    a, b = unit(uow_factory), unit(uow_factory)
    no = ship(uow_factory, a, b, 3)
    ledger(uow_factory, a, gen=3_000, out=[(b, 3_000, no)])
    with uow_factory() as uow:
        t = tr.trace_manifest(uow=uow, actor=SYSTEM, number=no)
    assert t["forward"][0]["awaiting_ledger"] == [b]
    kinds = [n["kind"] for n in t["graph"]["nodes"] if n["kind"] not in ("unit", "origin")]
    assert kinds == ["pending"]
