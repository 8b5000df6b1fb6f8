"""Put a planned city into a database through the real use cases.

Order: units (``registry.import_units``), 工业增加值 (``registry.put_statistic``), manifests through
their lifecycle (``ledgers.manifests``: create → ship → receive, a few left in transit, one
rejected), then every monthly ledger **written as a workbook, read back and submitted** exactly as an
upload is (``imports.write_ledger_workbook`` → ``imports.read_monthly_ledger`` →
``ledgers.ledger.submit_monthly_ledger``). Writing workbooks is the slow part, so it can run in
worker processes while the main process submits in month order.

``fast=True`` (benchmark-sized cities) skips the workbooks and the per-step use cases: the drafts and the
manifests are stored with bulk Core inserts into the same tables, thousands per transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from api.demo.city import City, PlannedManifest
from imports import XLSX_MIME
from nofei.access import SYSTEM
from nofei.catalogue import CITY, Catalogue
from nofei.domain import manifests as M  # noqa: N812
from nofei.domain.calendar import CST
from nofei.domain.ledger import LedgerDraft, stream_totals
from nofei.quantity import kg_to_tonnes
from nofei.storage import bulk
from nofei.storage.repo import unit_rows_by_code
from nofei.storage.uow import UnitOfWork

GENERATOR_VERSION = 2
"""Bump when the generator changes what it builds: a database built by another version is not reused."""
MARKER_ACTION = "demo.build"
START_ACTION = "demo.start"  # written first: a database with a start and no build marker was interrupted

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


def marker(uow: UnitOfWork, action: str = MARKER_ACTION) -> dict[str, Any] | None:
    """The demo this database holds (seed, units, year, generator), or None; ``START_ACTION`` for the one
    a build began."""
    return bulk.last_audit_detail(uow.session, action)


def holds_units(uow: UnitOfWork) -> bool:
    return bulk.holds_units(uow.session)


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
    """Write ``draft`` as the clerk's workbook (saved at ``saved_at``: the same seed gives byte-identical
    files, so duplicate detection works) and read it back as an upload would be read.

    Module-level so worker processes can run it."""
    write, read, _ = _pipeline()
    content = write(draft, catalogue, saved_at=saved_at(draft))
    return content, read(content, filename=filename(draft), catalogue=catalogue, today=today)


def saved_at(draft: LedgerDraft) -> datetime:
    """When the demo's clerk saves a month's workbook: the 5th of the following month, 10:00."""
    y, m = int(draft.month[:4]), int(draft.month[5:7])
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return datetime(y, m, 5, 10, 0)


def _worker(args: tuple[LedgerDraft, date]) -> tuple[bytes, LedgerDraft]:
    draft, today = args
    return workbook_and_read(draft, Catalogue.default(), today)


def filename(draft: LedgerDraft) -> str:
    return f"{draft.credit_code}_{draft.month}.xlsx"


# --- manifests -------------------------------------------------------------------------------
def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=CST)


def run_manifests(uow_factory: UowFactory, manifests: list[PlannedManifest]) -> dict[str, str]:
    """Every planned manifest through its lifecycle; returns planned number → number the registry gave.

    The manifests are created in the order the ledgers cite them, so on an empty database the two
    numbers coincide; the map makes that an observation, not an assumption."""
    from ledgers import manifests as mf

    numbers: dict[str, str] = {}
    if not manifests:
        return numbers
    with uow_factory() as uow:  # one session; every step is its own transaction (each use case commits)
        for pm in manifests:
            lines = [{"waste_code": ln.code, "quantity_t": str(kg_to_tonnes(ln.sent_kg)),
                      "planned_method": ln.method} for ln in pm.lines]
            made = mf.create_manifest(uow=uow, actor=SYSTEM, data={
                "shipper": pm.shipper, "receiver": pm.receiver, "carrier": pm.carrier,
                "planned_date": pm.shipped, "lines": lines})
            no = made["number"]
            numbers[pm.number] = no
            # the simulated parties record each step when it happens (entered_at = the step's time)
            mf.ship_manifest(uow=uow, actor=SYSTEM, number=no, data={
                "vehicle": _plate(pm), "driver": "驾驶员" + pm.carrier[-3:], "time": _at(pm.shipped, 9)},
                entered_at=_at(pm.shipped, 9))
            if pm.status == "received" and pm.received is not None:
                mf.receive_manifest(uow=uow, actor=SYSTEM, number=no, data={
                    "time": _at(pm.received, 16),
                    "lines": [{"line_no": i + 1, "received_t": str(kg_to_tonnes(ln.received_kg or 0)),
                               "method": ln.method} for i, ln in enumerate(pm.lines)]},
                    entered_at=_at(pm.received, 16))
            elif pm.status == "rejected":
                mf.reject_manifest(uow=uow, actor=SYSTEM, number=no, data={
                    "time": _at(pm.shipped, 15), "reason": pm.reason or "包装破损，拒收退回"},
                    entered_at=_at(pm.shipped, 15))
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
def build(uow_factory: UowFactory, city: City, *, jobs: int = 0, fast: bool = False,
          echo: Echo = lambda _s: None, today: date | None = None) -> BuildReport:
    """Load ``city`` into an empty database; leaves the marker that ``marker`` finds.

    ``jobs`` worker processes write the workbooks (0: in this process). The main process's manifests and
    uploads are the critical path, so one core should be left to it."""
    rep = BuildReport(path="fast" if fast else "import")
    t0 = time.perf_counter()
    from ledgers import registry

    with uow_factory() as uow:
        uow.audit(SYSTEM, START_ACTION, "demo", detail=spec(city))
        uow.commit()
    with uow_factory() as uow:
        catalogue = uow.catalogue
        registry.import_units(uow=uow, actor=SYSTEM, items=[{**u.payload(), "reports_from": f"{city.year}-01"}
                                                             for u in city.units])
    rep.units = len(city.units)
    for region, value in city.statistics.items():
        with uow_factory() as uow:
            registry.put_statistic(uow=uow, actor=SYSTEM, year=city.year, region=region,
                                   industrial_value_added=value)
    for region, count in city.medical_institutions.items():
        with uow_factory() as uow:
            registry.put_statistic(uow=uow, actor=SYSTEM, year=city.year, region=region, medical_institutions=count)
    rep.seconds["units"] = time.perf_counter() - t0
    echo(f"  {rep.units} units registered, 工业增加值 set for {len(city.statistics)} regions "
         f"({rep.seconds['units']:.1f} s)")

    t1 = time.perf_counter()
    if fast:
        numbers = _manifests_fast(uow_factory, [pm for pm in city.manifests if pm.status != "rejected"])
        numbers.update(run_manifests(uow_factory, [pm for pm in city.manifests if pm.status == "rejected"]))
        rep.seconds["manifests"] = time.perf_counter() - t1
        _insert_fast(uow_factory, [renumber(d, numbers) for d in city.drafts], catalogue, rep)
    else:
        numbers = _months_pipelined(uow_factory, city, catalogue, rep, jobs=jobs, today=today or date.today(),
                                    echo=echo)
    rep.manifests = len(numbers)
    rep.seconds["ledgers"] = time.perf_counter() - t1
    echo(f"  {rep.manifests} manifests through their lifecycle, {rep.ledgers} monthly ledgers "
         f"{'stored' if fast else 'written, read and submitted'} with {rep.warnings} warnings "
         f"({rep.seconds['ledgers']:.1f} s)")

    with uow_factory() as uow:
        uow.audit(SYSTEM, MARKER_ACTION, "demo", detail={**spec(city), "path": rep.path, "ledgers": rep.ledgers,
                                                         "manifests": rep.manifests, "faults": city.faults,
                                                         "enterprise": city.showcase})
        uow.commit()
    rep.seconds["total"] = time.perf_counter() - t0
    return rep


class _Months:
    """The import path, month by month: the month's manifests (they give the numbers the ledgers cite), then
    its workbooks are written by the pool while the main process submits the previous month's."""

    def __init__(self, uow_factory: UowFactory, city: City, catalogue: Catalogue, rep: BuildReport, *,
                 jobs: int, today: date) -> None:
        self.uow_factory, self.catalogue, self.rep, self.today = uow_factory, catalogue, rep, today
        self.submit = _pipeline()[2]
        self.cited = {t.manifest_no for d in city.drafts for t in d.transfers if t.manifest_no}
        self.by_month: dict[str, list[PlannedManifest]] = {}
        for pm in city.manifests:
            if pm.number in self.cited:
                self.by_month.setdefault(f"{pm.shipped:%Y-%m}", []).append(pm)
        self.drafts_by_month: dict[str, list[LedgerDraft]] = {}
        for d in city.drafts:
            self.drafts_by_month.setdefault(d.month, []).append(d)
        self.numbers: dict[str, str] = {}
        self.pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 0 else None
        self.spent: dict[str, float] = defaultdict(float)  # where the main process's time goes

    def submit_month(self, results: list[Any]) -> None:
        """Submit a month's workbooks (futures of the pool, or (content, draft) pairs) in order."""
        if not results:
            return
        with self.uow_factory() as uow:  # one session for the month; every upload is still its own transaction
            for res in results:
                tw = time.perf_counter()
                content, read = res.result() if self.pool is not None else res
                ts = time.perf_counter()
                self.spent["waiting for workbooks"] += ts - tw
                receipt = self.submit(uow=uow, actor=SYSTEM, draft=read, content=content, filename=filename(read),
                                      content_type=XLSX_MIME)
                self.rep.ledgers += 1
                self.rep.warnings += len(receipt.get("warnings") or [])
                self.rep.sha256.append(hashlib.sha256(content).hexdigest())
                self.spent["submitting"] += time.perf_counter() - ts

    def month(self, month: str, drafts: list[LedgerDraft], pending: list[Any]) -> list[Any]:
        """One month's manifests and workbooks; returns what is still being written (the pool's futures)."""
        tm = time.perf_counter()
        self.numbers.update(run_manifests(self.uow_factory, self.by_month.pop(month, [])))
        self.spent["manifests"] += time.perf_counter() - tm
        ready = [renumber(d, self.numbers) for d in drafts]
        if self.pool is not None:
            current: list[Any] = [self.pool.submit(_worker, (d, self.today)) for d in ready]
            self.submit_month(pending)
            return current
        tw = time.perf_counter()
        done = [workbook_and_read(d, self.catalogue, self.today) for d in ready]
        self.spent["writing and reading workbooks"] += time.perf_counter() - tw
        self.submit_month(done)
        return []

    def run(self, city: City, echo: Echo) -> dict[str, str]:
        try:
            pending: list[Any] = []
            for month, drafts in self.drafts_by_month.items():
                pending = self.month(month, drafts, pending)
                echo(f"    … {month}: {self.rep.ledgers + len(pending)} ledgers, {len(self.numbers)} manifests")
            self.submit_month(pending)
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
        echo("  main process: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.spent.items()))
        self.rep.seconds.update({f"main: {k}": v for k, v in self.spent.items()})
        assert not self.by_month, f"manifests of months without ledgers: {sorted(self.by_month)}"
        rest = [pm for pm in city.manifests if pm.number not in self.cited]  # e.g. the rejected shipment
        self.numbers.update(run_manifests(self.uow_factory, rest))
        return self.numbers


def _months_pipelined(uow_factory: UowFactory, city: City, catalogue: Catalogue, rep: BuildReport, *,
                      jobs: int, today: date, echo: Echo) -> dict[str, str]:
    """Every month through the upload path (``_Months``); returns planned → registry manifest numbers."""
    return _Months(uow_factory, city, catalogue, rep, jobs=jobs, today=today).run(city, echo)


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


def _insert_fast(uow_factory: UowFactory, drafts: list[LedgerDraft], catalogue: Catalogue,
                 rep: BuildReport, batch: int = 5000) -> None:
    """Benchmark-sized cities: drafts stored as version 1 by ``nofei.storage.bulk``, ``batch`` ledgers per
    transaction and one audit entry per batch (the database is empty). No workbook is kept: the stored file
    of such a version is empty and its sha256 is a digest of the draft (``draft_digest``)."""
    now = datetime.now(CST)
    for i in range(0, len(drafts), batch):
        chunk = drafts[i : i + batch]
        with uow_factory() as uow:
            units = {cc: int(u.id or 0) for cc, u in unit_rows_by_code(uow.session, {d.credit_code for d in chunk}).items()}
            digests = [draft_digest(d) for d in chunk]
            bulk.insert_ledgers(uow.session, [
                bulk.BulkLedger(unit_id=units[d.credit_code], draft=d, sha256=h, filename=filename(d),
                                uploaded_by=SYSTEM.label, uploaded_at=now, totals=stream_totals(d, catalogue))
                for d, h in zip(chunk, digests, strict=True)])
            uow.audit(SYSTEM, "ledger.bulk_load", "demo", detail={"ledgers": len(chunk), "from": chunk[0].month,
                                                                  "to": chunk[-1].month}, district=CITY)
            uow.commit()
        rep.ledgers += len(chunk)
        rep.sha256 += digests


def _bulk_manifest(pm: PlannedManifest, shipper_id: int, number: str) -> bulk.BulkManifest:
    """A planned received or in-transit manifest as its steps leave it (each recorded when it happened:
    accepted the day it arrived)."""
    received = pm.status == "received" and pm.received is not None
    lines = [bulk.BulkManifestLine(ln.code, ln.sent_kg, ln.method) for ln in pm.lines]
    if received:
        lines = [replace(bl, received_kg=ln.received_kg, method=ln.method,
                         discrepancy=M.is_discrepancy(ln.sent_kg, ln.received_kg))
                 if ln.received_kg is not None else bl for bl, ln in zip(lines, pm.lines, strict=True)]
    return bulk.BulkManifest(
        number=number, shipper_id=shipper_id, receiver_code=pm.receiver, carrier_code=pm.carrier,
        planned_date=pm.shipped, shipped_at=_at(pm.shipped, 9), vehicle=_plate(pm),
        driver="驾驶员" + pm.carrier[-3:], lines=lines,
        received_at=_at(pm.received, 16) if received and pm.received else None,
        accepted_on=pm.received if received else None)


def _manifests_fast(uow_factory: UowFactory, manifests: list[PlannedManifest], batch: int = 5000) -> dict[str, str]:
    """Benchmark-sized cities: manifests (with their lines and history) stored by ``nofei.storage.bulk``,
    numbered as the registry numbers them (``ledgers.manifests.next_number``: the serials are reserved in
    the same rows), one audit entry per batch. Received and in-transit manifests only; other steps go
    through the use cases."""
    numbers: dict[str, str] = {}
    now = datetime.now(CST)
    for i in range(0, len(manifests), batch):
        chunk = manifests[i : i + batch]
        with uow_factory() as uow:
            units = unit_rows_by_code(uow.session, {pm.shipper for pm in chunk})
            keys = [(pm.shipped.year, M.region_prefix(units[pm.shipper].district)) for pm in chunk]
            serial = bulk.reserve_serials(uow.session, Counter(f"{y:04d}{p}" for y, p in keys))
            made = []
            for pm, (year, prefix) in zip(chunk, keys, strict=True):
                serial[f"{year:04d}{prefix}"] += 1
                numbers[pm.number] = M.format_number(year, prefix, serial[f"{year:04d}{prefix}"])
                made.append(_bulk_manifest(pm, int(units[pm.shipper].id or 0), numbers[pm.number]))
            bulk.insert_manifests(uow.session, made, actor=SYSTEM.label, now=now)
            uow.audit(SYSTEM, "manifest.bulk_load", "demo", detail={"manifests": len(chunk)}, district=CITY)
            uow.commit()
    return numbers
