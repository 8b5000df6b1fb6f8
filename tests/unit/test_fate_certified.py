"""The "exact" fates are computed in float64 with a certified error bound and fall back to Fractions only when
a rounding is not certain (``nofei.flows.fate.certified_round``). These tests hold them to the Fractions:
the rounded figures must be exactly those of the exact rational arithmetic, ties included."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nofei.catalogue import Catalogue
from nofei.flows.fate import attribute, certified_round, concat
from nofei.flows.model import NodeFlows, StreamYearData, UnitInfo, data_from_drafts
from tests.unit.test_flows_properties import DISTRICTS, city_year

CAT = Catalogue.default()


def _exact_totals(fr, idx):
    """Region totals by the Fractions alone (the reference)."""
    eb, ec = fr.exact_B, fr.exact_central
    tot = [Fraction(0)] * 5
    pu = pd = cen = Fraction(0)
    for i in idx:
        a = int(fr.generated[i] + fr.drawn[i])
        d = int(fr.drawn[i])
        for k in range(5):
            tot[k] += a * eb[i][k]
        pu += d * eb[i][0]
        pd += d * eb[i][1]
        cen += a * ec[i]
    r = [round(t) for t in tot]
    return (r[0], r[1], r[2], r[3] + r[4], r[4], round(pu), round(pd), round(cen))


def test_certified_round_refuses_ties_and_near_ties():
    assert certified_round(2.0000000001, 10) == 2
    assert certified_round(0.0, 5) == 0
    assert certified_round(2.5, 10) is None  # a tie: only the exact value can say (half-even)
    assert certified_round(2.5 + 1e-15, 10) is None  # within the bound of a tie
    assert certified_round(2.51, 10) == 3
    assert certified_round(3.49, 10) == 3
    assert certified_round(float("nan"), 1) is None
    assert certified_round(1e6 + 0.49, 10**6) == 1_000_000  # γ·|x| ≈ 2e-4: clear of the tie
    assert certified_round(1e6 + 0.4999, 10**6) is None  # not clear of it


def test_a_tie_is_rounded_half_even_from_the_fractions():
    # P: 5 kg generated, 1 kg to the utiliser R, 1 kg to the landfill F, 3 kg kept; R utilises, F disposes.
    # A = 5, shares U 1/5, D 1/5, S 3/5 of 5 kg: 1, 1, 3 exactly. Then a 1/2 split: P2 5 kg, half to R, half to F
    # → U = 2.5, D = 2.5 → half-even 2 and 2 (a float that says 2.5000000001 must not decide).
    nodes = {
        ("P2", "SW01"): NodeFlows("P2", "SW01", generated=5, transfers={"R": 1, "F": 1}),
        ("R", "SW01"): NodeFlows("R", "SW01", received=1, own_u=1),
        ("F", "SW01"): NodeFlows("F", "SW01", received=1, own_d=1),
    }
    d = StreamYearData("general_industrial", 2025, nodes, {u: UnitInfo(u, "", "630102") for u in ("P2", "R", "F")})
    fr = attribute(d)
    assert fr.method == "exact"
    i = fr.index[("P2", "SW01")]
    assert fr.node_fates_kg(i) == {"U": 2, "D": 2, "S": 0, "X": 0}
    t = fr.totals(fr.producers())
    assert (t.utilised, t.disposed, t.stored, t.unresolved) == (2, 2, 0, 0)
    assert fr.node_fates_kg(i, 3) == {"U": 2, "D": 2, "S": 0, "X": 0}  # 1.5 → 2 (half-even), twice


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(city_year(), st.integers(1, 1000))
def test_certified_figures_equal_the_fractions(cy, scale):
    drafts, info = cy
    for s in ("general_industrial", "hazardous", "medical", "kitchen_waste"):
        d = data_from_drafts(enumerate(drafts), stream=s, year=2025, catalogue=CAT, units=info)
        for fr in (attribute(d), concat([attribute(d), attribute(d)])):
            if fr.method != "exact":
                continue
            prod = fr.producers().tolist()
            regions = [prod] + [[i for i in prod if fr.keys[i][0][2:8] == dd] for dd in DISTRICTS]
            for idx in regions:
                t = fr.totals(np.array(idx, dtype=np.int64))
                got = (t.utilised, t.disposed, t.stored, t.unresolved, t.trapped, t.utilised_prior,
                       t.disposed_prior, t.central)
                assert got == _exact_totals(fr, idx)
            for i in range(len(fr.keys)):
                m = int(fr.generated[i] + fr.drawn[i]) * scale
                eb = fr.exact_B[i]
                want = {"U": round(m * eb[0]), "D": round(m * eb[1]), "S": round(m * eb[2]),
                        "X": round(m * (eb[3] + eb[4]))}
                assert fr.node_fates_kg(i, m) == want
                assert fr.central_kg(i, m) == round(m * fr.exact_central[i])


@st.composite
def data_and_attestations(draw):
    """A random one-code stream (transfers among units, to unregistered receivers and to the sender itself) and
    attestations on random (shipper, receiver) pairs: partial receipts, refusals, returns."""
    from nofei.flows.graph import Attestation

    n = draw(st.integers(1, 6))
    units = [f"U{i}" for i in range(n)]
    others = units + ["OUT1", "OUT2"]
    nodes = {}
    for u in units:
        tr = {r: draw(st.integers(0, 40)) for r in draw(st.lists(st.sampled_from(others), max_size=4, unique=True))}
        nodes[(u, "SW01")] = NodeFlows(u, "SW01", generated=draw(st.integers(0, 90)), own_u=draw(st.integers(0, 9)),
                                       own_d=draw(st.integers(0, 9)), open=draw(st.integers(0, 9)),
                                       close=draw(st.integers(0, 9)), transfers=tr)
    atts = []
    for _ in range(draw(st.integers(0, 6))):
        a = Attestation(draw(st.sampled_from(units + ["GHOST"])), draw(st.sampled_from(others)), "SW01")
        status = draw(st.sampled_from(["received", "rejected", "in_transit"]))
        q = draw(st.integers(0, 50))
        rej = draw(st.integers(0, q)) if status != "in_transit" else 0
        a.add(status, q, q - rej, rej, "20250101000001", follow_on=draw(st.booleans()))
        atts.append(a)
    return StreamYearData("general_industrial", 2025, nodes, {u: UnitInfo(u, "", "630102") for u in units}), atts


@settings(max_examples=300, deadline=None)
@given(data_and_attestations())
def test_the_chain_read_from_the_data_is_the_chain_of_the_graph(da):
    from nofei.flows.fate import _chain_from_graph, chain_from_data
    from nofei.flows.graph import build_flow_graph

    d, atts = da
    a = chain_from_data(d, atts)
    b = _chain_from_graph(build_flow_graph(d, atts))
    assert a.keys == b.keys
    for f in ("generated", "drawn", "outflow", "src", "dst", "w", "rw"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    fa, fb = attribute(d, manifests=atts), attribute(build_flow_graph(d, atts))
    assert fa.method == fb.method and np.array_equal(fa.B, fb.B)
