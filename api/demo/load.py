"""Put a planned city into a database through the real use cases.

Order: units (``registry.import_units``), 工业增加值 (``registry.put_statistic``), manifests through
their lifecycle (``ledgers.manifests``: create → ship → receive, a few left in transit, one
rejected), then every monthly ledger **written as a workbook, read back and submitted** exactly as an
upload is (``imports.write_ledger_workbook`` → ``imports.read_monthly_ledger`` →
``ledgers.ledger.submit_monthly_ledger``). Writing workbooks is the slow part, so it can run in
worker processes while the main process submits in month order.

``fast=True`` (benchmark-sized cities) skips the workbooks and stores the drafts directly with
``nofei.storage.ledgerstore.insert_ledger_version``, many ledgers per transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from api.demo.city import City, PlannedManifest
from nofei.access import SYSTEM
from nofei.catalogue import CITY, Catalogue
from nofei.domain.ledger import LedgerDraft, stream_totals
from nofei.quantity import kg_to_t_float, kg_to_tonnes
from nofei.storage.tables import AuditRow, UnitRow
from nofei.storage.uow import UnitOfWork

GENERATOR_VERSION = 1
"""Bump when the generator changes what it builds: a database built by another version is not reused."""
MARKER_ACTION = "demo.build"
CST = timezone(timedelta(hours=8), "Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

UowFactory = Callable[[], UnitOfWork]
Echo = Callable[[str], None]


@dataclass
class BuildReport:
    """What a build did and how long each phase took (seconds)."""

    units: int = 0
    ledgers: int = 0
    manifests: int = 0
    warnings: int = 0
    path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    sha256: list[str] = field(default_factory=list)


def marker(uow: UnitOfWork) -> dict[str, Any] | None:
    """The demo this database holds (seed, units, year, generator), or None."""
    row = uow.session.execute(
        select(AuditRow.detail).where(AuditRow.action == MARKER_ACTION).order_by(AuditRow.seq.desc()).limit(1)  # type: ignore[union-attr]
    ).first()
    return dict(row[0]) if row else None


def holds_units(uow: UnitOfWork) -> bool:
    return uow.session.execute(select(UnitRow.id).limit(1)).first() is not None


def spec(city: City) -> dict[str, Any]:
    return {"seed": city.seed, "units": city.size, "year": city.year, "generator": GENERATOR_VERSION,
            "months": city.months}


# --- the real path -----------------------------------------------------------------------------
def _pipeline() -> tuple[Callable[..., bytes], Callable[..., LedgerDraft], Callable[..., dict[str, Any]]]:
    """The upload path's three functions (issue 3). Imported late: ``nofei demo --fast`` needs none."""
    from imports import read_monthly_ledger, write_ledger_workbook
    from ledgers.ledger import submit_monthly_ledger

    return write_ledger_workbook, read_monthly_ledger, submit_monthly_ledger


def workbook_and_read(draft: LedgerDraft, catalogue: Catalogue, today: date) -> tuple[bytes, LedgerDraft]:
    """Write ``draft`` as the clerk's workbook and read it back as an upload would be read.

    Module-level so worker processes can run it."""
    write, read, _ = _pipeline()
    content = write(draft)
    return content, read(content, filename=filename(draft), catalogue=catalogue, today=today)


def _worker(args: tuple[LedgerDraft, date]) -> tuple[bytes, LedgerDraft]:
    draft, today = args
    return workbook_and_read(draft, Catalogue.default(), today)


def filename(draft: LedgerDraft) -> str:
    return f"{draft.credit_code}_{draft.month}.xlsx"


def _read_all(drafts: list[LedgerDraft], catalogue: Catalogue, today: date, jobs: int) -> Iterator[tuple[bytes, LedgerDraft]]:
    """Workbooks written and read back, in the order of ``drafts``; ``jobs`` > 1 uses worker processes."""
    if jobs <= 1:
        for d in drafts:
            yield workbook_and_read(d, catalogue, today)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_worker, [(d, today) for d in drafts], chunksize=16)


