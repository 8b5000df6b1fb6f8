"""The three-way reconciliation's rules on the model's per-manifest sides (``nofei.flows.counterparts``), worked
by hand: each reason, the order they are tried in, the tolerance at its edge, the follow-on of a refusal, the
cut-off on China Standard Time and the range of numbers a year is held against."""

from datetime import UTC, date, datetime

import numpy as np
import pytest

from nofei.domain.calendar import CST
from nofei.domain.manifests import discrepant, is_discrepancy, is_return
from nofei.flows import counterparts as cp
from nofei.flows.graph import Attestation, fold

HW = "900-200-08"
CUTOFF = datetime(2024, 4, 1, tzinfo=CST)  # as of some day in May 2024: the start of April
RULE = {"year": 2024, "cutoff": CUTOFF, "ratio": (1, 20), "min_kg": 100}  # 5 % and 0.1 t (the local default)
N1 = "20240000000001"


def side(number=N1, *, status="received", qty=10_000, received=10_000, rejected=0, follow_on=False,
         shipper="S", receiver="R", planned=date(2024, 3, 4), shipped=datetime(2024, 3, 4, 1, tzinfo=UTC),
         got=datetime(2024, 3, 5, 1, tzinfo=UTC), code=HW, mid=1):
    return (number, code, mid, shipper, receiver, status, follow_on, planned, shipped, got, qty, received, rejected)


def led(kg, row=10, unit=7):
    return kg, row, unit


def run(manifests, outs=None, ins=None, **kw):
    """``reconcile`` over manifest rows and {(number, code): (kg, row, unit)} of 转出 and 转入."""
    m = cp.manifest_sides(manifests)
    outs, ins, absent = outs or {}, ins or {}, (0, -1, -1)
    rows = [(int(no) if no.isdigit() else -1, None if no.isdigit() else no, code, *outs.get((no, code), absent),
             *ins.get((no, code), absent)) for no, code in sorted(set(outs) | set(ins))]
    return cp.reconcile(m, cp.ledger_sides(rows, m.codes), **{**RULE, **kw})


def why(m, out=None, into=None, **kw):
    """The reason for one manifest (or, with ``m`` None, for a number nobody has) and its two ledger sides."""
    key = (m[0], m[1]) if m else (N1, HW)
    got = run([m] if m else [], {key: out} if out else {}, {key: into} if into else {}, **kw)
    assert len(got) <= 1
    return got[0].reason if got else None


def test_sides_that_agree_raise_nothing():
    assert why(side(), led(10_000), led(10_000)) is None
    # 5 % exactly is within the tolerance (more than 5 % differs), and so is 100 kg
    assert why(side(), led(9_500), led(10_500)) is None
    assert why(side(qty=1_000, received=1_000), led(1_100), led(900)) is None


def test_the_tolerance_is_the_discrepancy_rule():
    for kg, against in ((9_499, 10_000), (10_501, 10_000), (1_101, 1_000), (0, 99), (5_000, 0)):
        assert discrepant(kg, against, (1, 20), 100) == is_discrepancy(against, kg)
    assert why(side(), led(9_499)) == "out_vs_manifest"
    assert why(side(qty=1_000, received=1_000), led(1_000), led(899)) == "in_vs_manifest"


def test_reasons_are_tried_in_order():
    m = side(received=8_000)
    assert why(m, led(12_000), led(5_000)) == "out_vs_manifest"  # both sides differ: the shipper's first
    assert why(m, led(10_000), led(5_000)) == "in_vs_manifest"
    assert why(m, None, led(8_000)) == "out_missing"
    assert why(m, led(10_000), None) == "in_missing"
    assert why(None, led(1), None) == "unknown_number"
    assert why(None, None, led(1)) == "unknown_number"
    assert why(None) is None


def test_a_manifest_not_yet_moved_is_held_to_nothing():
    m = side(status="submitted", received=0, shipped=None, got=None)
    assert why(m, led(50_000), led(1)) is None  # a number it has, so no unknown number either
    transit = side(status="in_transit", received=0, got=None)
    assert why(transit, led(10_000), led(4_000)) is None  # not arrived: its 转入 is not compared yet
    assert why(transit, led(20_000)) == "out_vs_manifest"


