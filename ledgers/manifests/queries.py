"""Reading manifests: one (with its history), lists and counts by status, the line-by-line export, the last
one a unit shipped, the receipt deadline, and the producer's choice of receivers and carriers.

Every read shows only what the caller may see (``nofei.storage.manifests.may_read`` / ``visible_clause``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.units import Permit, normalise_credit_code
from nofei.errors import InputRejected, NotFound, PermissionDenied
from nofei.storage import manifests as repo
from nofei.storage.manifests import ExportLine, ManifestFilter
from nofei.storage.repo import unit_rows_by_code
from nofei.storage.tables import PermitRow, UnitRow
from nofei.storage.uow import UnitOfWork

from .common import as_aware, local_date, readable_current, view
from .common import problem as _p
from .results import CarrierOption, Manifest, ManifestPage, ReceiverOption


def get(*, uow: UnitOfWork, actor: Actor, number: str) -> Manifest:
    """One manifest (current version) with its history, versions and follow-ons; 404 if the caller may not see it."""
    with uow:
        return view(uow, readable_current(uow, actor, number), history=True)


def _normalised(f: ManifestFilter) -> ManifestFilter:
    return f if not f.unit else ManifestFilter(f.status, normalise_credit_code(f.unit), f.code, f.date_from,
                                               f.date_to, f.region, f.party)


def search(*, uow: UnitOfWork, actor: Actor, filters: ManifestFilter = ManifestFilter(), page: int = 1,
           per_page: int = 50) -> ManifestPage:
    """Current manifests the caller may see, filtered (planned date range, either end in ``region``; ``party``:
    where an enterprise's units are the shipper, carrier or receiver), paged."""
    with uow:
        rows, total = repo.search(uow.session, actor, _normalised(filters), city=CITY, page=page, per_page=per_page)
        return ManifestPage(tuple(view(uow, r) for r in rows), total)


def status_counts(*, uow: UnitOfWork, actor: Actor, party: str | None = None) -> dict[str, int]:
    """How many current manifests the caller sees in each status (``party``: only where it is that party)."""
    with uow:
        got = repo.status_counts(uow.session, actor, ManifestFilter(party=party), city=CITY)
    return {s: got.get(s, 0) for s in M.STATUSES}


EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "联单编号"), ("version", "版本"), ("status", "状态"), ("shipper", "移出单位统一社会信用代码"),
    ("shipper_name", "移出单位名称"), ("receiver", "接受单位统一社会信用代码"), ("carrier", "承运单位统一社会信用代码"),
    ("planned_date", "计划转移日期"), ("shipped_at", "运输时间"), ("received_at", "接收时间"), ("vehicle", "车牌号"),
    ("driver", "驾驶员"), ("line_no", "行号"), ("waste_code", "废物代码"), ("quantity_t", "转移量（吨）"),
    ("received_t", "接收量（吨）"), ("rejected_t", "拒收量（吨）"), ("method", "利用处置方式"),
    ("discrepancy", "差异"), ("parent_number", "原联单编号"),
)


def _iso(t: datetime | None) -> str:
    return as_aware(t).isoformat() if t else ""


def _tonnes(kg: int | None) -> str:
    return "" if kg is None else str(Decimal(kg) / 1000)


def _export_row(e: ExportLine) -> dict[str, str | int]:
    m, ln = e.manifest, e.line
    return {
        "number": m.number, "version": m.version, "status": m.status, "shipper": e.shipper_code,
        "shipper_name": e.shipper_name, "receiver": m.receiver_code, "carrier": m.carrier_code or "",
        "planned_date": m.planned_date.isoformat(), "shipped_at": _iso(m.shipped_at),
        "received_at": _iso(m.received_at), "vehicle": m.vehicle or "", "driver": m.driver or "",
        "line_no": ln.line_no, "waste_code": ln.waste_code, "quantity_t": _tonnes(ln.quantity_kg),
        "received_t": _tonnes(ln.received_kg), "rejected_t": _tonnes(ln.rejected_kg), "method": ln.method or "",
        "discrepancy": "是" if ln.discrepancy else "", "parent_number": m.parent_number or "",
    }


