"""Receivers and their permits (经营许可证): a receiver whose permits do not cover the code or method it took
(``permit_not_covering``), and one that took more than its permitted yearly capacity (``over_capacity``).

Both kinds share one pass over the year's manifests and 转出 rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from ledgers.manifests import HAZ_STREAMS
from nofei.domain.units import Permit
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage.uow import UnitOfWork

from .common import Finding, Units, anomaly, ledger_rows

Key = tuple[str, str, str | None]  # (receiver, code, method)


@dataclass
class _Uncovered:
    """What a receiver took of one code and method its permits do not cover."""

    kg: int = 0
    n: int = 0  # manifests behind it
    manifests: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the first 转出 row of each ledger group
    senders: set[str] = field(default_factory=set)


@dataclass
class _Taken:
    """One pass over the year: what each receiver took (manifests, ledgers) and what no permit covers."""

    permits: dict[str, list[Permit]]
    uncovered: dict[Key, _Uncovered] = field(default_factory=dict)
    by_manifests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_ledgers: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def covered(self, receiver: str, code: str, method: str | None) -> bool:
        return any(p.covers(code, method) for p in self.permits.get(receiver, []))


def _permits(uow: UnitOfWork, year: int) -> dict[str, list[Permit]]:
    """Each holder's permits valid at some time in ``year``."""
    out: dict[str, list[Permit]] = defaultdict(list)
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    for p in repo.permits(uow.session):
        if (p.valid_from and p.valid_from > y1) or (p.valid_to and p.valid_to < y0):
            continue
        out[p.credit_code].append(Permit(p.number, p.waste_codes, p.methods, p.capacity_kg, None, None))
    return out


def _take(uow: UnitOfWork, year: int, units: Units) -> _Taken:
    t = _Taken(_permits(uow, year))
    for d in repo.deliveries(uow.session, year):
        if d.receiver not in units.region:
            continue
        t.by_manifests[d.receiver] += d.kg
        if not t.covered(d.receiver, d.code, d.method):
            u = t.uncovered.setdefault((d.receiver, d.code, d.method), _Uncovered())
            u.kg += d.kg
            u.n += d.n
            u.manifests.append(d.first)
            u.senders.add(d.shipper)
    for r in repo.declared_deliveries(uow.session, year, HAZ_STREAMS):
        if r.receiver not in units.region:
            continue
        t.by_ledgers[r.receiver] += r.kg
        if not t.covered(r.receiver, r.code, r.method):
            # the ledger's side of a finding the manifests already raised for the receiver and code is that finding
            key = next((k for k in t.uncovered if k[0] == r.receiver and k[1] == r.code and t.uncovered[k].n),
                       (r.receiver, r.code, r.method))
            u = t.uncovered.setdefault(key, _Uncovered())
            u.kg = max(u.kg, r.kg)
            u.rows.append(r.first)
    return t


def _not_covering(uow: UnitOfWork, t: _Taken, units: Units) -> list[Finding]:
    where = ledger_rows(uow, [i for u in t.uncovered.values() for i in u.rows], units)
    out = []
    for (rc, code, meth), u in t.uncovered.items():
        has = bool(t.permits.get(rc))
        out.append(anomaly(
            "permit_not_covering", units=[rc, *sorted(s for s in u.senders if s)], mass_kg=u.kg,
            waste_code=code, manifests=u.manifests, manifest_count=u.n,
            ledger_rows=[where[i] for i in u.rows if i in where],
            message=(f"{rc} 的许可证不含 {code}" + (f" / {meth}" if meth else "") if has
                     else f"{rc} 没有有效的经营许可证") + f"，接收 {kg_to_t_float(u.kg)} t",
            detail={"method": meth, "has_permit": has}))
    return out


def _over_capacity(t: _Taken, year: int) -> list[Finding]:
    out = []
    for rc, ps in t.permits.items():
        cap = sum(p.capacity_kg for p in ps)
        got = max(t.by_manifests.get(rc, 0), t.by_ledgers.get(rc, 0))
        if cap > 0 and got > cap:
            out.append(anomaly(
                "over_capacity", units=[rc], mass_kg=got - cap,
                message=f"{rc} {year} 年接收危险废物 {kg_to_t_float(got)} t，超过许可年经营规模 {kg_to_t_float(cap)} t",
                detail={"received_kg": got, "capacity_kg": cap, "permits": [p.number for p in ps]}))
    return out


def permit_kinds(uow: UnitOfWork, year: int, units: Units, want: set[str]) -> list[Finding]:
    """The wanted ones of ``permit_not_covering`` and ``over_capacity``."""
    t = _take(uow, year, units)
    out = _not_covering(uow, t, units) if "permit_not_covering" in want else []
    if "over_capacity" in want:
        out += _over_capacity(t, year)
    return out
