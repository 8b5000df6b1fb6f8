"""Small factory for flow/indicator tests: balanced ``LedgerDraft``s from short tuples, and storing them.

Quantities are given in tonnes (text or numbers, exact) and become integer kg. Every draft is
checked with ``balance_problems`` so a test can never feed an unbalanced ledger by mistake.
Storing goes through ``nofei.storage.ledgerstore.insert_ledger_version``, as an upload does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft, StockLine, TransferLine, TreatmentLine, balance_problems
from nofei.domain.units import make_credit_code
from nofei.flows.graph import node_link
from nofei.quantity import tonnes_to_kg
from nofei.storage import ledgerstore
from nofei.storage.tables import UnitRow

CAT = Catalogue.default()


def cc(n: int, district: str = "630104") -> str:
    """A valid credit code for unit number ``n`` (distinct per (district, n))."""
    return make_credit_code(district, f"FL{n:07d}")


def kg(t: Any) -> int:
    return tonnes_to_kg(str(t))


def draft(unit: str, month: str, *, stocks: Sequence[tuple] = (), treat: Sequence[tuple] = (),
          out: Sequence[tuple] = (), into: Sequence[tuple] = (), check: bool = True) -> LedgerDraft:
    """A monthly ledger.

    ``stocks``: ``(code, open_t, generated_t, close_t)``; ``treat``: ``(code, method, t)``;
    ``out``: ``(code, receiver, t[, manifest_no])``; ``into``: ``(code, sender, t[, manifest_no])``.
    """
    day = date(int(month[:4]), int(month[5:7]), 15)

    def stream(code: str) -> Any:
        s = CAT.stream_of(code)
        assert s is not None, code
        return s

    d = LedgerDraft(
        credit_code=unit, unit_name=f"单位{unit[-6:]}", month=month,
        stocks=[StockLine(c, stream(c), kg(o), kg(g), kg(cl)) for c, o, g, cl in stocks],
        treatments=[TreatmentLine(c, stream(c), m, kg(q)) for c, m, q in treat],
        transfers=[TransferLine("out", day, r[0], stream(r[0]), kg(r[2]), r[1],
                                manifest_no=r[3] if len(r) > 3 else None) for r in out]
        + [TransferLine("in", day, r[0], stream(r[0]), kg(r[2]), r[1],
                        manifest_no=r[3] if len(r) > 3 else None) for r in into],
    )
    if check:
        assert not balance_problems(d), balance_problems(d)
    return d


# --- the database ---------------------------------------------------------------------------
def add_unit(session: Session, credit_code: str, district: str, *, park: str | None = None,
             roles: Iterable[str] = ("producer",), name: str | None = None, unit_type: str = "industrial",
             small_clinic: bool = False) -> int:
    now = datetime.now(UTC)
    res = session.execute(insert(UnitRow).values(
        credit_code=credit_code, name=name or f"单位{credit_code[-6:]}", district=district, park=park,
        roles=list(roles), unit_type=unit_type, small_clinic=small_clinic, created_at=now, updated_at=now))
    return int(res.inserted_primary_key[0])


def store(session: Session, d: LedgerDraft) -> int:
    """Store ``d`` as the newest (current) version of its unit and month, as an upload is stored
    (``ledgerstore.insert_ledger_version``: version numbering, entries, flow summaries); returns its id."""
    unit = session.execute(select(UnitRow).where(UnitRow.credit_code == d.credit_code)).scalar_one()
    content = repr(d).encode("utf-8")
    row = ledgerstore.insert_ledger_version(
        session, unit=unit, draft=d, sha256=hashlib.sha256(content).hexdigest(), content=content,
        filename=f"{d.month}.xlsx", content_type="application/octet-stream", uploaded_by="test", warnings=[],
        totals={})
    return int(row.id or 0)


def store_all(session: Session, drafts: Iterable[LedgerDraft]) -> list[int]:
    ids = [store(session, d) for d in drafts]
    session.commit()
    return ids


# --- the small city worked out by hand (tests/unit/test_flows.py explains every figure) -------
HW = "900-199-08"  # HW08 waste mineral oil
MED = "841-001-01"
P1, P2, C, R, F = cc(1, "630102"), cc(2, "630103"), cc(3, "630104"), cc(4, "630105"), cc(5, "630106")
P3, HC, P4 = cc(6, "630102"), cc(7, "630104"), cc(8, "630103")
H, M = cc(9, "630102"), cc(10, "630106")
FU, FR = cc(11, "630121"), cc(12, "630121")
K, KP = cc(13, "630103"), cc(14, "630105")
UNREG = cc(99, "630123")  # never registered

CITY_UNITS: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    (P1, "630102", None, ("producer",)), (P2, "630103", "NANCHUAN", ("producer",)),
    (C, "630104", None, ("collector",)), (R, "630105", None, ("utiliser",)), (F, "630106", None, ("disposer",)),
    (P3, "630102", None, ("producer",)), (HC, "630104", None, ("utiliser",)), (P4, "630103", None, ("producer",)),
    (H, "630102", None, ("producer",)), (M, "630106", None, ("disposer",)),
    (FU, "630121", None, ("producer",)), (FR, "630121", None, ("utiliser",)),
    (K, "630103", None, ("producer",)), (KP, "630105", None, ("utiliser",)),
]


def small_city() -> list[LedgerDraft]:
    """The 2025 ledgers of the hand-worked city (one draft per unit and month)."""
    return [
        # general industrial: two producers mix at collector C, which sends on to R (utilise) and F (landfill)
        draft(P1, "2025-03", stocks=[("SW01", 0, 100, 0)], out=[("SW01", C, 100)]),
        draft(P2, "2025-03", stocks=[("SW01", 0, 300, 50)], out=[("SW01", C, 200)], treat=[("SW01", "D1", 50)]),
        draft(C, "2025-03", stocks=[("SW01", 0, 0, 60)], into=[("SW01", P1, 100), ("SW01", P2, 200)],
              out=[("SW01", R, 180), ("SW01", F, 60)]),
        draft(R, "2025-03", stocks=[("SW01", 0, 0, 0)], into=[("SW01", C, 180)], treat=[("SW01", "R5", 180)]),
        draft(F, "2025-03", stocks=[("SW01", 0, 0, 0)], into=[("SW01", C, 60)], treat=[("SW01", "D1", 60)]),
        # hazardous: P3 draws 40 t of older stock; P4 sends to an unregistered unit and to one without HW ledgers
        draft(P3, "2025-01", stocks=[(HW, 40, 10, 20)], out=[(HW, HC, 30, "20250100000001")]),
        draft(P3, "2025-06", stocks=[(HW, 20, 0, 0)], treat=[(HW, "D10", 20)]),
        draft(HC, "2025-01", stocks=[(HW, 0, 0, 0)], into=[(HW, P3, 30, "20250100000001")], treat=[(HW, "R9", 30)]),
        draft(P4, "2025-02", stocks=[(HW, 0, 20, 0)], out=[(HW, UNREG, 10), (HW, KP, 5, "123")],
              treat=[(HW, "R9", 5)]),
        # medical: the hospital incinerates 2 t itself (not central) and sends 8 t to M
        draft(H, "2025-04", stocks=[(MED, 0, 10, 0)], out=[(MED, M, 8, "20250400000002")], treat=[(MED, "Y10", 2)]),
        draft(M, "2025-04", stocks=[(MED, 0, 0, 0)], into=[(MED, H, 8, "20250400000002")], treat=[(MED, "Y10", 8)]),
        # film: 50 t used, 30 t recovered by FR, 20 t still on the fields (stored)
        draft(FU, "2025-05", stocks=[("NM01", 0, 50, 20)], out=[("NM01", FR, 30)]),
        draft(FR, "2025-05", stocks=[("NM01", 0, 0, 0)], into=[("NM01", FU, 30)], treat=[("NM01", "R5", 30)]),
        # kitchen waste: 100 t to KP, which digests 70 t and landfills 30 t
        draft(K, "2025-07", stocks=[("CC01", 0, 100, 0)], out=[("CC01", KP, 100)]),
        draft(KP, "2025-07", stocks=[("CC01", 0, 0, 0)], into=[("CC01", K, 100)],
              treat=[("CC01", "R3", 70), ("CC01", "D1", 30)]),
    ]


# --- comparing flow models ---------------------------------------------------------------
def normal_graph(g: Any) -> tuple[Any, ...]:
    """A graph's node-link JSON in a canonical order (graphs equal up to ordering compare equal)."""
    nl = node_link(g)
    return (nl["graph"], sorted((n["id"], repr(sorted(n.items()))) for n in nl["nodes"]),
            sorted((lk["source"], lk["target"], repr(sorted(lk.items()))) for lk in nl["links"]))


