"""The regulator's casework (issue 13): every anomaly becomes a case with an owner, a thread and an end.

- ``sync_cases`` brings a year's cases up to date with the anomaly list: a new anomaly opens a case; a case
  whose anomaly is gone closes itself as resolved, saying by what; a closed case whose anomaly still holds
  after its facts changed (a new ledger version, a manifest step) reopens itself. It runs only when the
  findings' stamp has changed since the last sync (``anomalies.findings_stamp``), so a read costs little.
- ``list_cases`` / ``get_case`` read what the caller may see (the same scope as the anomalies: a regulator the
  cases with a unit in its district, an enterprise those naming its units, admins all).
- ``add_event`` records a person's step: note, assign, notify, respond, close, waive, reopen.

Every event is in the audit chain: a person's step as its own entry; the steps one sync takes for the system
as one ``case.sync`` entry naming every case it opened, reopened or resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from nofei.access import SYSTEM, Actor
from nofei.catalogue import CITY
from nofei.domain import cases as C  # noqa: N812
from nofei.domain.completeness import months_owed, next_deadlines
from nofei.domain.manifests import is_well_formed_number
from nofei.domain.units import normalise_credit_code
from nofei.errors import Conflict, InputRejected, NotFound, PermissionDenied
from nofei.problems import Problem
from nofei.quantity import kg_to_t_float
from nofei.storage import cases as repo
from nofei.storage.tables import CaseRow
from nofei.storage.uow import UnitOfWork

from . import anomalies
from .manifests import local_date

MAX_TEXT = 4000
Regions = dict[str, tuple[str, str | None, str]]  # credit code -> (district, park, name)


def _now() -> datetime:
    return datetime.now(UTC)


# --- sync with the anomaly list ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncResult:
    opened: int = 0
    reopened: int = 0
    resolved: int = 0
    skipped: bool = False


def sync_cases(*, uow: UnitOfWork, year: int, as_of: datetime | None = None) -> SyncResult:
    """Bring ``year``'s cases up to date with its anomalies (judged as of ``as_of``, default now); commits."""
    with uow:
        as_of = as_of or _now()
        day = local_date(as_of)
        stamp = anomalies.findings_stamp(uow)
        if repo.synced_stamp(uow.session, year, day) == stamp:
            return SyncResult(skipped=True)
        found = anomalies.list_anomalies(uow=uow, actor=SYSTEM, year=year, as_of=as_of)
        # a concurrent sync that opened the same case first: its work stands
        result = repo.first_writer_wins(uow, lambda: _apply(uow, year, day, stamp, found, as_of))
        return result if result is not None else SyncResult(skipped=True)


@dataclass
class _Sync:
    """One sync's work: the cases it opened, reopened and resolved, at one instant."""

    uow: UnitOfWork
    year: int
    now: datetime
    regions: Regions
    opened: list[int]
    reopened: list[int]
    resolved: list[int]

    def system_event(self, row: CaseRow, action: str, prev: str | None, text: str,
                     detail: dict[str, Any] | None = None) -> None:
        repo.add_event(self.uow.session, row, time=self.now, actor=SYSTEM.label, role="system", action=action,
                       from_status=prev, text=text, detail=detail)

    def audited(self, as_of: datetime) -> SyncResult:
        """The steps taken for the system, as one ``case.sync`` audit entry (none when nothing changed)."""
        if self.opened or self.reopened or self.resolved:
            self.uow.audit(SYSTEM, "case.sync", f"cases:{self.year}",
                           detail={"as_of": as_of.isoformat(), "opened": self.opened, "reopened": self.reopened,
                                   "resolved": self.resolved})
        return SyncResult(len(self.opened), len(self.reopened), len(self.resolved))


def _districts(units: list[str], regions: Regions) -> list[str]:
    return sorted({regions[u][0] for u in units if u in regions})


def _closure(row: CaseRow) -> C.Closure:
    return C.Closure(_status(row), row.resolution, row.closed_at, row.facts_at_close)


def _status(row: CaseRow) -> C.CaseStatus:
    """The stored status: only these use cases write it, always one of ``C.STATUSES``."""
    return cast(C.CaseStatus, row.status)


def _set_closure(row: CaseRow, c: C.Closure) -> None:
    row.status, row.resolution, row.closed_at, row.facts_at_close = c.status, c.resolution, c.closed_at, c.facts_at_close


