# ruff: noqa: N803, N806, N815  (Q, R, B are the matrix names of indicators.md §2)
"""Fate attribution on the yearly flow graph (indicators.md §2): an absorbing Markov chain.

With ``P = weight / O`` split into the node-to-node block ``Q`` and the node-to-fate block ``R``,
the absorption matrix is ``B = (I − Q)⁻¹ R``; ``B[n, k]`` is the share of what leaves node *n*
that ends in fate *k* (U, D, S, X). A producer node is answerable for ``A_n = G_n + drawn_n``,
of which ``A_n · B[n, k]`` ends in *k*.

How it is computed (and how exact it is):

* Nodes that cannot reach any fate (a closed loop with no exit, or a node with no outflow that
  still receives waste) are **trapped**: they are reported (``loops``, ``trapped``) and made
  absorbing into ``X`` — waste that circulates without a recorded end is unresolved. This keeps
  ``I − Q`` non-singular, so there is never a hang or a singular-matrix crash, and every row of
  ``B`` still sums to 1 (Σ fates = Σ A).
* On an **acyclic** graph of at most ``exact_limit`` edges (method "exact") every figure is the exact
  rational ``A_i · B_i,k`` (or its region sum) rounded once, half-even, to whole kilograms. It is computed in
  float64 by one reverse-topological pass that also counts, per node, the roundings behind each value; all
  terms are non-negative, so the relative error is at most ``γ_n = n·u / (1 − n·u)`` (Higham, *Accuracy and
  Stability*, §3.1) and a rounded figure whose error interval holds no half-integer is exactly what the
  Fractions give. Only a figure that is not so certified (a tie such as 2.5 kg, or a value within the bound
  of one) is computed with ``fractions.Fraction`` (the exact pass runs lazily, once, when first needed).
* Otherwise ``B`` is computed in float64 with one sparse LU factorisation of ``I − Q`` (scipy
  SuperLU) solved for the five fate columns (``method`` "levels"). Region totals are
  float sums of ``A_i · B_i,k`` rounded half-even to whole kilograms (error far below 1 kg for
  city-scale masses).

Rates are then computed exactly (``Decimal``) from those integer kilograms.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import splu

from nofei.flows.graph import Attestation
from nofei.flows.model import NodeFlows, NodeKey, StreamYearData

U, D, S, X, L = 0, 1, 2, 3, 4  # L: trapped (folded into X in results)
EXACT_LIMIT = 5_000  # edges: Fractions cost ~30 µs per edge; beyond this the float solve is used
_U64 = 2.0 ** -53  # unit roundoff of float64


def _gamma(n: int) -> float:
    """``γ_n``: the relative error bound of ``n`` roundings on non-negative terms (∞ when meaningless)."""
    nu = n * _U64
    return nu / (1.0 - nu) if nu < 0.5 else math.inf


def certified_round(value: float, rounds: int) -> int | None:
    """``round(exact)`` half-even when ``value`` is within ``γ_rounds`` (relative) of the exact non-negative
    ``exact`` and that error interval holds no half-integer (so every value in it rounds alike); else ``None``.
    The interval is widened by a few ulps to cover the check's own arithmetic."""
    if not math.isfinite(value):
        return None
    a = abs(value)
    delta = 2.0 * _gamma(rounds) * a + 4.0 * math.ulp(a) + 1e-300
    if not math.isfinite(delta) or delta >= 0.25:
        return None
    lo, hi = value - delta - 0.5, value + delta - 0.5
    m = math.floor(lo)
    if m != math.floor(hi) or lo == m:
        return None
    return int(m) + 1


@dataclass(frozen=True, slots=True)
class RegionFate:
    """Fate totals over a set of producer nodes, in integer kg (indicators.md §2 "Region totals")."""

    generated: int  # G
    drawn: int
    attributable: int  # Σ A_i
    utilised: int  # U
    disposed: int  # D
    stored: int  # S
    unresolved: int  # X (includes trapped mass)
    utilised_prior: int  # U_prior
    disposed_prior: int  # D_prior
    central: int  # Σ A_i Σ_j≠i P_ij (B_jU + B_jD)  (medical)
    producers: int  # producer nodes summed
    trapped: int  # part of X that is stuck in closed loops / dead ends