# --- manifests -------------------------------------------------------------------------------
def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=CST)


def run_manifests(uow_factory: UowFactory, city: City) -> dict[str, str]:
    """Every planned manifest through its lifecycle; returns planned number → number the registry gave.

    The manifests are created in the order the ledgers cite them, so on an empty database the two
    numbers coincide; the map makes that an observation, not an assumption."""
    from ledgers import manifests as mf

    numbers: dict[str, str] = {}
    for pm in city.manifests:
        lines = [{"waste_code": ln.code, "quantity_t": str(kg_to_tonnes(ln.sent_kg)), "planned_method": ln.method}
                 for ln in pm.lines]
        with uow_factory() as uow:  # one session, three transactions: each use case commits its own step
            made = mf.create_manifest(uow=uow, actor=SYSTEM, data={
                "shipper": pm.shipper, "receiver": pm.receiver, "carrier": pm.carrier,
                "planned_date": pm.shipped, "lines": lines})
            no = made["number"]
            numbers[pm.number] = no
            mf.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={
                "vehicle": _plate(pm), "driver": "驾驶员" + pm.carrier[-3:], "time": _at(pm.shipped, 9)})
            if pm.status == "received" and pm.received is not None:
                mf.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={
                    "time": _at(pm.received, 16),
                    "lines": [{"line_no": i + 1, "received_t": str(kg_to_tonnes(ln.received_kg or 0)),
                               "method": ln.method} for i, ln in enumerate(pm.lines)]})
            elif pm.status == "rejected":
                mf.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={
                    "time": _at(pm.shipped, 15), "reason": pm.reason or "包装破损，拒收退回"})
    return numbers


def _plate(pm: PlannedManifest) -> str:
    return f"青A{sum(map(ord, pm.carrier + pm.shipper)) % 90000 + 10000}"


def renumber(draft: LedgerDraft, numbers: dict[str, str]) -> LedgerDraft:
    """The draft citing the registry's manifest numbers."""
    if not any(t.manifest_no for t in draft.transfers):
        return draft
    return replace(draft, transfers=[
        replace(t, manifest_no=numbers.get(t.manifest_no, t.manifest_no)) if t.manifest_no else t
        for t in draft.transfers])


# --- build -------------------------------------------------------------------------------------
def build(uow_factory: UowFactory, city: City, *, jobs: int = 1, fast: bool = False,
          echo: Echo = lambda _s: None, today: date | None = None) -> BuildReport:
    """Load ``city`` into an empty database; leaves the marker that ``marker`` finds."""
    rep = BuildReport(path="fast" if fast else "import")
    t0 = time.perf_counter()
    from ledgers import registry

    with uow_factory() as uow:
        catalogue = uow.catalogue
        registry.import_units(uow=uow, actor=SYSTEM, items=[u.payload() for u in city.units])
    rep.units = len(city.units)
    for region, value in city.statistics.items():
        with uow_factory() as uow:
            registry.put_statistic(uow=uow, actor=SYSTEM, year=city.year, region=region,
                                   industrial_value_added=value)
    rep.seconds["units"] = time.perf_counter() - t0
    echo(f"  {rep.units} units registered, 工业增加值 set for {len(city.statistics)} regions "
         f"({rep.seconds['units']:.1f} s)")

    t1 = time.perf_counter()
    numbers = run_manifests(uow_factory, city)
    rep.manifests = len(numbers)
    rep.seconds["manifests"] = time.perf_counter() - t1
    echo(f"  {rep.manifests} manifests created, shipped and received or rejected ({rep.seconds['manifests']:.1f} s)")

    t2 = time.perf_counter()
    drafts = [renumber(d, numbers) for d in city.drafts]
    if fast:
        _insert_fast(uow_factory, drafts, catalogue, rep)
    else:
        _submit_all(uow_factory, drafts, catalogue, rep, jobs=jobs, today=today or date.today(), echo=echo)
    rep.seconds["ledgers"] = time.perf_counter() - t2
    echo(f"  {rep.ledgers} monthly ledgers {'stored' if fast else 'written, read and submitted'}, "
         f"{rep.warnings} warnings ({rep.seconds['ledgers']:.1f} s)")

    with uow_factory() as uow:
        uow.audit(SYSTEM, MARKER_ACTION, "demo", detail={**spec(city), "path": rep.path, "ledgers": rep.ledgers,
                                                         "manifests": rep.manifests, "faults": city.faults,
                                                         "enterprise": city.showcase})
        uow.commit()
    rep.seconds["total"] = time.perf_counter() - t0
    return rep