def _open(sync: _Sync, key: str, a: dict[str, Any], fx: str) -> None:
    row = repo.open_case(sync.uow.session, key=key, kind=a["kind"], year=sync.year, units=list(a["units"]),
                         districts=_districts(a["units"], sync.regions), title=str(a.get("title", ""))[:200],
                         message=str(a.get("message", ""))[:2000], mass_kg=int(a.get("mass_kg") or 0),
                         anomaly=_snapshot(a), facts=fx, now=sync.now)
    sync.system_event(row, "raise", None, row.message)
    sync.opened.append(int(row.id or 0))


def _follow(sync: _Sync, row: CaseRow, a: dict[str, Any], fx: str) -> None:
    """An existing case whose anomaly holds: refreshed, and reopened when the rules say so."""
    why = C.reopen_reason(_closure(row), held_before=row.holds, facts_before=row.facts, facts_now=fx)
    _refresh(row, a, fx, sync.regions, sync.now)
    if why is not None:
        prev = row.status
        _set_closure(row, C.Closure("open"))
        sync.system_event(row, "auto_reopen", prev, C.REOPEN_TEXT[why], {"message": row.message})
        sync.reopened.append(int(row.id or 0))
    sync.uow.session.add(row)


def _gone(sync: _Sync, row: CaseRow) -> None:
    """A case whose anomaly is no longer found: no longer holds, and closes itself as resolved if open."""
    row.holds = False
    row.updated_at = sync.now
    closed = C.auto_resolved(_closure(row), facts=row.facts, at=sync.now)
    if closed is not None:
        prev = row.status
        by = repo.latest_change(sync.uow.session, row.units, list(row.anomaly.get("manifests") or []), row.opened_at)
        _set_closure(row, closed)
        sync.system_event(row, "auto_resolve", prev, "重新计算后该异常已不存在，案件自动结案" + (f"（{by}）" if by else ""),
                          {"by": by})
        sync.resolved.append(int(row.id or 0))
    sync.uow.session.add(row)


def _apply(uow: UnitOfWork, year: int, day: date, stamp: str, found: list[dict[str, Any]],
           as_of: datetime) -> SyncResult:
    s = uow.session
    repo.lock_year(s, year)
    if repo.synced_stamp(s, year, day) == stamp:  # another sync did it while we computed
        return SyncResult(skipped=True)
    current = {C.anomaly_key(a, year): a for a in found}
    existing = {c.key: c for c in repo.of_year(s, year)}
    existing.update(repo.by_keys(s, [k for k in current if k not in existing]))
    sync = _Sync(uow, year, _now(), repo.districts_of(s, {u for a in found for u in a["units"]}), [], [], [])
    for key, a in current.items():
        fx = C.facts(a)
        if key in existing:
            _follow(sync, existing[key], a, fx)
        else:
            _open(sync, key, a, fx)
    for key, row in existing.items():
        if key not in current and row.holds:
            _gone(sync, row)
    repo.put_stamp(s, year, day, stamp, sync.now)
    return sync.audited(as_of)


def _snapshot(a: dict[str, Any]) -> dict[str, Any]:
    keep = ("kind", "title", "message", "units", "manifests", "manifest_count", "ledger_rows", "ledger_row_count",
            "waste_code", "mass_kg", "detail")
    return {k: a.get(k) for k in keep}


def _refresh(row: CaseRow, a: dict[str, Any], fx: str, regions: Regions, now: datetime) -> None:
    if fx != row.facts or not row.holds:
        row.updated_at = now
    row.units = list(a["units"])
    row.districts = _districts(a["units"], regions)
    row.title, row.message = str(a.get("title", ""))[:200], str(a.get("message", ""))[:2000]
    row.mass_kg = int(a.get("mass_kg") or 0)
    row.anomaly = _snapshot(a)
    row.facts = fx
    row.holds = True


# --- who sees a case ---------------------------------------------------------------------------------------
def _visible(actor: Actor, row: CaseRow) -> bool:
    if actor.sees_all():
        return True
    if actor.role == "regulator":
        return actor.district in row.districts
    return bool(set(row.units) & actor.units)


def _in_district(actor: Actor, row: CaseRow) -> bool:
    return actor.role == "regulator" and (actor.district == CITY or actor.district in row.districts)


def _named(actor: Actor, row: CaseRow) -> bool:
    return actor.role == "enterprise" and bool(set(row.units) & actor.units)