@dataclass
class FateResult:
    """``B`` per node (U, D, S, X), ``A`` per producer node, and what could not be resolved."""

    keys: list[NodeKey]
    index: dict[NodeKey, int]
    generated: np.ndarray
    drawn: np.ndarray
    outflow: np.ndarray
    B: np.ndarray  # (n, 5) float64: U, D, S, X, trapped
    central: np.ndarray  # (n,) float64
    Q: sparse.csr_matrix  # transition probabilities node -> node (trapped rows zeroed)
    trapped: list[NodeKey] = field(default_factory=list)
    loops: list[list[NodeKey]] = field(default_factory=list)
    method: str = "sparse"
    # method "exact": the roundings behind each float B[i, k] and central[i] (see the module docstring), and
    # how to get the Fractions when a figure is not certified by them
    rounds_B: np.ndarray | None = None
    rounds_central: np.ndarray | None = None
    exact_fn: Callable[[], tuple[list[tuple[Fraction, ...]], list[Fraction]]] | None = None
    _exact: tuple[list[tuple[Fraction, ...]], list[Fraction]] | None = None
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # per-region views (nofei.flows.indicators)

    @property
    def exact_B(self) -> list[tuple[Fraction, ...]] | None:  # noqa: N802
        """``B`` as Fractions (method "exact" only; computed on first use)."""
        e = self._exact_pair()
        return None if e is None else e[0]

    @property
    def exact_central(self) -> list[Fraction] | None:
        e = self._exact_pair()
        return None if e is None else e[1]

    def _exact_pair(self) -> tuple[list[tuple[Fraction, ...]], list[Fraction]] | None:
        if self._exact is None and self.exact_fn is not None:
            self._exact = self.exact_fn()  # idempotent: two threads may both compute it, both get the same
        return self._exact

    @property
    def is_exact(self) -> bool:
        return self.method == "exact"

    @property
    def attributable(self) -> np.ndarray:
        return self.generated + self.drawn

    def producers(self, units: set[str] | None = None) -> np.ndarray:
        """Indices of producer nodes (``G > 0``), optionally only of the given units."""
        idx = np.nonzero(self.generated > 0)[0]
        if units is None:
            return idx
        return np.array([i for i in idx if self.keys[i][0] in units], dtype=np.int64)

    def shares(self, i: int) -> dict[str, float]:
        """``B`` row of node ``i`` as floats (X includes trapped)."""
        b = self.B[i]
        return {"U": float(b[U]), "D": float(b[D]), "S": float(b[S]), "X": float(b[X] + b[L])}

    def node_fates_kg(self, i: int, mass: int | None = None) -> dict[str, int]:
        """``mass`` (default ``A_i``) of node ``i`` split over U/D/S/X, each rounded half-even to kg."""
        m = int(self.generated[i] + self.drawn[i]) if mass is None else mass
        if self.is_exact and self.rounds_B is not None:
            b = self.B[i]
            r = int(self.rounds_B[i]) + 1
            got = [certified_round(m * float(b[k]), r) for k in (U, D, S, X)]
            xl = certified_round(m * float(b[X] + b[L]), r + 1) if b[L] > 0 else got[3]
            if all(v is not None for v in got) and xl is not None:
                return {"U": int(got[0] or 0), "D": int(got[1] or 0), "S": int(got[2] or 0), "X": int(xl)}
        if self.is_exact and self.exact_B is not None:
            eb = self.exact_B[i]
            return {"U": round(m * eb[U]), "D": round(m * eb[D]), "S": round(m * eb[S]),
                    "X": round(m * (eb[X] + eb[L]))}
        b = self.B[i]
        return {"U": round(m * float(b[U])), "D": round(m * float(b[D])), "S": round(m * float(b[S])),
                "X": round(m * float(b[X] + b[L]))}

    def central_kg(self, i: int, mass: int) -> int:
        """``mass · Σ_j≠i P_ij (B_jU + B_jD)`` of node ``i`` rounded half-even to kg (exact for method "exact")."""
        if self.is_exact and self.rounds_central is not None:
            got = certified_round(mass * float(self.central[i]), int(self.rounds_central[i]) + 1)
            if got is not None:
                return got
            ec = self.exact_central
            if ec is not None:
                return round(mass * ec[i])
        return round(mass * float(self.central[i]))

    def _certified_totals(self, idx: np.ndarray, a: np.ndarray, dr: np.ndarray) -> tuple[list[int], int, int, int] | None:
        """The rounded region totals from the float B when each is certified exact (see ``certified_round``)."""
        if self.rounds_B is None or self.rounds_central is None:
            return None
        n = len(idx)
        if n == 0:
            return [0] * 5, 0, 0, 0
        af = a.astype(np.float64)
        dfl = dr.astype(np.float64)
        bsub = self.B[idx]
        rb = int(self.rounds_B[idx].max()) + 1 + n  # one product and n − 1 additions more (any order)
        rc = int(self.rounds_central[idx].max()) + 1 + n
        fl = (af @ bsub).tolist()
        vals = [certified_round(v, rb) for v in fl]
        pu = certified_round(float(dfl @ bsub[:, U]), rb)
        pd = certified_round(float(dfl @ bsub[:, D]), rb)
        cen = certified_round(float(af @ self.central[idx]), rc)
        if any(v is None for v in vals) or pu is None or pd is None or cen is None:
            return None
        return [int(v or 0) for v in vals], pu, pd, cen

    def totals(self, idx: np.ndarray | list[int]) -> RegionFate:
        """Region totals over producer node indices ``idx`` (each total rounded once to kg)."""
        idx = np.asarray(idx, dtype=np.int64)
        g = self.generated[idx]
        dr = self.drawn[idx]
        a = g + dr
        cert = self._certified_totals(idx, a, dr) if self.is_exact else None
        if cert is not None:
            vals, prior_u, prior_d, central = cert
        elif self.is_exact and self.exact_B is not None and self.exact_central is not None:
            eb, ec = self.exact_B, self.exact_central
            tot = [Fraction(0)] * 5
            pu = pd = cen = Fraction(0)
            for i, ai, di in zip(idx.tolist(), a.tolist(), dr.tolist(), strict=True):
                row = eb[i]
                for k in range(5):
                    tot[k] += ai * row[k]
                pu += di * row[U]
                pd += di * row[D]
                cen += ai * ec[i]
            vals = [round(t) for t in tot]
            prior_u, prior_d, central = round(pu), round(pd), round(cen)
        else:
            af = a.astype(np.float64)
            bsub = self.B[idx]
            fl = af @ bsub if len(idx) else np.zeros(5)
            vals = [round(float(v)) for v in fl]
            dfl = dr.astype(np.float64)
            prior_u = round(float(dfl @ bsub[:, U])) if len(idx) else 0
            prior_d = round(float(dfl @ bsub[:, D])) if len(idx) else 0
            central = round(float(af @ self.central[idx])) if len(idx) else 0
        return RegionFate(
            generated=int(g.sum()), drawn=int(dr.sum()), attributable=int(a.sum()),
            utilised=vals[U], disposed=vals[D], stored=vals[S], unresolved=vals[X] + vals[L],
            utilised_prior=prior_u, disposed_prior=prior_d, central=central, producers=len(idx),
            trapped=vals[L],
        )

    def reachable(self, idx: np.ndarray | list[int]) -> np.ndarray:
        """Boolean mask of nodes reached (downstream, including themselves) from nodes ``idx``."""
        n = len(self.keys)
        mask = np.zeros(n, dtype=bool)
        idx = np.asarray(idx, dtype=np.int64)
        if n == 0 or len(idx) == 0:
            return mask
        pat = self.Q.tocoo()
        rows = np.concatenate([pat.row, np.full(len(idx), n)])
        cols = np.concatenate([pat.col, idx])
        g = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1))
        order = csgraph.breadth_first_order(g, n, directed=True, return_predecessors=False)
        mask[order[order < n]] = True
        return mask

    def throughput(self, a: np.ndarray, *, tol: float = 1e-9, max_iter: int = 100_000) -> np.ndarray:
        """``x = a + Qᵀ x``: the mass that passes through each node when ``a`` enters (kg, float).

        Neumann iteration: exact after (longest path + 1) steps on a DAG, geometric on cycles
        (trapped rows of Q are zero, so the series converges)."""
        a = np.asarray(a, dtype=np.float64)
        qt = self.Q.T.tocsr()
        x = a.copy()
        eps = tol * max(1.0, float(np.abs(a).sum()))
        for _ in range(max_iter):
            nx_ = a + qt @ x
            if float(np.abs(nx_ - x).max(initial=0.0)) <= eps:
                return nx_
            x = nx_
        return x