def same_fate(f: Any, h: Any) -> None:
    """Two fate attributions are the same to the last bit."""
    assert f.keys == h.keys and f.index == h.index and f.method == h.method
    for name in ("generated", "drawn", "outflow", "B", "central", "rounds_B", "rounds_central"):
        x, y = getattr(f, name), getattr(h, name)
        assert (x is None and y is None) or np.array_equal(x, y), name
    assert (f.Q != h.Q).nnz == 0 and f.Q.shape == h.Q.shape
    assert f.trapped == h.trapped and f.loops == h.loops
    if f.is_exact:
        assert f.exact_B == h.exact_B and f.exact_central == h.exact_central


def _akey(a: Any) -> tuple[str, str, str]:
    return (a.shipper, a.receiver, a.code)


def same_model(live: dict[str, Any], scratch: dict[str, Any]) -> None:
    """A live flow model (``flowdata._model``) is one built from scratch: data, components, parts, fates, graphs."""
    assert live.keys() == scratch.keys()
    for s, m in live.items():
        w = scratch[s]
        assert m.data.nodes == w.data.nodes and m.exact_limit == w.exact_limit and m.edges == w.edges
        assert m.codes.keys() == w.codes.keys()
        for c, cm in m.codes.items():
            cw = w.codes[c]
            assert cm.comp_of == cw.comp_of and cm.members == cw.members and cm.senders == cw.senders
            assert cm.edges == cw.edges and cm.nodes == cw.nodes
            assert sorted(cm.parts) == sorted(cw.parts)
            for k, p in cm.parts.items():
                assert list(p.data.nodes) == list(cw.parts[k].data.nodes)
                # the same attestations (a manifest step re-folds its shipper's last: the list's order may differ
                # across shippers, never within one, and each edge has one shipper)
                assert sorted(p.attested, key=_akey) == sorted(cw.parts[k].attested, key=_akey)
        same_fate(m.fate, w.fate)
        assert normal_graph(m.graph) == normal_graph(w.graph)