def test_missing_sides_wait_for_the_end_of_the_following_month_on_cst():
    late = side(shipped=datetime(2024, 4, 2, tzinfo=UTC), got=datetime(2024, 4, 3, tzinfo=UTC))
    assert why(late) is None
    # 16:30 UTC on 31 March is 00:30 CST on 1 April: not before the cut-off; naive times are UTC (as stored)
    edge = side(shipped=datetime(2024, 3, 31, 16, 30), got=datetime(2024, 3, 31, 16, 30))
    assert why(edge) is None
    inside = side(shipped=datetime(2024, 3, 31, 15, 59), got=datetime(2024, 3, 31, 15, 59))
    assert why(inside, None, led(10_000)) == "out_missing"
    assert why(inside, led(10_000), None) == "in_missing"


def test_missing_sides_are_judged_in_the_manifests_own_year():
    other = side(planned=date(2023, 12, 28))
    assert why(other) is None
    assert why(other, led(5_000)) == "out_vs_manifest"  # a side that is there is compared whatever the year


def test_a_refusal_received_nothing_and_its_follow_on_has_no_shipper_side():
    refused = side(status="rejected", received=0, rejected=10_000)
    assert why(refused, led(10_000), None) is None  # arrived? no: a refusal is not a receipt
    back = side("20240000000002", status="received", follow_on=True, receiver="S")
    assert why(back, None, led(10_000)) is None
    onward = side("20240000000003", status="in_transit", follow_on=True, receiver="R2", received=0, got=None)
    assert why(onward) is None
    sides_ = cp.manifest_sides([back, onward])
    assert sides_.is_return.tolist() == [True, False] == [  # the one rule, as arrays
        is_return(parent_number="x" if r[6] else None, shipper=r[3], receiver=r[4]) for r in (back, onward)]


def test_reconcile_joins_by_number_and_code_within_the_year_range():
    a, b = side(N1, mid=1), side("20240000000002", code="900-201-08", mid=2)
    far = side("20220000000009", mid=3)  # issued two years before: outside 2023–2025, so its number is unknown here
    outs = {(a[0], HW): led(10_000), (b[0], HW): led(300), (far[0], HW): led(10_000), ("2024ABC0000001", HW): led(5)}
    ins = {(a[0], HW): led(7_000, row=11, unit=8)}
    got = [(d.number, d.code, d.reason) for d in run([a, b, far], outs, ins)]
    assert got == [(N1, HW, "in_vs_manifest"),
                   ("20240000000002", "900-201-08", "out_missing"),
                   ("20220000000009", HW, "unknown_number"),
                   ("20240000000002", HW, "unknown_number"),  # b has no line of HW: that (number, code) is unknown
                   ("2024ABC0000001", HW, "unknown_number")]  # not 14 digits: no manifest can have it
    d = run([a], outs, ins)[0]
    assert (d.out_kg, d.shipped, d.received, d.in_kg) == (10_000, 10_000, 10_000, 7_000)
    assert (d.out, d.into) == (cp.LedgerSide(10_000, 10, 7), cp.LedgerSide(7_000, 11, 8))
    assert (d.manifest.shipper, d.manifest.receiver, d.manifest.mid) == ("S", "R", 1)