# --- building the chain ------------------------------------------------------------------
@dataclass
class _Chain:
    keys: list[NodeKey]
    generated: np.ndarray
    drawn: np.ndarray
    outflow: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray  # int64 kg, node -> node
    rw: np.ndarray  # (n, 4) int64 kg to U, D, S, X


def _outflow(rw: np.ndarray, src: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """``O_n``: what leaves each node, to the fates and along its edges (kg)."""
    out = rw.sum(axis=1) + (np.bincount(src, weights=w, minlength=n).astype(np.int64) if len(w) else 0)
    return np.asarray(out, dtype=np.int64)


def _chain_from_graph(g: nx.DiGraph) -> _Chain:
    keys = [k for k, d in g.nodes(data=True) if not d.get("fate")]
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys)
    gen = np.array([g.nodes[k].get("generated", 0) for k in keys], dtype=np.int64)
    drawn = np.array([g.nodes[k].get("drawn", 0) for k in keys], dtype=np.int64)
    rw = np.zeros((n, 4), dtype=np.int64)
    fate_col = {"U": U, "D": D, "S": S, "X": X}
    src: list[int] = []
    dst: list[int] = []
    w: list[int] = []
    for a, b, d in g.edges(data=True):
        kg = int(d["kg"])
        if a not in index or kg <= 0:  # an edge only manifests attest carries no declared flow
            continue
        if isinstance(b, str):
            rw[index[a], fate_col[b]] += kg
        else:
            src.append(index[a])
            dst.append(index[b])
            w.append(kg)
    wa = np.asarray(w, dtype=np.int64)
    sa = np.asarray(src, dtype=np.int64)
    return _Chain(keys, gen, drawn, _outflow(rw, sa, wa, n), sa, np.asarray(dst, dtype=np.int64), wa, rw)


