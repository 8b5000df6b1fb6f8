"""A code's model kept per weakly connected component (``nofei.flows.components``, issue 12): the component
bookkeeping on known graphs, and — as a property — a model refreshed part by part after random writes (units
starting and stopping to report a code, transfers and manifests between disjoint groups appearing and
disappearing, refusals) is the model built from scratch: the same components and parts, the same fates to the
last bit, the same graph up to ordering, and the same graph and fates as one graph of the whole stream when the
stream is exact."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nofei.flows import components as comp
from nofei.flows.fate import attribute
from nofei.flows.graph import Attestation, build_flow_graph
from nofei.flows.model import NodeFlows, StreamYearData
from nofei.storage import flowdata
from tests.flowfactory import normal_graph as _normal
from tests.flowfactory import same_model as _same

A, B = "900-200-08", "900-199-08"
S = "hazardous"


def _data(nodes: list[NodeFlows], ledgers: dict[str, set[int]] | None = None) -> StreamYearData:
    return StreamYearData(S, 2024, {(n.unit, n.code): n for n in sorted(nodes, key=lambda n: (n.unit, n.code))},
                          ledgers=ledgers or {})


def _n(unit: str, code: str = A, gen: int = 10, own_d: int = 0, **transfers: int) -> NodeFlows:
    return NodeFlows(unit, code, generated=gen, own_d=own_d, transfers=dict(transfers),
                     transfer_rows={r: 1 for r in transfers})


def test_components_are_the_weakly_connected_parts_of_a_code_without_the_fates():
    d = _data([_n("p1", F1=6), _n("p2", F1=4), _n("F1", gen=0, own_d=10), _n("p3", F2=5, ZZ=5),
               _n("F2", gen=0, own_d=5), _n("lone", own_d=10), _n("p4", B, F1=3), _n("F1", B, gen=0, own_d=3)])
    models = comp.code_models(d, [], 5000)
    a = models[A]
    # p1, p2 → F1; p3 → F2 (and to the unregistered ZZ: X, which joins nothing); lone alone
    assert sorted(a.members.values()) == [(("F1", A), ("p1", A), ("p2", A)), (("F2", A), ("p3", A)),
                                          (("lone", A),)]
    assert a.comp_of[("p2", A)] == ("F1", A) and a.comp_of[("lone", A)] == ("lone", A)
    assert list(models[B].members.values()) == [(("F1", B), ("p4", B))]  # codes never meet
    assert a.senders == {"F1": {"p1", "p2"}, "F2": {"p3"}, "ZZ": {"p3"}}
    assert a.edges == 4


def test_an_attestation_joins_its_ends_and_a_refusal_only_loops_back():
    d = _data([_n("p1", F1=6), _n("F1", gen=0, own_d=6), _n("p2", own_d=10)])
    joined = comp.code_models(d, [Attestation("p2", "F1", A, shipped=5, received=5, manifest_count=1)], 5000)[A]
    assert list(joined.members.values()) == [(("F1", A), ("p1", A), ("p2", A))]
    refused = comp.code_models(d, [Attestation("p1", "p1", A, shipped=2, returned=2, manifest_count=1)], 5000)[A]
    assert sorted(refused.members.values()) == [(("F1", A), ("p1", A)), (("p2", A),)]


def test_part_keys_put_large_components_alone_and_small_ones_in_stable_buckets():
    big = tuple((f"u{i:03d}", A) for i in range(comp.SMALL))
    assert comp.part_key(big) == (0, "u000", A)
    small = (("u1", A), ("u2", A))
    key = comp.part_key(small)
    assert key[0] == 1 and key == comp.part_key((("u1", A),)) and 0 <= int(key[1]) < comp.BUCKETS
    assert key == (1, f"{zlib.crc32(b'u1|900-200-08') % comp.BUCKETS:02d}", "")


def test_a_refresh_rebuilds_only_the_parts_it_reaches_and_keeps_the_others():
    groups = [[_n(f"g{g}p{i}", **{f"g{g}F": 3}) for i in range(3)] + [_n(f"g{g}F", gen=0, own_d=9)]
              for g in range(3)]
    d = _data([n for g in groups for n in g])
    old = flowdata._model({S: d}, {S: []})
    before = old[S].codes[A].parts
    # g1p0 now also sends to g2's facility: groups 1 and 2 merge, group 0 is kept as it was
    fresh = _data([_n("g1p0", g1F=3, g2F=2)])
    d2 = flowdata._merge(d, fresh, {"g1p0"})
    live = flowdata._model({S: d2}, {S: []}, {S: {A}}, old, units={"g1p0"}, old_attested={S: []})
    cm = live[S].codes[A]
    assert sorted(len(m) for m in cm.members.values()) == [4, 8]
    for k, p in before.items():  # a part that holds none of groups 1 and 2 is the very part it was
        if not any(u[:2] in ("g1", "g2") for u, _c in p.data.nodes):
            assert cm.parts[k] is p
        else:
            assert cm.parts.get(k) is not p
    _same(live, flowdata._model({S: d2}, {S: []}))


def test_a_unit_that_starts_reporting_a_code_pulls_its_senders_edges_from_x():
    d = _data([_n("p1", R=4), _n("p2", own_d=10)])
    old = flowdata._model({S: d}, {S: []})
    assert sorted(old[S].codes[A].members.values()) == [(("p1", A),), (("p2", A),)]
    d2 = flowdata._merge(d, _data([_n("R", gen=0, own_d=4)]), {"R"})  # p1's transfer to R no longer goes to X
    live = flowdata._model({S: d2}, {S: []}, {S: {A}}, old, units={"R"}, old_attested={S: []})
    assert sorted(live[S].codes[A].members.values()) == [(("R", A), ("p1", A)), (("p2", A),)]
    _same(live, flowdata._model({S: d2}, {S: []}))
    d3 = flowdata._merge(d2, _data([]), {"R"})  # and back to X when R stops
    again = flowdata._model({S: d3}, {S: []}, {S: {A}}, live, units={"R"}, old_attested={S: []})
    assert sorted(again[S].codes[A].members.values()) == [(("p1", A),), (("p2", A),)]
    _same(again, flowdata._model({S: d3}, {S: []}))


# --- the property ----------------------------------------------------------------------------
GROUPS, PER = 3, 4


def _units() -> list[str]:
    return [f"g{g}u{i}" for g in range(GROUPS) for i in range(PER)]


def _node(rnd: random.Random, unit: str, code: str) -> NodeFlows:
    g = unit[1]
    same = [u for u in _units() if u[1] == g and u != unit]
    transfers: dict[str, int] = {}
    for _ in range(rnd.randint(0, 2)):
        r = rnd.choice(same) if rnd.random() < 0.7 else (rnd.choice(_units()) if rnd.random() < 0.7 else "ZZunreg")
        if r != unit:
            transfers[r] = transfers.get(r, 0) + rnd.choice([0, 1, 2, 5, 7])
    o, c = rnd.randint(0, 5), rnd.randint(0, 5)
    return NodeFlows(unit, code, generated=rnd.randint(0, 9), received=rnd.randint(0, 9), own_u=rnd.randint(0, 3),
                     own_d=rnd.randint(0, 3), open=o, close=c, first_month="2024-01", last_month="2024-12",
                     transfers=transfers, transfer_rows={r: 1 for r in transfers})


def _unit_nodes(rnd: random.Random, unit: str) -> list[NodeFlows]:
    return [_node(rnd, unit, code) for code in (A, B) if rnd.random() < 0.6]


def _attestations(rnd: random.Random) -> list[Attestation]:
    out: dict[tuple[str, str, str], Attestation] = {}
    for _ in range(rnd.randint(0, 4)):
        s, r = rnd.choice(_units()), rnd.choice([*_units(), "ZZunreg"])
        code = rnd.choice([A, B])
        a = out.setdefault((s, r, code), Attestation(s, r, code))
        q = rnd.randint(1, 6)
        rej = rnd.choice([0, 0, q, q // 2])
        a.add("rejected" if rej else "received", q, q - rej, rej, f"2024{len(out):010d}", follow_on=False)
    return list(out.values())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9), steps=st.integers(1, 6), small=st.sampled_from([1, 3, 32]),
       exact=st.booleans())
def test_the_model_refreshed_part_by_part_is_the_model_built_from_scratch(seed, steps, small, exact):
    rnd = random.Random(seed)
    saved = comp.SMALL, comp.BUCKETS, flowdata.EXACT_LIMIT
    comp.SMALL, comp.BUCKETS = small, rnd.choice([1, 2, 64])
    flowdata.EXACT_LIMIT = 5000 if exact else rnd.choice([0, 6])  # beyond the limit: float fates (a write may cross it)
    try:
        nodes = [n for u in _units() for n in _unit_nodes(rnd, u)]
        data = _data(nodes, {u: {1} for u in _units()})
        att = _attestations(rnd)
        model = flowdata._model({S: data}, {S: att})
        for _ in range(steps):
            units = set(rnd.sample(_units(), rnd.randint(0, 3)))
            fresh = _data([n for u in sorted(units) for n in _unit_nodes(rnd, u)],
                          {u: {rnd.randint(2, 9)} for u in units})
            new_data = flowdata._merge(data, fresh, units) if units else data
            new_att = _attestations(rnd) if rnd.random() < 0.4 else att
            touched = flowdata._attestation_changes({S: att}, {S: new_att})
            codes = {k[1] for k in data.nodes if k[0] in units} | {k[1] for k in fresh.nodes}
            if units:
                touched.setdefault(S, set()).update(codes)
            model = flowdata._model({S: new_data}, {S: new_att}, touched, model, units=units,
                                    old_attested={S: att})
            data, att = new_data, new_att
            scratch = flowdata._model({S: data}, {S: att})
            _same(model, scratch)
            whole = build_flow_graph(data, att)  # the parts compose the one graph of the stream, and its fates
            assert _normal(model[S].graph) == _normal(whole)
            one = attribute(whole, exact_limit=flowdata._exact_limit(data))
            f = model[S].fate
            assert sorted(f.keys) == sorted(one.keys) and f.is_exact == one.is_exact
            if one.is_exact:
                for k in one.keys:
                    assert f.node_fates_kg(f.index[k]) == one.node_fates_kg(one.index[k])
                    assert np.array_equal(f.B[f.index[k]], one.B[one.index[k]])
    finally:
        comp.SMALL, comp.BUCKETS, flowdata.EXACT_LIMIT = saved


@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_or_lone_code_has_one_part_or_none(n):
    d = _data([_n("p1")] * n)
    m = flowdata._model({S: d}, {S: []})[S]
    assert len(m.parts()) == n and m.fate.keys == [("p1", A)] * n