def case_dict(uow: UnitOfWork, row: CaseRow, actor: Actor, *, events: bool = False) -> dict[str, Any]:
    cat = uow.catalogue
    names = repo.districts_of(uow.session, row.units)
    a = row.anomaly or {}
    out: dict[str, Any] = {
        "id": row.id, "key": row.key, "kind": row.kind, "kind_zh": anomalies.TITLES.get(row.kind, row.kind),
        "year": row.year, "status": row.status, "status_zh": C.STATUS_ZH[row.status],
        "resolution": row.resolution, "resolution_zh": C.RESOLUTION_ZH.get(row.resolution or ""),
        "assignee": row.assignee, "due": row.due, "holds": row.holds,
        "opened_at": _aware(row.opened_at), "updated_at": _aware(row.updated_at), "closed_at": _aware(row.closed_at),
        "title": row.title, "message": row.message, "mass_kg": row.mass_kg, "mass_t": kg_to_t_float(row.mass_kg),
        "units": [{"credit_code": u, "name": names[u][2] if u in names else None,
                   "district": names[u][0] if u in names else None,
                   "district_name": cat.region_name(names[u][0]) if u in names else None} for u in row.units],
        "districts": list(row.districts), "waste_code": a.get("waste_code"),
        "manifests": list(a.get("manifests") or []), "ledger_rows": list(a.get("ledger_rows") or []),
        "detail": dict(a.get("detail") or {}),
        "actions": C.allowed_actions(actor.role, named=_named(actor, row), in_district=_in_district(actor, row),
                                     status=_status(row)),
    }
    if events:
        out["events"] = [{"id": e.id, "time": _aware(e.time), "actor": e.actor, "role": e.role, "action": e.action,
                          "action_zh": C.ACTION_ZH.get(e.action, e.action), "from_status": e.from_status,
                          "to_status": e.to_status, "to_status_zh": C.STATUS_ZH.get(e.to_status, e.to_status),
                          "text": e.text, "link": e.link, "detail": e.detail}
                         for e in repo.events(uow.session, int(row.id or 0))]
    return out


def _aware(t: datetime | None) -> datetime | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC))


# --- reads -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseQuery:
    """Filters of the case list (``GET /api/v1/cases``)."""

    year: int
    region: str | None = None
    kind: str | None = None
    status: str | None = None
    unit: str | None = None
    assignee: str | None = None
    opened_from: date | None = None
    opened_to: date | None = None
    page: int = 1
    per_page: int = 50


def _check_query(uow: UnitOfWork, actor: Actor, q: CaseQuery) -> None:
    problems = []
    if q.kind is not None and q.kind not in anomalies.KINDS:
        problems.append(Problem("unknown_kind", f"未知的异常类型 {q.kind}", "unknown kind", field="kind", value=q.kind))
    if q.status is not None and q.status not in C.STATUSES:
        problems.append(Problem("unknown_status", f"未知的案件状态 {q.status}", "unknown status", field="status",
                                value=q.status))
    if q.region is not None and not uow.catalogue.is_region(q.region):
        problems.append(Problem("unknown_region", "未知的区域代码", "unknown region", field="region", value=q.region))
    if not 1990 <= q.year <= 2100:
        problems.append(Problem("bad_year", "年份超出范围", "year out of range", field="year", value=q.year))
    if problems:
        raise InputRejected("查询参数有误 (invalid query)", problems=problems)
    if q.region and q.region != CITY and actor.role == "regulator":
        district = uow.catalogue.parks[q.region].district if q.region in uow.catalogue.parks else q.region
        if not actor.can_view_region(q.region, district):
            raise PermissionDenied("无权查看该区域 (region outside your district)")


def _in_region(uow: UnitOfWork, rows: list[CaseRow], region: str) -> list[CaseRow]:
    """Cases with a unit in the park (by the units' registered parks) or naming the district."""
    if region in uow.catalogue.parks:
        parks = repo.districts_of(uow.session, {u for r in rows for u in r.units})
        return [r for r in rows if any(parks.get(u, ("", None, ""))[1] == region for u in r.units)]
    return [r for r in rows if region in r.districts]


def _opened_on(r: CaseRow) -> date:
    return local_date(_aware(r.opened_at) or _now())