class _ChainBuilder:
    """``chain_from_data``'s state while it reads a code's data: per node its kg to U, D, S and X, its edges
    ``[target, kg]`` in the graph's edge order, and what it sent to receivers outside the graph (lost to X)."""

    def __init__(self, data: StreamYearData) -> None:
        self.nodes = data.nodes
        self.keys = list(self.nodes)
        self.index = {k: i for i, k in enumerate(self.keys)}
        n = len(self.keys)
        self.rw = np.zeros((n, 4), dtype=np.int64)
        self.succ: list[list[list[int]]] = [[] for _ in range(n)]
        self.lost: list[dict[str, int] | None] = [None] * n

    def add_node(self, i: int, nd: NodeFlows) -> None:
        """Node ``i``'s own U, D and S, and its transfers: an edge to a node of the graph, else lost to X
        (graph.build_flow_graph)."""
        self.rw[i, U], self.rw[i, D], self.rw[i, S] = nd.own_u, nd.own_d, nd.stored
        xs = 0
        for recv, kg in nd.transfers.items():
            if kg <= 0:
                continue
            j = self.index.get((recv, nd.code))
            if j is None:
                lo = self.lost[i]
                if lo is None:
                    lo = self.lost[i] = {}
                lo[recv] = lo.get(recv, 0) + kg
                xs += kg
            else:
                self.succ[i].append([j, kg])
        self.rw[i, X] = xs

    def refuse(self, a: Attestation) -> None:
        """graph.attest → _refuse: what a refusing receiver was declared goes back to the shipper."""
        if a.rejected <= 0 or a.receiver == a.shipper:
            return
        i = self.index.get((a.shipper, a.code))
        if i is None:
            return
        j = self.index.get((a.receiver, a.code))
        r = self._take_lost(i, a.receiver, a.rejected) if j is None else self._take_edge(i, j, a.rejected)
        if r > 0:
            self._send_back(i, r)

    def _take_lost(self, i: int, receiver: str, rejected: int) -> int:
        """Up to ``rejected`` kg taken off what node ``i`` lost to an unknown ``receiver`` (and off its X)."""
        lo = self.lost[i]
        declared = lo.get(receiver, 0) if lo is not None else 0
        r = min(declared, rejected)
        if r <= 0 or lo is None:
            return 0
        lo[receiver] = declared - r
        self.rw[i, X] -= r
        return r

    def _take_edge(self, i: int, j: int, rejected: int) -> int:
        """Up to ``rejected`` kg taken off node ``i``'s edge to node ``j``."""
        e = next((x for x in self.succ[i] if x[0] == j), None)
        r = min(e[1], rejected) if e is not None else 0
        if r <= 0 or e is None:
            return 0
        e[1] -= r
        return r

    def _send_back(self, i: int, r: int) -> None:
        """``r`` kg onto node ``i``'s edge to itself (made at the end of its edges when it has none)."""
        back = next((x for x in self.succ[i] if x[0] == i), None)
        if back is None:
            self.succ[i].append([i, r])
        else:
            back[1] += r

    def chain(self) -> _Chain:
        """The chain: the edges that still carry flow, in order."""
        src: list[int] = []
        dst: list[int] = []
        w: list[int] = []
        for i, out in enumerate(self.succ):
            for j, kg in out:
                if kg > 0:
                    src.append(i)
                    dst.append(j)
                    w.append(kg)
        n = len(self.keys)
        gen = np.fromiter((nd.generated for nd in self.nodes.values()), dtype=np.int64, count=n)
        drawn = np.fromiter((nd.drawn for nd in self.nodes.values()), dtype=np.int64, count=n)
        wa = np.asarray(w, dtype=np.int64)
        sa = np.asarray(src, dtype=np.int64)
        return _Chain(self.keys, gen, drawn, _outflow(self.rw, sa, wa, n), sa, np.asarray(dst, dtype=np.int64), wa,
                      self.rw)