def test_large_quantities_are_compared_exactly():
    # 2^60 kg: diff * q would overflow int64, so the rule runs on Python integers
    big = 1 << 60
    m = side(qty=big, received=big)
    assert why(m, led(big), led(big)) is None
    assert why(m, led(big + big // 19), led(big)) == "out_vs_manifest"  # 5.26 % more
    assert why(m, led(big + big // 21), led(big)) is None  # 4.76 % more


@pytest.mark.parametrize("status", ["in_transit", "received", "partially_received", "rejected"])
def test_an_attestation_is_the_sum_of_its_manifest_sides(status):
    moving = status in ("in_transit", "rejected")
    rows = [side(f"2024000000000{i}", status=status, qty=1_000 * i, received=0 if moving else 900 * i,
                 rejected=100 * i if status != "in_transit" else 0, mid=i) for i in range(1, 4)]
    rows.append(side("20240000000009", status="submitted", mid=9))  # attests nothing yet
    rows.append(side("20240000000008", status=status, receiver="S", follow_on=True, mid=8, qty=500,
                     received=0 if moving else 500))  # a return to the shipper: its own edge
    m = cp.manifest_sides(rows)
    by = {(a.shipper, a.receiver): a for a in fold(m)}
    a = by[("S", "R")]
    want = Attestation("S", "R", HW)
    for r in rows[:3]:
        want.add(status, r[10], r[11], r[12], r[0], follow_on=False)
    assert a.as_attrs() == want.as_attrs() and a.manifest_count == 3 and a.shipped == 6_000
    assert a.manifests == [r[0] for r in rows[:3]]  # named in number order
    back, back_want = by[("S", "S")], Attestation("S", "S", HW)
    back_want.add(status, 500, rows[4][11], 0, rows[4][0], follow_on=True)
    assert back.as_attrs() == back_want.as_attrs() and back.in_transit == 0 and back.received == 0
    assert back.returned == (0 if status == "rejected" else 500)  # what came back: all on the way, or as received
    assert set(by) == {("S", "R"), ("S", "S")}


def test_sides_in_number_order_and_back_as_rows():
    rows = [side("20240000000002", mid=2), side(N1, mid=1, code="900-201-08"), side(N1, mid=1)]
    m = cp.manifest_sides(rows)
    got = [(s.number, s.code) for s in map(m.side, range(len(m)))]
    # by number (within a number by code id, which is the process's naming order)
    assert [n for n, _c in got] == [N1, N1, "20240000000002"] and set(got[:2]) == {(N1, HW), (N1, "900-201-08")}
    assert np.array_equal(cp.concat([m.take(np.array([2])), m.take(np.array([0, 1]))]).key, m.key)


def test_replacing_shippers_and_numbers_keeps_the_rest():
    a, b = side(N1, shipper="S1", mid=1), side("20240000000002", shipper="S2", mid=2)
    m = cp.manifest_sides([a, b])
    new = cp.manifest_sides([side("20240000000003", shipper="S1", mid=3)], units=m.units.extend())
    got = cp.replace_shippers(m, {"S1"}, new)
    assert [(s.number, s.shipper) for s in map(got.side, range(len(got)))] == [
        ("20240000000002", "S2"), ("20240000000003", "S1")]
    led = cp.ledger_sides([(int(N1), None, HW, 5, 1, 7, 0, -1, -1), (20240000000002, None, HW, 6, 2, 7, 0, -1, -1),
                           (-1, "2024ABC0000001", HW, 1, 3, 7, 0, -1, -1)])
    fresh = cp.ledger_sides([(int(N1), None, HW, 9, 4, 8, 9, 5, 9)])
    got_l = cp.replace_numbers(led, {N1, "2024ABC0000001"}, fresh)
    assert [(int(k) >> 12, got_l.of(i, "out"), got_l.of(i, "in")) for i, k in enumerate(got_l.key)] == [
        (int(N1), cp.LedgerSide(9, 4, 8), cp.LedgerSide(9, 5, 9)), (20240000000002, cp.LedgerSide(6, 2, 7), None)]
    assert got_l.odd == {}


def test_numbers_cited_that_the_model_does_not_hold():
    m = cp.manifest_sides([side(N1), side("20240000000005", code="900-201-08", mid=5)])
    led = cp.ledger_sides([(int(n), None, HW, 1, 1, 1, 0, -1, -1) for n in
                           ("20230000000001", N1, "20240000000005", "20250000000009")])
    assert cp.cited_elsewhere(led, m) == ["20230000000001", "20250000000009"]
    assert cp.cited_elsewhere(led, m.take(np.array([], dtype=np.int64))) == [
        "20230000000001", N1, "20240000000005", "20250000000009"]