def _narrow(uow: UnitOfWork, rows: list[CaseRow], q: CaseQuery) -> list[CaseRow]:
    """The filters of the query that SQL does not apply: region, unit and the opening days."""
    if q.region and q.region != CITY:
        rows = _in_region(uow, rows, q.region)
    if q.unit:
        cc = normalise_credit_code(q.unit)
        rows = [r for r in rows if cc in r.units]
    if q.opened_from:
        rows = [r for r in rows if _opened_on(r) >= q.opened_from]
    if q.opened_to:
        rows = [r for r in rows if _opened_on(r) <= q.opened_to]
    return rows


def list_cases(*, uow: UnitOfWork, actor: Actor, query: CaseQuery, as_of: datetime | None = None) -> dict[str, Any]:
    """The cases the caller may see, filtered, newest first, paged; with totals per status."""
    with uow:
        _check_query(uow, actor, query)
        sync_cases(uow=uow, year=query.year, as_of=as_of)
        rows = _narrow(uow, [r for r in repo.of_year(uow.session, query.year, kind=query.kind, assignee=query.assignee)
                             if _visible(actor, r)], query)
        counts: dict[str, int] = {s: 0 for s in C.STATUSES}
        for r in rows:
            counts[r.status] += 1
        if query.status:
            rows = [r for r in rows if r.status == query.status]
        rows.sort(key=lambda r: (r.status == "closed", -(r.id or 0)))
        page = rows[(query.page - 1) * query.per_page: query.page * query.per_page]
        return {"year": query.year, "total": len(rows), "page": query.page, "per_page": query.per_page,
                "counts": counts, "items": [case_dict(uow, r, actor) for r in page]}


def get_case(*, uow: UnitOfWork, actor: Actor, case_id: int) -> dict[str, Any]:
    """One case with its thread and what the caller may do; 404 when the caller may not see it."""
    with uow:
        row = repo.get(uow.session, case_id)
        if row is None or not _visible(actor, row):
            raise NotFound(f"案件 {case_id} 不存在 (no such case)", code="unknown_case")
        return case_dict(uow, row, actor, events=True)


def cases_by_key(*, uow: UnitOfWork, year: int, keys: list[str]) -> dict[str, tuple[int, str]]:
    """key → (case id, status), for annotating an anomaly list."""
    with uow:
        return {k: (int(r.id or 0), r.status) for k, r in repo.by_keys(uow.session, keys).items() if r.year == year}