def chain_from_data(data: StreamYearData, manifests: Iterable[Attestation] = ()) -> _Chain:
    """The chain ``_chain_from_graph(build_flow_graph(data, manifests))`` gives, read straight from the data
    the graph is built from, edge for edge in the same order: the edges that carry flow (``kg`` > 0) between
    nodes, and per node its kg to U, D, S and X, a refused load sent back on the shipper's own edge
    (``nofei.flows.graph._refuse``). Building the networkx graph of a code is left to whoever reads it
    (Sankey, traces, lineage); the fates need only these arrays (tests hold the two equal)."""
    b = _ChainBuilder(data)
    for i, nd in enumerate(data.nodes.values()):
        b.add_node(i, nd)
    for a in manifests:
        b.refuse(a)
    return b.chain()


@dataclass
class _Transitions:
    """The chain as probabilities: which nodes reach a fate (``ok``), the edges kept (those out of trapped nodes
    are cut), each node's outflow as divisor (1 where it has none), ``Q`` and the trapped nodes' indices."""

    ok: np.ndarray
    trapped: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    denom: np.ndarray
    Q: sparse.csr_matrix

    @classmethod
    def of(cls, ch: _Chain) -> _Transitions:
        n = len(ch.keys)
        ok = _reaches_fate(ch)
        keep = ok[ch.src]  # edges out of trapped nodes are cut
        src, dst, w = ch.src[keep], ch.dst[keep], ch.w[keep]
        out_f = ch.outflow.astype(np.float64)
        denom = np.where(out_f > 0, out_f, 1.0)
        Q = sparse.csr_matrix((w / denom[src], (src, dst)), shape=(n, n))
        return cls(ok, np.nonzero(~ok)[0], src, dst, w, denom, Q)

    def R(self, ch: _Chain) -> np.ndarray:  # noqa: N802
        """Node-to-fate probabilities ``R`` (U, D, S, X, trapped); a trapped node is absorbed by "trapped"."""
        R = np.zeros((len(ch.keys), 5), dtype=np.float64)
        R[:, :4] = ch.rw / self.denom[:, None]
        R[self.trapped, :] = 0.0
        R[self.trapped, L] = 1.0
        return R

    def acyclic(self) -> bool:
        """No self-loop and every strongly connected component of ``Q`` a single node."""
        n = self.Q.shape[0]
        ncomp = csgraph.connected_components(self.Q, directed=True, connection="strong")[0] if n else 0
        return bool(ncomp == n and not np.any(self.src == self.dst))

    def central(self, B: np.ndarray) -> np.ndarray:
        """``Σ_j≠i P_ij (B_jU + B_jD)`` per node (float)."""
        n = self.Q.shape[0]
        if n == 0:
            return np.zeros(0)
        off = self.src != self.dst
        src, dst = self.src[off], self.dst[off]
        Qoff = sparse.csr_matrix((self.w[off] / self.denom[src], (src, dst)), shape=(n, n))
        return np.asarray(Qoff @ (B[:, U] + B[:, D]))