def export_rows(*, uow: UnitOfWork, actor: Actor, filters: ManifestFilter = ManifestFilter(), limit: int = 200_000
                ) -> list[dict[str, str | int]]:
    """One flat row per manifest line (keys: ``EXPORT_COLUMNS``), for CSV/XLSX export (same filters and
    visibility as the list)."""
    with uow:
        return [_export_row(e) for e in repo.export_lines(uow.session, actor, _normalised(filters), city=CITY,
                                                          limit=limit)]


def receipt_late(shipped_at: datetime, received_at: datetime | None, as_of: datetime, cal: M.WorkCalendar,
                 days: int) -> tuple[bool, date]:
    """Whether receipt was (or is still) not confirmed within ``days`` working days of shipping, and the deadline."""
    due = M.receipt_deadline(local_date(shipped_at), cal, days)
    seen = received_at if received_at is not None else as_of
    return local_date(seen) > due, due


# --- the producer's pages: its unit, the last manifest, receivers, carriers ---------------------------------
def own_shipper(uow: UnitOfWork, actor: Actor, code: str | None) -> UnitRow:
    """The unit an enterprise ships for (its single unit when none is named); admins name any."""
    cc = normalise_credit_code(code) if code else (next(iter(actor.units)) if len(actor.units) == 1 else None)
    if cc is None:
        raise InputRejected("请指定移出单位", problems=[_p("shipper", "missing_shipper", "请指定移出单位", "name the shipper")])
    if not actor.can_submit_for(cc):
        raise PermissionDenied("只能为本单位创建联单 (not one of your units)", code="not_your_unit")
    row = unit_rows_by_code(uow.session, [cc]).get(cc)
    if row is None:
        raise NotFound(f"单位 {cc} 不存在 (no such unit)", code="unknown_unit")
    return row


def last_manifest(*, uow: UnitOfWork, actor: Actor, shipper: str | None = None, receiver: str | None = None
                  ) -> Manifest | None:
    """The newest current manifest the caller's unit shipped (to ``receiver`` when given): "copy last manifest"."""
    with uow:
        sh = own_shipper(uow, actor, shipper)
        row = repo.last_shipped(uow.session, sh.id or 0, normalise_credit_code(receiver) if receiver else None)
        return None if row is None else view(uow, row)


def _valid_on(p: PermitRow, on: date) -> bool:
    return not ((p.valid_from and on < p.valid_from) or (p.valid_to and on > p.valid_to))


def _offers(p: PermitRow, code: str | None, on: date | None) -> bool:
    """Whether a permit lets its unit receive ``code`` (valid on ``on``); any code when none is asked for."""
    if code is not None:
        return Permit(p.number, tuple(p.waste_codes), tuple(p.methods), p.capacity_kg, p.valid_from,
                      p.valid_to).covers(code, None, on)
    return on is None or _valid_on(p, on)


def receivers_for(*, uow: UnitOfWork, code: str | None, q: str | None = None, on: date | None = None,
                  limit: int = 50) -> list[ReceiverOption]:
    """Registered units whose permit (valid on ``on``) covers the waste code, by name or credit code search.

    The registry of licensed receivers is public information (a producer must check the receiver's licence,
    第十条), so any signed-in enterprise may search it; only name, code, district and the covering permit are shown."""
    with uow:
        chk = uow.catalogue.classify(code) if code else None
        wc = chk.code if chk is not None and not chk.error else None
        hits: dict[str, tuple[UnitRow, list[str], set[str]]] = {}
        for u, p in repo.units_with_permits(uow.session, q):
            if _offers(p, wc, on):
                _u, permits, methods = hits.setdefault(u.credit_code, (u, [], set()))
                permits.append(p.number)
                methods.update(p.methods)
    return [ReceiverOption(u.credit_code, u.name, u.district, tuple(ps), tuple(sorted(ms)))
            for u, ps, ms in list(hits.values())[:limit]]


def carriers(*, uow: UnitOfWork) -> list[CarrierOption]:
    """Registered units with the carrier role (承运人), for the producer's choice (name and code only)."""
    with uow:
        return [CarrierOption(u.credit_code, u.name, u.district) for u in repo.units_by_name(uow.session)
                if "carrier" in (u.roles or [])]
