"""The named steps of ``nofei.flows.fate`` (issue 15), each on a hand-worked chain:

nodes 0 → 1 → U, 0 → 4 (a dead end that receives but has no outflow), 2 ⇄ 3 (a closed loop with no exit),
5 → 5 (a node whose only outflow returns to itself); kg on the edges as written below."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from nofei.flows.fate import (
    FateResult,
    U,
    X,
    _all_exact,
    _Chain,
    _ChainBuilder,
    _loops,
    _outflow,
    _reaches_fate,
    _stacked,
    _Transitions,
    attribute,
    concat,
)
from nofei.flows.graph import Attestation
from nofei.flows.model import NodeFlows, StreamYearData


def _chain(n: int, edges: list[tuple[int, int, int]], rw: dict[int, tuple[int, int, int, int]]) -> _Chain:
    """A chain of ``n`` nodes named (f"u{i}", "C"), with edges (src, dst, kg) and per node its kg to U, D, S, X."""
    r = np.zeros((n, 4), dtype=np.int64)
    for i, row in rw.items():
        r[i] = row
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    w = np.array([e[2] for e in edges], dtype=np.int64)
    keys = [(f"u{i}", "C") for i in range(n)]
    zero = np.zeros(n, dtype=np.int64)
    return _Chain(keys, zero, zero, _outflow(r, src, w, n), src, dst, w, r)


SAMPLE = _chain(6, [(0, 1, 60), (0, 4, 40), (2, 3, 5), (3, 2, 5), (5, 5, 7)], {1: (60, 0, 0, 0)})


def test_outflow_adds_fates_and_edges():
    assert SAMPLE.outflow.tolist() == [100, 60, 5, 5, 0, 7]
    assert _outflow(np.zeros((2, 4), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                    2).tolist() == [0, 0]


def test_only_nodes_that_reach_a_fate_are_not_trapped():
    # 0 reaches U through 1; 4 is a dead end, 2 and 3 circulate, 5 returns to itself: all four trapped
    assert _reaches_fate(SAMPLE).tolist() == [True, True, False, False, False, False]
    assert _reaches_fate(_chain(0, [], {})).tolist() == []


def test_loops_are_the_closed_cycles_among_trapped_nodes():
    trapped = np.nonzero(~_reaches_fate(SAMPLE))[0]
    # the dead end 4 is trapped but no loop; 2 ⇄ 3 and the self-loop of 5 are
    assert sorted(_loops(SAMPLE, trapped)) == [[("u2", "C"), ("u3", "C")], [("u5", "C")]]
    assert _loops(SAMPLE, np.zeros(0, dtype=np.int64)) == []


def test_transitions_cut_trapped_rows_and_absorb_them():
    t = _Transitions.of(SAMPLE)
    assert t.trapped.tolist() == [2, 3, 4, 5]
    assert sorted(zip(t.src.tolist(), t.dst.tolist(), strict=True)) == [(0, 1), (0, 4)]
    assert t.Q.toarray()[0].tolist() == [0.0, 0.6, 0.0, 0.0, 0.4, 0.0]
    r = t.R(SAMPLE)
    assert r[1].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert all(r[i].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0] for i in (2, 3, 4, 5))
    assert t.acyclic()  # the cycles were all among trapped nodes, whose edges are cut


def test_acyclic_refuses_cycles_and_self_loops():
    assert not _Transitions.of(_chain(2, [(0, 1, 1), (1, 0, 1)], {0: (1, 0, 0, 0)})).acyclic()
    assert not _Transitions.of(_chain(1, [(0, 0, 1)], {0: (1, 0, 0, 0)})).acyclic()
    assert _Transitions.of(_chain(2, [(0, 1, 1)], {1: (1, 0, 0, 0)})).acyclic()
    assert _Transitions.of(_chain(0, [], {})).acyclic()


def test_central_is_the_share_sent_on_to_u_or_d_excluding_the_self_edge():
    # 0 sends 3 to 1 (all U), 1 to itself and keeps 0 for D: central(0) = 3/4 · B_1(U+D) = 3/4
    ch = _chain(2, [(0, 1, 3), (0, 0, 1)], {1: (5, 0, 0, 0)})
    t = _Transitions.of(ch)
    b = np.zeros((2, 5))
    b[1, U] = 1.0
    b[0, U] = 1.0
    assert t.central(b).tolist() == [0.75, 0.0]
    assert _Transitions.of(_chain(0, [], {})).central(np.zeros((0, 5))).tolist() == []


def _node(unit: str, generated: int = 0, u: int = 0, code: str = "C", **transfers: int) -> NodeFlows:
    nd = NodeFlows(unit, code)
    nd.generated, nd.own_u = generated, u
    nd.transfers.update(transfers)
    return nd


def _builder(*atts: Attestation) -> _Chain:
    a, b = _node("A", 150, B=100, Z=50), _node("B", u=100)
    b_ = _ChainBuilder(StreamYearData("s", 2025, {("A", "C"): a, ("B", "C"): b}))
    for i, nd in enumerate((a, b)):
        b_.add_node(i, nd)
    for at in atts:
        b_.refuse(at)
    return b_.chain()


def test_chain_builder_sends_a_refused_load_back_to_its_shipper():
    ch = _builder()
    # A → B 100 kg; 50 kg to Z, which is outside the graph: lost to X
    assert list(zip(ch.src.tolist(), ch.dst.tolist(), ch.w.tolist(), strict=True)) == [(0, 1, 100)]
    assert ch.rw[0].tolist() == [0, 0, 0, 50] and ch.outflow.tolist() == [150, 100]
    # B refused 30 and Z 20 (of 50): both go back on A's own edge, Z's part off A's X
    ch = _builder(Attestation("A", "B", "C", rejected=30), Attestation("A", "Z", "C", rejected=20))
    assert list(zip(ch.src.tolist(), ch.dst.tolist(), ch.w.tolist(), strict=True)) == [(0, 1, 70), (0, 0, 50)]
    assert ch.rw[0, X] == 30 and ch.outflow.tolist() == [150, 100]


def test_chain_builder_ignores_refusals_it_cannot_place():
    plain = _builder()
    for at in (Attestation("A", "B", "C"),  # nothing refused
               Attestation("A", "A", "C", rejected=5),  # a return to the shipper itself
               Attestation("Q", "B", "C", rejected=5),  # a shipper outside the graph
               Attestation("B", "A", "C", rejected=5),  # no edge B → A
               Attestation("A", "Y", "C", rejected=5)):  # nothing declared to Y
        ch = _builder(at)
        assert ch.w.tolist() == plain.w.tolist() and ch.rw.tolist() == plain.rw.tolist()
    # more refused than declared: only what was declared goes back
    ch = _builder(Attestation("A", "Z", "C", rejected=80))
    assert ch.w.tolist() == [100, 50] and ch.rw[0, X] == 0


def test_stacked_and_all_exact():
    empty = np.zeros(0, dtype=np.int64)
    assert _stacked([], empty) is empty
    assert _stacked([np.array([1, 2]), np.array([3])], empty).tolist() == [1, 2, 3]
    assert not _all_exact([])
    d = StreamYearData("s", 2025, {("A", "C"): _node("A", 10, u=10)})
    exact, flt = attribute(d), attribute(d, exact_limit=-1)
    assert exact.is_exact and not flt.is_exact
    assert _all_exact([exact, exact]) and not _all_exact([exact, flt])


def test_concat_of_exact_parts_stacks_their_fractions():
    d1 = StreamYearData("s", 2025, {("A", "C"): _node("A", 3, B=1), ("B", "C"): _node("B", u=1)})
    d1.nodes[("A", "C")].own_u = 2
    d2 = StreamYearData("s", 2025, {("P", "K"): _node("P", 7, u=7, code="K")})
    parts = [attribute(d1), attribute(d2)]
    res: FateResult = concat(parts)
    assert res.keys == [("A", "C"), ("B", "C"), ("P", "K")] and res.is_exact
    assert res.exact_B is not None and [row[U] for row in res.exact_B] == [Fraction(1)] * 3
    assert res.Q.shape == (3, 3) and res.Q.toarray()[0, 1] == 1 / 3
    mixed = concat([parts[0], attribute(d2, exact_limit=-1)])
    assert mixed.method == "levels" and mixed.rounds_B is None and mixed.exact_B is None