def _reaches_fate(ch: _Chain) -> np.ndarray:
    """Which nodes reach a fate edge (the others are trapped): a reverse BFS from a virtual sink fed by every exit."""
    n = len(ch.keys)
    exits = np.nonzero(ch.rw.sum(axis=1) > 0)[0]
    rows = np.concatenate([ch.dst, np.full(len(exits), n)])
    cols = np.concatenate([ch.src, exits])
    rev = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1))
    ok = np.zeros(n, dtype=bool)
    if n:
        order = csgraph.breadth_first_order(rev, n, directed=True, return_predecessors=False)
        ok[order[order < n]] = True
    return ok


def _loops(ch: _Chain, trapped_idx: np.ndarray) -> list[list[NodeKey]]:
    """The closed loops among the trapped nodes (strongly connected components of more than one node, or a node
    with an edge to itself), each as its sorted keys."""
    if not len(trapped_idx):
        return []
    n = len(ch.keys)
    sub = sparse.csr_matrix((np.ones(len(ch.src)), (ch.src, ch.dst)), shape=(n, n))[trapped_idx][:, trapped_idx]
    nc, lab = csgraph.connected_components(sub, directed=True, connection="strong")
    diag = sub.diagonal()
    loops: list[list[NodeKey]] = []
    for c in range(nc):
        members = np.nonzero(lab == c)[0]
        if len(members) > 1 or diag[members[0]] > 0:
            loops.append(sorted(ch.keys[trapped_idx[m]] for m in members))
    return loops


