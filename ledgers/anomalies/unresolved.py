"""Mass whose fate is unknown (去向不明, fate ``X``, indicators.md §1), read from the one flow model."""

from __future__ import annotations

from collections import defaultdict

from nofei.catalogue import STREAMS
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage import flowdata
from nofei.storage.findings import TransferRow
from nofei.storage.uow import UnitOfWork

from .common import MAX_NAMED, Finding, Units, anomaly, ledger_rows

Lost = dict[tuple[str, str, str], int]  # (shipper, receiver, code) -> kg


def _lost(uow: UnitOfWork, year: int) -> Lost:
    """The flow model's edges to ``X``: 转出 to (j, c) that is no node of the year's graph — j unregistered, or
    no ledger of j in the year naming c — less what a refusal sent back (the model's ``kg``)."""
    lost: Lost = {}
    for stream in STREAMS:
        _d, g, _f = flowdata.stream_year(uow.session, stream, year, catalogue=uow.catalogue)
        if "X" not in g:
            continue
        for k, _x, e in g.in_edges("X", data=True):
            for cp, kg in e.get("receivers", {}).items():
                if kg > 0:
                    lost[(k[0], cp, k[1])] = kg
    return lost


def unresolved(uow: UnitOfWork, year: int, units: Units) -> list[Finding]:
    """One finding per (shipper, receiver, code) edge to ``X``; the rows behind each are fetched for the groups
    found only."""
    lost = _lost(uow, year)
    if not lost:
        return []
    groups: dict[tuple[str, str, str], list[TransferRow]] = defaultdict(list)
    for r in repo.out_rows_to(uow.session, year, [cp for _u, cp, _c in lost]):
        key = (units.by_id.get(r.unit_id, ""), r.counterpart, r.code)
        if key in lost:
            groups[key].append(r)
    where = ledger_rows(uow, [r.id for rs in groups.values() for r in rs[:MAX_NAMED]], units)
    out = []
    for (cc, cp, code), kg in lost.items():
        rs = groups.get((cc, cp, code), [])
        why = "未注册" if cp not in units.region else f"{year} 年没有报送含 {code} 的台账"
        out.append(anomaly(
            "unresolved_mass", units=[cc, cp], mass_kg=kg, waste_code=code,
            manifests=sorted({r.manifest_no for r in rs if r.manifest_no}),
            ledger_rows=[where[r.id] for r in rs[:MAX_NAMED] if r.id in where], ledger_row_count=len(rs),
            message=f"{cc} 转出 {kg_to_t_float(kg)} t {code} 给 {cp}，接收方{why}，去向不明",
            detail={"receiver_registered": cp in units.region}))
    return out