def _submit_all(uow_factory: UowFactory, drafts: list[LedgerDraft], catalogue: Catalogue, rep: BuildReport, *,
                jobs: int, today: date, echo: Echo) -> None:
    _, _, submit = _pipeline()
    step = max(1, len(drafts) // 4)
    for i, (content, read) in enumerate(_read_all(drafts, catalogue, today, jobs), start=1):
        with uow_factory() as uow:
            receipt = submit(uow=uow, actor=SYSTEM, draft=read, content=content, filename=filename(read),
                             content_type=XLSX)
        rep.ledgers += 1
        rep.warnings += len(receipt.get("warnings") or [])
        rep.sha256.append(hashlib.sha256(content).hexdigest())
        if i % step == 0 and i < len(drafts):
            echo(f"    … {i}/{len(drafts)} ledgers")


def draft_digest(draft: LedgerDraft) -> str:
    """A canonical digest of a draft's content (what ``--fast`` stores instead of a file's sha256)."""
    body = {
        "unit": draft.credit_code, "month": draft.month,
        "stocks": [(s.code, s.open_kg, s.generated_kg, s.close_kg) for s in draft.stocks],
        "treatments": [(t.code, t.method, t.qty_kg) for t in draft.treatments],
        "transfers": [(t.direction, t.day.isoformat(), t.code, t.qty_kg, t.counterpart, t.manifest_no, t.carrier,
                       t.planned_method) for t in draft.transfers],
    }
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def receipt_totals(draft: LedgerDraft, catalogue: Catalogue) -> dict[str, dict[str, float]]:
    """The receipt's ``totals`` shape (issue 3): tonnes per stream, for output only."""
    return {s: {f"{k}_t": kg_to_t_float(v) for k, v in t.items()} for s, t in stream_totals(draft, catalogue).items()}


def _insert_fast(uow_factory: UowFactory, drafts: list[LedgerDraft], catalogue: Catalogue,
                 rep: BuildReport, batch: int = 2000) -> None:
    """Benchmark-sized cities: drafts stored straight through the ledger store, ``batch`` per transaction,
    one audit entry per batch. No workbook is kept (the download of such a version has no file)."""
    from nofei.storage.ledgerstore import insert_ledger_version
    from nofei.storage.repo import unit_rows_by_code

    for i in range(0, len(drafts), batch):
        chunk = drafts[i : i + batch]
        with uow_factory() as uow:
            units = unit_rows_by_code(uow.session, {d.credit_code for d in chunk})
            for d in chunk:
                digest = draft_digest(d)
                insert_ledger_version(uow.session, unit=units[d.credit_code], draft=d, sha256=digest, content=b"",
                                      filename=filename(d), content_type="", uploaded_by=SYSTEM.label,
                                      warnings=[], totals=receipt_totals(d, catalogue))
                rep.sha256.append(digest)
            uow.audit(SYSTEM, "ledger.bulk_load", "demo", detail={"ledgers": len(chunk), "from": chunk[0].month,
                                                                  "to": chunk[-1].month}, district=CITY)
            uow.commit()
        rep.ledgers += len(chunk)