def annotate_anomalies(*, uow: UnitOfWork, year: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each anomaly gains ``case_id`` and ``status`` (``None`` while no case exists yet)."""
    keys = [C.anomaly_key(a, year) for a in items]
    found = cases_by_key(uow=uow, year=year, keys=keys)
    for a, k in zip(items, keys, strict=True):
        cid, st = found.get(k, (None, None))
        a["case_id"], a["status"] = cid, st
    return items


# --- a person's step ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseStep:
    """``POST /cases/{id}/events``: what a person does to a case."""

    action: str
    text: str = ""
    assignee: str | None = None
    due: date | None = None
    link: str | None = None


def _check_step(uow: UnitOfWork, actor: Actor, row: CaseRow, step: CaseStep) -> list[Problem]:
    problems: list[Problem] = []
    if step.action not in C.ACTIONS:
        return [Problem("unknown_action", f"未知的操作 {step.action}", "unknown action", field="action",
                        value=step.action)]
    if step.action in C.NEEDS_TEXT and not step.text.strip():
        problems.append(Problem("required", "请填写说明", "text is required for this action", field="text"))
    if len(step.text) > MAX_TEXT:
        problems.append(Problem("too_long", f"说明不能超过 {MAX_TEXT} 字", "text too long", field="text"))
    if step.action == "assign" and not (step.assignee or "").strip():
        problems.append(Problem("required", "请填写承办人", "assignee is required", field="assignee"))
    if step.assignee is not None and len(step.assignee) > 200:
        problems.append(Problem("too_long", "承办人不能超过 200 字", "assignee too long", field="assignee"))
    if step.due is not None and not date(2000, 1, 1) <= step.due <= date(2100, 12, 31):
        problems.append(Problem("bad_date", "期限超出范围", "due out of range", field="due", value=str(step.due)))
    if step.link:
        problems += _check_link(uow, actor, step.link)
    return problems


def _check_link(uow: UnitOfWork, actor: Actor, link: str) -> list[Problem]:
    """A respond may cite the ledger version (``ledger:<id>``) or manifest (``manifest:<number>``) that answers
    the case; it must exist and be readable by the caller."""
    from . import ledger as ledgers_uc
    from . import manifests as manifests_uc

    kind, _, ref = link.partition(":")
    bad = [Problem("bad_link", "关联对象应为 ledger:<版本号> 或 manifest:<联单编号>，且须可查阅",
                   "link must be ledger:<id> or manifest:<number> that you may read", field="link", value=link)]
    try:
        if kind == "ledger" and ref.isdigit() and len(ref) <= 18:
            ledgers_uc.get_ledger(uow=uow, actor=actor, ledger_id=int(ref), with_rows=False)
            return []
        if kind == "manifest" and is_well_formed_number(ref):
            manifests_uc.get_manifest(uow=uow, actor=actor, number=ref)
            return []
    except (NotFound, PermissionDenied):
        return bad
    return bad


def _allowed_step(actor: Actor, row: CaseRow, step: CaseStep, now: datetime) -> C.Closure:
    """The case after ``step``: 403 if the step is not the caller's to take, 409 if the status does not allow it."""
    if not C.may_take(actor.role, step.action, named=_named(actor, row), in_district=_in_district(actor, row)):
        raise PermissionDenied(f"您无权对该案件执行“{C.ACTION_ZH[step.action]}” (not your step to take)")
    try:
        return C.after_step(step.action, _closure(row), facts=row.facts, at=now)
    except ValueError as e:
        raise Conflict(f"案件当前为“{C.STATUS_ZH[row.status]}”，不能{C.ACTION_ZH[step.action]} ({e})",
                       code="wrong_status") from e


def _step_detail(row: CaseRow, step: CaseStep) -> dict[str, Any]:
    return {k: v for k, v in (("assignee", row.assignee if step.action == "assign" else None),
                              ("due", step.due.isoformat() if step.due else None)) if v}


def add_event(*, uow: UnitOfWork, actor: Actor, case_id: int, step: CaseStep) -> dict[str, Any]:
    """Record a step on a case: 404 if the caller may not see it, 403 if the step is not the caller's to take,
    409 if the case's status does not allow it, 422 for bad fields. Audited; commits."""
    with uow:
        row = repo.get(uow.session, case_id, lock=True)
        if row is None or not _visible(actor, row):
            raise NotFound(f"案件 {case_id} 不存在 (no such case)", code="unknown_case")
        problems = _check_step(uow, actor, row, step)
        if problems:
            raise InputRejected("操作信息有误 (invalid step)", problems=problems)
        now = _now()
        after = _allowed_step(actor, row, step, now)
        prev = row.status
        _set_closure(row, after)
        row.updated_at = now
        if step.action == "assign":
            row.assignee = (step.assignee or "").strip()
        if step.due is not None:
            row.due = step.due
        uow.session.add(row)
        ev = repo.add_event(uow.session, row, time=now, actor=actor.label, role=actor.role,
                            action=step.action, from_status=prev, text=step.text.strip(), link=step.link or None,
                            detail=_step_detail(row, step))
        uow.session.flush()
        uow.audit(actor, f"case.{step.action}", f"case:{row.id}",
                  detail={"event": ev.id, "from": prev, "to": after.status, "text": step.text.strip()[:500],
                          "link": step.link},
                  district=row.districts[0] if len(row.districts) == 1 else None)
        out = case_dict(uow, row, actor, events=True)
        uow.commit()
        return out


# --- an enterprise's to-do -------------------------------------------------------------------------------
def my_todo(*, uow: UnitOfWork, actor: Actor, year: int | None = None,
            as_of: datetime | None = None) -> dict[str, Any]:
    """我的待办: the enterprise's open cases, the months it still owes, and its next ledger deadlines
    (``year``: that year only; default this year and the last)."""
    as_of = as_of or _now()
    today = local_date(as_of)
    years = [year] if year else [today.year - 1, today.year]
    with uow:
        for y in years:
            sync_cases(uow=uow, year=y, as_of=as_of)
        # open cases of any year (an old one stays on the list until it is closed)
        cases = [case_dict(uow, r, actor) for r in repo.not_closed(uow.session, year)
                 if _visible(actor, r)]
        units = []
        for cc, rf, filed, name in repo.units_filing(uow.session, sorted(actor.units) if not actor.sees_all() else None):
            owed = [m for y in years for m in months_owed(y, rf, today) if m not in filed]
            units.append({"credit_code": cc, "name": name, "reports_from": rf, "missing_months": owed,
                          "next": [{"month": m, "deadline": d} for m, d in next_deadlines(rf, filed, today)]})
    return {"today": today, "cases": cases, "units": units}