def attribute(source: StreamYearData | nx.DiGraph, *, exact_limit: int = EXACT_LIMIT,
              manifests: Iterable[Attestation] = ()) -> FateResult:
    """Fate attribution for one (stream, year), derived from the flow graph (``nofei.flows.graph``): from the
    graph itself, or — the same chain, edge for edge (``chain_from_data``) — from the data and attestations the
    graph is built from, without building it (see module docstring)."""
    ch = _chain_from_graph(source) if isinstance(source, nx.DiGraph) else chain_from_data(source, manifests)
    keys = ch.keys
    n = len(keys)
    t = _Transitions.of(ch)
    res = FateResult(keys=keys, index={k: i for i, k in enumerate(keys)}, generated=ch.generated, drawn=ch.drawn,
                     outflow=ch.outflow, B=np.zeros((n, 5)), central=np.zeros(n), Q=t.Q,
                     trapped=[keys[i] for i in t.trapped], loops=_loops(ch, t.trapped))
    if t.acyclic() and len(t.src) <= exact_limit:
        _float_pass(res, ch, t.ok, t.src, t.dst, t.w)
        res.exact_fn = lambda: _exact_pass(ch, t.ok, t.src, t.dst, t.w)
        res.method = "exact"
    else:
        res.B = _sparse_solve(t.Q, t.R(ch))
        res.central = t.central(res.B)
        res.method = "levels"
    return res


