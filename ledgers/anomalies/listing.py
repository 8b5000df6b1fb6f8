"""The anomaly list's lifecycle: the query checked, the caller's scope, the process cache of the city-wide
findings of each kind (stamped by what they depend on), and the families computed — the heavy reconciliation
beside the others where the database allows (``nofei.storage.findings.run_beside``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledgers.manifests import local_date
from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.errors import InputRejected, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import findings as repo
from nofei.storage.cache import StampedCache
from nofei.storage.uow import UnitOfWork

from .common import KINDS, Finding, Units
from .filing import missing_ledgers
from .manifests import discrepancies, missing_numbers, receipt_overdue
from .permits import permit_kinds
from .reconciliation import reconciliation
from .storage_age import storage_over_year
from .unresolved import unresolved

Group = tuple[str, ...]
# Kinds computed together (the permit kinds share one pass over the year's manifests and 转出 rows).
_GROUPS: tuple[Group, ...] = (
    ("receipt_overdue",), ("discrepancy",), ("storage_over_year",), ("missing_manifest_number",),
    ("permit_not_covering", "over_capacity"), ("reconciliation",), ("unresolved_mass",), ("missing_ledger",))
_RECON: Group = ("reconciliation",)
# (database, year, kinds, day judged, rules) -> the city-wide findings of those kinds, at their stamp
_CACHE: StampedCache[list[Finding]] = StampedCache("findings", 64)


def clear_cache() -> None:
    """Forget every cached finding (benchmarks time the cold path)."""
    _CACHE.clear()


def findings_stamp(uow: UnitOfWork) -> str:
    """What the findings depend on, as text: equal stamps mean the same findings (for the case sync)."""
    with uow:
        return repr(repo.stamp(uow.session))


@dataclass(frozen=True)
class _Job:
    """What one computation of a group needs (``scope`` only narrows the work, never the findings in it)."""

    year: int
    units: Units
    as_of: datetime
    scope: set[str] | None
    want: set[str] | None


_FAMILIES: dict[str, Callable[[UnitOfWork, Group, _Job], list[Finding]]] = {
    "receipt_overdue": lambda u, g, j: receipt_overdue(u, j.year, j.as_of),
    "discrepancy": lambda u, g, j: discrepancies(u, j.year),
    "storage_over_year": lambda u, g, j: storage_over_year(u, j.year, j.units, j.scope),
    "missing_manifest_number": lambda u, g, j: missing_numbers(u, j.year, j.units),
    "permit_not_covering": lambda u, g, j: permit_kinds(u, j.year, j.units,
                                                        set(g) if j.want is None else j.want & set(g)),
    "reconciliation": lambda u, g, j: reconciliation(u, j.year, j.units, j.as_of),
    "unresolved_mass": lambda u, g, j: unresolved(u, j.year, j.units),
    "missing_ledger": lambda u, g, j: missing_ledgers(u, j.year, j.as_of),
}


def _check(uow: UnitOfWork, actor: Actor, year: int, region: str | None, kind: str | None) -> None:
    """422 for a bad kind, region or year; 403 for a regulator asking outside its district."""
    problems = []
    if kind is not None and kind not in KINDS:
        problems.append(Problem("unknown_kind", f"未知的异常类型 {kind}", f"unknown kind {kind}", field="kind", value=kind))
    if region is not None and not uow.catalogue.is_region(region):
        problems.append(Problem("unknown_region", "未知的区域代码", "unknown region", field="region", value=region))
    if not 1990 <= year <= 2100:
        problems.append(Problem("bad_year", "年份超出范围", "year out of range", field="year", value=year))
    if problems:
        raise InputRejected("查询参数有误 (invalid query)", problems=problems)
    if actor.role == "regulator" and region and not actor.can_view_region(region, None):
        district = uow.catalogue.parks[region].district if region in uow.catalogue.parks else None
        if not actor.can_view_region(region, district):
            raise PermissionDenied("无权查看该区域 (region outside your district)")


def _scope(actor: Actor, region: str | None, units: Units) -> set[str] | None:
    """The units whose findings the caller sees (None: all): an enterprise its own, a regulator its district's,
    narrowed to ``region`` when one is asked for."""
    scope: set[str] | None = None
    if actor.role == "enterprise":
        scope = set(actor.units)
    elif actor.role == "regulator" and actor.district != CITY:
        scope = {cc for cc in units.region if units.in_region(cc, actor.district or "")}
    if region and region != CITY:
        inr = {cc for cc in units.region if units.in_region(cc, region)}
        scope = inr if scope is None else scope & inr
    return scope


def _compute_all(uow: UnitOfWork, todo: list[Group], job: _Job) -> dict[Group, list[Finding]]:
    """Each group of ``todo``; the reconciliation, the one heavy query, beside the others when there are others."""
    results: dict[Group, list[Finding]] = {}

    def rest(u: UnitOfWork) -> None:
        for group in todo:
            if group != _RECON:
                results[group] = _FAMILIES[group[0]](u, group, job)

    with repo.tuned(uow.session):
        if _RECON not in todo:
            rest(uow)
        elif len(todo) == 1:
            results[_RECON] = _FAMILIES[_RECON[0]](uow, _RECON, job)
        else:
            results[_RECON] = repo.run_beside(uow, lambda u: _FAMILIES[_RECON[0]](u, _RECON, job), rest)
    return results


def _from_cache(keys: dict[Group, tuple[Any, ...]], stamp: tuple[Any, ...] | None) -> dict[Group, list[Finding]]:
    out = {}
    for group, key in keys.items():
        hit = _CACHE.get(key, stamp)
        if hit is not None:
            out[group] = hit
    return out


def _to_cache(keys: dict[Group, tuple[Any, ...]], stamp: tuple[Any, ...] | None,
              fresh: dict[Group, list[Finding]]) -> None:
    for group, found in fresh.items():
        _CACHE.put(keys[group], stamp, found)


def list_anomalies(*, uow: UnitOfWork, actor: Actor, year: int, region: str | None = None, kind: str | None = None,
                   as_of: datetime | None = None, cache: bool = True) -> list[Finding]:
    """Every anomaly of ``year`` touching a unit in ``region`` (default: the caller's whole view).

    Regulators see anomalies with a unit in their district; enterprises those of their own units; admins all.
    ``as_of`` (default now) is the day against which "overdue" and "after the following month" are judged.
    Plain dicts, so the annual report can embed them without importing ``ledgers``. The whole year's findings
    of each kind are cached in the process (see ``nofei.storage.findings.stamp``); ``cache=False`` computes
    them afresh."""
    with uow:
        _check(uow, actor, year, region, kind)
        as_of = as_of or datetime.now(UTC)
        units = Units(uow)
        scope = _scope(actor, region, units)
        want = set(KINDS) if kind is None else {kind}
        groups = [g for g in _GROUPS if want & set(g)]
        if not cache:
            results = _compute_all(uow, groups, _Job(year, units, as_of, scope, want))
        else:
            stamp = repo.stamp(uow.session)
            keys = {g: (repo.database_key(uow.session), year, g, local_date(as_of), uow.rules) for g in groups}
            results = _from_cache(keys, stamp)
            fresh = _compute_all(uow, [g for g in groups if g not in results], _Job(year, units, as_of, None, None))
            _to_cache(keys, stamp, fresh)
            results.update(fresh)
    return _visible([a for group in groups for a in results[group]], want, scope)


def _visible(found: list[Finding], want: set[str], scope: set[str] | None) -> list[Finding]:
    """The wanted kinds touching a unit in ``scope``, by kind then largest mass first; copies, so that callers
    (the report, the API) may annotate what they get without touching the cache."""
    out = [dict(a) for a in found if a["kind"] in want and (scope is None or any(u in scope for u in a["units"]))]
    out.sort(key=lambda a: (KINDS.index(a["kind"]), -a["mass_kg"]))
    return out


def summary(anomalies: list[Finding]) -> dict[str, dict[str, Any]]:
    """Count and mass per kind (for the report and the API header)."""
    out: dict[str, dict[str, Any]] = {k: {"count": 0, "mass_kg": 0} for k in KINDS}
    for a in anomalies:
        out[a["kind"]]["count"] += 1
        out[a["kind"]]["mass_kg"] += a["mass_kg"]
    for v in out.values():
        v["mass_t"] = kg_to_t_float(v["mass_kg"])
    return out
