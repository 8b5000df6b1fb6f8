"""Known answers for the flow graph, fate attribution and indicators, worked out by hand.

The city is ``tests.flowfactory.small_city``; each expected figure is derived in the comments
from the ledgers there, never from the code under test.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from nofei.catalogue import Catalogue
from nofei.flows.fate import attribute
from nofei.flows.graph import build_flow_graph
from nofei.flows.indicators import INDICATOR_KEYS, NEEDED_STREAMS, compute, rate
from nofei.flows.model import NodeFlows, StreamYearData, UnitInfo, data_from_drafts
from tests.flowfactory import (
    CITY_UNITS,
    HC,
    HW,
    KP,
    MED,
    P1,
    P2,
    P3,
    P4,
    UNREG,
    C,
    F,
    H,
    K,
    M,
    R,
    cc,
    draft,
    small_city,
)

CAT = Catalogue.default()
UNITS = {u: UnitInfo(u, "", d, p, roles) for u, d, p, roles in CITY_UNITS}


def streams_of(drafts, catalogue=CAT, year=2025, exact_limit=5_000):
    out = {}
    for s in NEEDED_STREAMS:
        d = data_from_drafts(((i, x) for i, x in enumerate(drafts, start=1)), stream=s, year=year,
                             catalogue=catalogue, units=UNITS)
        out[s] = (d, attribute(d, exact_limit=exact_limit))
    return out


def figures(drafts, region="630100", value_added=None, catalogue=CAT, **kw):
    figs = compute(streams_of(drafts, catalogue, **kw), region=region, year=2025, catalogue=catalogue,
                   value_added=value_added)
    return {f.key: f for f in figs}


def test_the_graph_has_one_node_per_unit_and_code_plus_the_four_fates():
    d = data_from_drafts(enumerate(small_city()), stream="general_industrial", year=2025, catalogue=CAT, units=UNITS)
    g = build_flow_graph(d)
    assert set(g.nodes) == {"U", "D", "S", "X", (P1, "SW01"), (P2, "SW01"), (C, "SW01"), (R, "SW01"), (F, "SW01")}
    assert g.edges[(P2, "SW01"), (C, "SW01")]["kg"] == 200_000
    assert g.edges[(P2, "SW01"), "S"]["kg"] == 50_000  # close 50 − open 0
    assert g.edges[(C, "SW01"), "S"]["kg"] == 60_000
    assert g.nodes[(C, "SW01")]["outflow"] == 300_000


def test_unresolved_transfers_go_to_x_and_name_their_receivers():
    d = data_from_drafts(enumerate(small_city()), stream="hazardous", year=2025, catalogue=CAT, units=UNITS)
    g = build_flow_graph(d)
    # KP is registered and reported ledgers, but none of HW 900-199-08: its 5 t are unresolved too
    assert g.edges[(P4, HW), "X"]["receivers"] == {UNREG: 10_000, KP: 5_000}
    assert (KP, HW) not in g


def test_mixing_at_a_collector_multi_hop_by_hand():
    # C receives 100 (P1) + 200 (P2) and sends 180 to R (utilised), 60 to F (landfilled), keeps 60:
    #   B_C = (U 0.6, D 0.2, S 0.2).  P1 sends all to C → 60 / 20 / 20.
    #   P2 (O = 300): 200 to C, 50 own D1, 50 stored → U = 2/3·0.6 = 0.4, D = 1/6 + 2/3·0.2 = 0.3, S = 0.3
    #   → 120 / 90 / 90 of its 300.
    d = data_from_drafts(enumerate(small_city()), stream="general_industrial", year=2025, catalogue=CAT, units=UNITS)
    fr = attribute(d)
    assert fr.method == "exact"
    assert fr.exact_B[fr.index[(C, "SW01")]][:4] == (Fraction(3, 5), Fraction(1, 5), Fraction(1, 5), 0)
    assert fr.node_fates_kg(fr.index[(P1, "SW01")]) == {"U": 60_000, "D": 20_000, "S": 20_000, "X": 0}
    assert fr.node_fates_kg(fr.index[(P2, "SW01")]) == {"U": 120_000, "D": 90_000, "S": 90_000, "X": 0}
    t = fr.totals(fr.producers())
    assert (t.generated, t.utilised, t.disposed, t.stored, t.unresolved) == (400_000, 180_000, 110_000, 110_000, 0)
    # receivers are never producers: C, R, F attribute nothing themselves
    assert t.producers == 2


def test_float_solve_agrees_with_the_exact_pass():
    d = data_from_drafts(enumerate(small_city()), stream="general_industrial", year=2025, catalogue=CAT, units=UNITS)
    exact, flt = attribute(d), attribute(d, exact_limit=0)
    assert flt.method == "levels"
    assert np.allclose(exact.B, flt.B, atol=1e-12)
    assert exact.totals(exact.producers()) == flt.totals(flt.producers())


def test_stock_drawn_from_earlier_years_is_attributed_to_its_producer():
    # P3: open 40 (Jan), close 0 (Jun) → drawn 40; G 10; O = 30 to HC (utilised) + 20 own D10 = 50 = A.
    #   B = (U 0.6, D 0.4): U 30, D 20; U_prior = 40·0.6 = 24, D_prior = 16.
    d = data_from_drafts(enumerate(small_city()), stream="hazardous", year=2025, catalogue=CAT, units=UNITS)
    fr = attribute(d)
    i = fr.index[(P3, HW)]
    t = fr.totals([i])
    assert (t.generated, t.drawn, t.utilised, t.disposed, t.utilised_prior, t.disposed_prior) == (
        10_000, 40_000, 30_000, 20_000, 24_000, 16_000)


def test_the_nine_indicators_of_the_small_city_by_hand():
    f = figures(small_city(), value_added=Decimal("8000"))
    assert list(f) == list(INDICATOR_KEYS)
    # general industrial: U 180 / (G 400 + U_prior 0) = 45.00 %; S + D = 110 + 110 = 220 t
    assert f["general_industrial_utilisation_rate"].value == Decimal("45.00")
    assert (f["general_industrial_utilisation_rate"].numerator, f["general_industrial_utilisation_rate"].denominator) \
        == (Decimal("180.000"), Decimal("400.000"))
    assert f["general_industrial_storage_disposal"].value == Decimal("220.000")
    # intensity 400 t / 8000 万元 = 0.05 t/万元; issue 18: no target on it any more (the 0.87 target measures
    # general industrial + industrial hazardous: (400 + 30) / 8000 = 0.05375 → 0.0538, met)
    assert f["general_industrial_intensity"].value == Decimal("0.0500")
    assert f["general_industrial_intensity"].meets_target is None and f["general_industrial_intensity"].target is None
    assert f["industrial_solid_waste_intensity"].value == Decimal("0.0538")
    assert f["industrial_solid_waste_intensity"].meets_target is True
    # hazardous: G = 10 (P3) + 20 (P4); U = 30 (P3 via HC) + 5 (P4 own R9) = 35; D = 20; X = 15 (P4)
    #   U_prior = 24, D_prior = 16 → 35 / 54 = 64.8148… → 64.81; (35 + 20) / 70 = 78.571… → 78.57
    assert f["hazardous_utilisation_rate"].value == Decimal("64.81")
    assert f["hazardous_utilisation_disposal_rate"].value == Decimal("78.57")
    assert f["hazardous_utilisation_disposal_rate"].meets_target is False
    assert "15.000" in (f["hazardous_utilisation_rate"].note or "")  # X is shown
    # medical: 10 t, 2 t burnt on site (not central), 8 t to M → 80.00 %
    assert f["medical_central_disposal_rate"].value == Decimal("80.00")
    # film: 30 recovered of 50 used → 60.00 %;  kitchen: 70 digested of 100 → 70.00 %
    assert f["agricultural_film_recovery_rate"].value == Decimal("60.00")
    assert f["kitchen_waste_utilisation_rate"].value == Decimal("70.00")
    # manifests: P3 good, P4 one missing + one "123", H good → 2 / 4
    m = f["manifest_execution_rate"]
    assert (m.value, m.numerator, m.denominator) == (Decimal("50.00"), 2, 4)
    assert m.units == {P3, P4, H}
    # behind the general-industrial rate: producers P1, P2 and downstream C, R, F (one ledger each)
    gi = f["general_industrial_utilisation_rate"]
    assert gi.units == {P1, P2} and len(gi.ledgers) == 5
    assert gi.meets_target is False and gi.target == Decimal("93.4")


def test_region_filters_district_park_and_empty_denominators():
    # 630102: P1 (GI 60 of 100), P3 (HW), H (medical)
    f = figures(small_city(), region="630102")
    assert f["general_industrial_utilisation_rate"].value == Decimal("60.00")
    assert f["general_industrial_storage_disposal"].value == Decimal("40.000")
    assert f["hazardous_utilisation_rate"].value == Decimal("88.24")  # 30 / (10 + 24)
    assert f["hazardous_utilisation_disposal_rate"].value == Decimal("100.00")  # 50 / 50
    assert f["manifest_execution_rate"].value == Decimal("100.00")
    assert f["kitchen_waste_utilisation_rate"].value is None
    assert "denominator is 0" in f["kitchen_waste_utilisation_rate"].note
    assert f["general_industrial_intensity"].value is None and "not entered" in f["general_industrial_intensity"].note
    assert f["general_industrial_utilisation_rate"].target is None  # targets are set for the city
    # 630103: P2 (GI 120 / 300), P4 (HW: U 5 of 20, X 15), K (kitchen 70 %)
    f = figures(small_city(), region="630103")
    assert f["general_industrial_utilisation_rate"].value == Decimal("40.00")
    assert f["hazardous_utilisation_rate"].value == Decimal("25.00")
    assert f["manifest_execution_rate"].value == Decimal("0.00")
    assert f["kitchen_waste_utilisation_rate"].value == Decimal("70.00")
    # the park NANCHUAN holds only P2
    f = figures(small_city(), region="NANCHUAN")
    assert f["general_industrial_utilisation_rate"].value == Decimal("40.00")
    assert f["hazardous_utilisation_rate"].value is None
    # 630104 holds only receivers (C, HC): nothing is attributed to them
    f = figures(small_city(), region="630104")
    assert f["general_industrial_utilisation_rate"].value is None
    assert f["general_industrial_storage_disposal"].value == Decimal("0.000")


def test_c1_class_switch_moves_cement_kiln_from_disposal_to_utilisation():
    drafts = [draft(cc(50, "630105"), "2025-03", stocks=[("SW02", 0, 100, 0)], treat=[("SW02", "C1", 100)])]
    assert figures(drafts)["general_industrial_utilisation_rate"].value == Decimal("0.00")
    assert figures(drafts)["general_industrial_storage_disposal"].value == Decimal("100.000")
    util = Catalogue.default(c1_class="utilisation")
    assert figures(drafts, catalogue=util)["general_industrial_utilisation_rate"].value == Decimal("100.00")
    assert figures(drafts, catalogue=util)["general_industrial_storage_disposal"].value == Decimal("0.000")


def _node(unit, code="SW01", **kw) -> NodeFlows:
    n = NodeFlows(unit, code)
    for k, v in kw.items():
        setattr(n, k, v)
    return n


def test_a_cycle_with_exits_is_solved():
    # A: G 100, sends 100 to B, utilises 50 (O 150: P_AB 2/3, P_AU 1/3);
    # B: sends 50 back to A, disposes 50 (P_BA 1/2, P_BD 1/2).
    # B_AU = 1/3 + 2/3·B_BU, B_BU = 1/2·B_AU → B_AU = 1/2: A's 100 t end 50 U, 50 D.
    a, b = cc(60), cc(61)
    d = StreamYearData("general_industrial", 2025, nodes={
        (a, "SW01"): _node(a, generated=100_000, received=50_000, own_u=50_000, transfers={b: 100_000}),
        (b, "SW01"): _node(b, received=100_000, own_d=50_000, transfers={a: 50_000}),
    })
    fr = attribute(d)
    assert fr.method == "levels" and not fr.loops
    t = fr.totals(fr.producers())
    assert (t.utilised, t.disposed, t.unresolved) == (50_000, 50_000, 0)


def test_a_closed_loop_with_no_exit_is_reported_and_counted_as_unresolved():
    # A (G 10) and B only pass waste to each other: no exit. Never a hang or a crash.
    a, b, z = cc(62), cc(63), cc(64)
    d = StreamYearData("general_industrial", 2025, nodes={
        (a, "SW01"): _node(a, generated=10_000, received=10_000, transfers={b: 20_000}),
        (b, "SW01"): _node(b, received=20_000, transfers={a: 20_000}),
        (z, "SW01"): _node(z, generated=5_000, own_u=5_000),
    })
    for limit in (0, 20_000):
        fr = attribute(d, exact_limit=limit)
        assert fr.loops == [[(a, "SW01"), (b, "SW01")]]
        t = fr.totals(fr.producers())
        assert (t.utilised, t.unresolved, t.trapped) == (5_000, 10_000, 10_000)
        assert np.allclose(fr.B[:, :].sum(axis=1), 1.0)


def test_a_dead_end_that_receives_but_reports_no_outflow_is_trapped():
    a, b = cc(65), cc(66)
    d = StreamYearData("general_industrial", 2025, nodes={
        (a, "SW01"): _node(a, generated=10_000, transfers={b: 10_000}),
        (b, "SW01"): _node(b),
    })
    fr = attribute(d)
    # a can only reach b, and b has no exit: both are trapped, neither is a loop
    assert sorted(fr.trapped) == sorted([(a, "SW01"), (b, "SW01")]) and fr.loops == []
    assert fr.totals(fr.producers()).unresolved == 10_000


def test_rate_is_exact_and_null_on_empty_denominator():
    assert rate(1, 3) == Decimal("33.33")
    assert rate(2, 3) == Decimal("66.67")
    assert rate(1, 8) == Decimal("12.50")
    assert rate(0, 0) is None


@pytest.mark.parametrize("stream,units", [("medical", {H, M}), ("agricultural_film", None), ("kitchen_waste", {K, KP})])
def test_each_stream_only_sees_its_codes(stream, units):
    d = data_from_drafts(enumerate(small_city()), stream=stream, year=2025, catalogue=CAT, units=UNITS)
    if units:
        assert {n.unit for n in d.nodes.values()} == units
    assert all(CAT.stream_of(n.code) == stream for n in d.nodes.values())


def test_other_years_are_ignored():
    drafts = small_city() + [draft(P1, "2024-12", stocks=[("SW01", 0, 999, 999)])]
    assert figures(drafts)["general_industrial_utilisation_rate"].value == Decimal("45.00")


_ = (MED, HC, R, F)