def _topo(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[list[list[tuple[int, int]]], list[int]]:
    """Successors (node, kg) per node and a topological order (acyclic graph)."""
    succ: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    indeg = [0] * n
    for a, b, kg in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        succ[a].append((b, kg))
        indeg[b] += 1
    order: list[int] = []
    dq = deque(i for i in range(n) if indeg[i] == 0)
    while dq:
        i = dq.popleft()
        order.append(i)
        for j, _ in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                dq.append(j)
    return succ, order


def _float_pass(res: FateResult, ch: _Chain, ok: np.ndarray, src: np.ndarray, dst: np.ndarray,
                w: np.ndarray) -> None:
    """The exact pass's arithmetic in float64 (acyclic graph only), counting the roundings behind each value:
    ``B_i = R_i / O_i + Σ_j (T_ij / O_i) · B_j`` has one rounding per quotient and product and one per addition,
    over non-negative terms, so its relative error is at most ``γ`` of that count (module docstring)."""
    n = len(ch.keys)
    succ, order = _topo(n, src, dst, w)
    eb: list[list[float]] = [[0.0] * 5 for _ in range(n)]
    ec = [0.0] * n
    rb = [0] * n
    rc = [0] * n
    rw = ch.rw.tolist()
    outs = ch.outflow.tolist()
    for i in reversed(order):
        if not ok[i]:
            eb[i] = [0.0, 0.0, 0.0, 0.0, 1.0]
            continue
        o = outs[i]
        r = rw[i]
        acc = [r[0] / o, r[1] / o, r[2] / o, r[3] / o, 0.0]
        cen = 0.0
        worst = 0
        worst_c = 0
        for j, kg in succ[i]:
            p = kg / o
            bj = eb[j]
            acc[0] += p * bj[0]
            acc[1] += p * bj[1]
            acc[2] += p * bj[2]
            acc[3] += p * bj[3]
            acc[4] += p * bj[4]
            cen += p * (bj[0] + bj[1])
            if rb[j] > worst:
                worst = rb[j]
        d = len(succ[i])
        worst_c = worst + 1
        eb[i] = acc
        rb[i] = worst + 2 + d + 1  # quotient, product, the d additions and the R term
        rc[i] = worst_c + 2 + d
        ec[i] = cen
    res.B = np.array(eb, dtype=np.float64).reshape(n, 5)
    res.central = np.array(ec, dtype=np.float64)
    res.rounds_B = np.array(rb, dtype=np.int64)
    res.rounds_central = np.array(rc, dtype=np.int64)


def _exact_pass(ch: _Chain, ok: np.ndarray, src: np.ndarray, dst: np.ndarray,
                w: np.ndarray) -> tuple[list[tuple[Fraction, ...]], list[Fraction]]:
    """Reverse-topological pass with Fractions (acyclic graph only): ``B`` and the central shares exactly."""
    n = len(ch.keys)
    succ, order = _topo(n, src, dst, w)
    zero = Fraction(0)
    eb: list[tuple[Fraction, ...]] = [(zero,) * 5] * n
    ec: list[Fraction] = [zero] * n
    rw = ch.rw.tolist()
    outs = ch.outflow.tolist()
    for i in reversed(order):
        if not ok[i]:
            eb[i] = (zero, zero, zero, zero, Fraction(1))
            continue
        o = outs[i]
        acc = [Fraction(rw[i][k], o) for k in range(4)] + [zero]
        cen = zero
        for j, kg in succ[i]:
            p = Fraction(kg, o)
            bj = eb[j]
            for k in range(5):
                acc[k] += p * bj[k]
            cen += p * (bj[U] + bj[D])
        eb[i] = tuple(acc)
        ec[i] = cen
    return eb, ec


def _sparse_solve(Q: sparse.csr_matrix, R: np.ndarray) -> np.ndarray:
    """``B = (I − Q)⁻¹ R`` with one sparse LU factorisation (SuperLU) and a solve per fate column.

    ``I − Q`` is non-singular because trapped nodes were made absorbing; the condensation-level solve below
    replaced a solve by levels of the condensation DAG that looped over the levels in Python (B2: 1.0 s).
    ``method`` keeps its name ``levels`` (an API value)."""
    n = Q.shape[0]
    if n == 0:
        return np.zeros((0, R.shape[1]), dtype=np.float64)
    m = (sparse.identity(n, format="csc") - Q.tocsc()).tocsc()
    return np.asarray(splu(m).solve(np.ascontiguousarray(R)), dtype=np.float64).reshape(n, R.shape[1])


def _stacked(arrays: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    """The arrays one after the other (``empty`` when there are none)."""
    return np.concatenate(arrays) if arrays else empty


def _all_exact(parts: list[FateResult]) -> bool:
    """The stacked fates are exact when every part is (and there is a part)."""
    return bool(parts) and all(p.is_exact and p.rounds_B is not None for p in parts)


def _stack_exact(res: FateResult, parts: list[FateResult]) -> None:
    """``res`` given the parts' rounding counts, and their Fractions stacked when first needed."""
    res.rounds_B = np.concatenate([p.rounds_B for p in parts if p.rounds_B is not None])
    res.rounds_central = np.concatenate([p.rounds_central for p in parts if p.rounds_central is not None])

    def stacked() -> tuple[list[tuple[Fraction, ...]], list[Fraction]]:
        return ([row for p in parts for row in (p.exact_B or [])],
                [c for p in parts for c in (p.exact_central or [])])
    res.exact_fn = stacked


def _stacked_nodes(parts: list[FateResult]) -> FateResult:
    """The parts' nodes one after the other: keys, per-node arrays and ``B`` stacked, ``Q`` block-diagonal."""
    keys = [k for p in parts for k in p.keys]
    no_kg = np.zeros(0, dtype=np.int64)
    return FateResult(
        keys=keys, index=dict(zip(keys, range(len(keys)), strict=True)),
        generated=_stacked([p.generated for p in parts], no_kg), drawn=_stacked([p.drawn for p in parts], no_kg),
        outflow=_stacked([p.outflow for p in parts], no_kg), B=_stacked([p.B for p in parts], np.zeros((0, 5))),
        central=_stacked([p.central for p in parts], np.zeros(0)),
        Q=sparse.block_diag([p.Q for p in parts], format="csr") if parts else sparse.csr_matrix((0, 0)))


def concat(parts: list[FateResult]) -> FateResult:
    """One stream's fates from the fates of its codes' graphs (a transfer joins nodes of one code only, so the
    codes' chains are independent blocks: ``B`` of the stream is their rows stacked). Exact when every part is."""
    if len(parts) == 1:
        return parts[0]
    res = _stacked_nodes(parts)
    res.trapped = [k for p in parts for k in p.trapped]
    res.loops = [lp for p in parts for lp in p.loops]
    if _all_exact(parts):
        res.method = "exact"
        _stack_exact(res, parts)
    else:
        res.method = "levels"
    return res
