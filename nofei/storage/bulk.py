"""Bulk loads: thousands of ledger versions or manifests per transaction (``nofei demo --fast``, benchmarks).

The rows are the ones the per-item repositories write (``ledgerstore`` for a ledger version, the manifest
lifecycle for a manifest), without their per-item bookkeeping, which a load into an empty registry does not
need: a bulk ledger is version 1 of its month, a bulk manifest's steps happened as planned. The 转出/转入
rows go through ``ledgerstore``'s own writer (binary COPY on PostgreSQL, the driver's executemany on SQLite),
and the flow model's summaries and change log through ``flowstore``, in the same transaction. Nothing here
commits: the caller's unit of work does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from nofei.domain.ledger import LedgerDraft, StockLine, TransferLine, TreatmentLine
from nofei.domain.transfer_columns import TransferColumns, row_counts
from nofei.storage import flowstore, ledgerstore
from nofei.storage.tables import (
    AuditRow,
    LedgerFileRow,
    LedgerRow,
    ManifestEventRow,
    ManifestLineRow,
    ManifestRow,
    ManifestSerialRow,
    StockEntryRow,
    TreatmentEntryRow,
    UnitRow,
    table_of,
)

_LEDGER = table_of(LedgerRow)
_MANIFEST = table_of(ManifestRow)
_SERIAL = table_of(ManifestSerialRow)


# --- what a load left behind ------------------------------------------------------------------------
def last_audit_detail(session: Session, action: str) -> dict[str, Any] | None:
    """The detail of the newest audit entry of ``action`` (a load's start or end marker), or None."""
    row = session.execute(select(col(AuditRow.detail)).where(col(AuditRow.action) == action)
                          .order_by(col(AuditRow.seq).desc()).limit(1)).first()
    return dict(row[0]) if row else None


def holds_units(session: Session) -> bool:
    """Whether any unit is registered (a load goes into an empty registry only)."""
    return session.execute(select(col(UnitRow.id)).limit(1)).first() is not None


def first_unit_code(session: Session) -> str | None:
    """The credit code of the first unit registered, or None."""
    return session.execute(select(col(UnitRow.credit_code)).order_by(col(UnitRow.id)).limit(1)).scalar()


# --- ledger versions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BulkLedger:
    """A ledger version to store as version 1 of its month: no file is kept (``sha256`` is the caller's
    digest of the draft). Entries keep the sheet row of their ``ref``; a draft that never was a workbook
    has its entries numbered down each sheet from ``FIRST_ROW``, as the reader would number them."""

    unit_id: int
    draft: LedgerDraft
    sha256: str
    filename: str
    uploaded_by: str
    uploaded_at: datetime
    totals: dict[str, Any]


FIRST_ROW = 2
"""The sheet row of a section's first entry in the template (row 1 holds the headers)."""


def stock_values(ledger_id: int, stocks: Iterable[StockLine]) -> list[dict[str, Any]]:
    """``stock_entry`` rows of a version (the columns ``ledgerstore.complete_version`` writes); an entry
    without a source row is numbered by its place in the sheet."""
    return [{"ledger_id": ledger_id, "row": s.ref.row if s.ref else n, "code": s.code, "stream": s.stream,
             "name": s.name[:500], "open_kg": s.open_kg, "generated_kg": s.generated_kg, "close_kg": s.close_kg,
             "note": s.note[:500], "form": s.form[:20], "harmful_components": s.harmful_components[:500]}
            for n, s in enumerate(stocks, start=FIRST_ROW)]


def treatment_values(ledger_id: int, treatments: Iterable[TreatmentLine]) -> list[dict[str, Any]]:
    """``treatment_entry`` rows of a version (the columns ``ledgerstore.complete_version`` writes); an entry
    without a source row is numbered by its place in the sheet."""
    return [{"ledger_id": ledger_id, "row": t.ref.row if t.ref else n, "code": t.code, "stream": t.stream,
             "method": t.method, "qty_kg": t.qty_kg, "product": t.product[:500], "note": t.note[:500]}
            for n, t in enumerate(treatments, start=FIRST_ROW)]


def transfer_tuples(ledger_id: int, transfers: Sequence[TransferLine], *, iso_days: bool) -> list[tuple[Any, ...]]:
    """``transfer_entry`` rows of a version in ``ledgerstore``'s column order (``TransferColumns``); a row
    without a source row is numbered by its place in its sheet (转出 and 转入 are separate sheets)."""
    cols = transfers if isinstance(transfers, TransferColumns) else TransferColumns(_lines=list(transfers))
    rows = cols.insert_tuples(ledger_id, iso_days=iso_days)
    place = {"out": FIRST_ROW, "in": FIRST_ROW}
    out: list[tuple[Any, ...]] = []
    for r in rows:
        n = place[r[2]]
        place[r[2]] = n + 1
        out.append(r if r[1] is not None else (r[0], n, *r[2:]))
    return out


def insert_ledgers(session: Session, ledgers: Sequence[BulkLedger]) -> list[int]:
    """Store ``ledgers`` (no two of one unit and month, none stored before) with their entries, an empty
    file each and their flow summaries; returns their ids in order."""
    if not ledgers:
        return []
    heads = [{"unit_id": b.unit_id, "month": b.draft.month, "year": b.draft.year, "version": 1, "is_current": True,
              "sha256": b.sha256, "filename": b.filename[:255], "size": 0, "uploaded_at": b.uploaded_at,
              "uploaded_by": b.uploaded_by[:200], "reporter": b.draft.reporter[:200], "phone": b.draft.phone[:64],
              "unit_name": b.draft.unit_name[:200], "row_counts": row_counts(b.draft), "totals": b.totals,
              "warnings": []} for b in ledgers]
    got = session.execute(insert(_LEDGER).returning(_LEDGER.c.unit_id, _LEDGER.c.month, _LEDGER.c.id), heads).all()
    by_key = {(u, m): int(lid) for u, m, lid in got}
    ids = [by_key[(b.unit_id, b.draft.month)] for b in ledgers]
    stocks: list[dict[str, Any]] = []
    treats: list[dict[str, Any]] = []
    for lid, b in zip(ids, ledgers, strict=True):
        stocks += stock_values(lid, b.draft.stocks)
        treats += treatment_values(lid, b.draft.treatments)
    session.execute(insert(table_of(LedgerFileRow)), [{"ledger_id": lid, "content_type": "", "content": b""}
                                                     for lid in ids])
    for table, values in ((StockEntryRow, stocks), (TreatmentEntryRow, treats)):
        if values:
            session.execute(insert(table_of(table)), values)
    pairs = [(lid, b.draft.transfers) for lid, b in zip(ids, ledgers, strict=True) if b.draft.transfers]
    ledgerstore._store_rows(session.connection(), lambda iso_days: (
        transfer_tuples(lid, tr, iso_days=iso_days) for lid, tr in pairs))
    flowstore.summarise_ledgers(session, ids)
    return ids


# --- manifests -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BulkManifestLine:
    waste_code: str
    quantity_kg: int
    planned_method: str | None
    received_kg: int | None = None  # None: not received (yet)
    method: str | None = None
    discrepancy: bool = False


@dataclass(frozen=True, slots=True)
class BulkManifest:
    """A manifest whose steps happened as planned: created and shipped at ``shipped_at``, received at
    ``received_at`` when that is given (status ``received``), else still ``in_transit``."""

    number: str
    shipper_id: int
    receiver_code: str
    carrier_code: str | None
    planned_date: date
    shipped_at: datetime
    vehicle: str
    driver: str
    lines: list[BulkManifestLine] = field(default_factory=list)
    received_at: datetime | None = None
    accepted_on: date | None = None

    @property
    def status(self) -> str:
        return "in_transit" if self.received_at is None else "received"


def reserve_serials(session: Session, wanted: Counter[str]) -> dict[str, int]:
    """Take ``wanted[key]`` manifest serials of each key (``YYYY`` + region prefix) at once: returns the last
    serial used before, the reserved ones follow it. The serial rows end where ``next_number`` continues."""
    before: dict[str, int] = {}
    for key, n in sorted(wanted.items()):
        last = session.execute(select(col(ManifestSerialRow.last)).where(col(ManifestSerialRow.key) == key)).scalar()
        before[key] = int(last or 0)
        if last is None:
            session.execute(insert(_SERIAL).values(key=key, last=n))
        else:
            session.execute(_SERIAL.update().where(_SERIAL.c.key == key).values(last=before[key] + n))
    return before


def insert_manifests(session: Session, manifests: Sequence[BulkManifest], *, actor: str, now: datetime) -> None:
    """Store ``manifests`` (numbers reserved with ``reserve_serials``) with their lines and their create / ship
    (/ receive) events, and note the flow model's change for each year."""
    if not manifests:
        return
    heads = [{"number": m.number, "version": 1, "is_current": True, "shipper_id": m.shipper_id,
              "receiver_code": m.receiver_code, "carrier_code": m.carrier_code, "status": m.status,
              "planned_date": m.planned_date, "shipped_at": m.shipped_at, "received_at": m.received_at,
              "vehicle": m.vehicle, "driver": m.driver, "parent_number": None, "reason": None, "created_at": now,
              "created_by": actor, "updated_at": now, "accepted_on": m.accepted_on} for m in manifests]
    ids: dict[str, int] = dict(session.execute(insert(_MANIFEST).returning(_MANIFEST.c.number, _MANIFEST.c.id), heads).all())
    lines: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for m in manifests:
        mid = ids[m.number]
        lines += [{"manifest_id": mid, "line_no": n, "waste_code": ln.waste_code, "quantity_kg": ln.quantity_kg,
                   "packaging": None, "planned_method": ln.planned_method, "received_kg": ln.received_kg,
                   "method": ln.method, "rejected_kg": None if ln.received_kg is None else 0,
                   "discrepancy": ln.discrepancy} for n, ln in enumerate(m.lines, start=1)]
        steps = [("create", None, "submitted", m.shipped_at), ("ship", "submitted", "in_transit", m.shipped_at)]
        if m.received_at is not None:
            steps.append(("receive", "in_transit", "received", m.received_at))
        events += [{"manifest_id": mid, "time": t, "event_time": t, "actor": actor, "action": a, "from_status": f,
                    "to_status": to, "detail": {"bulk": True}} for a, f, to, t in steps]
    session.execute(insert(table_of(ManifestLineRow)), lines)
    session.execute(insert(table_of(ManifestEventRow)), events)
    flowstore.note_changes(session, [(y, "manifest", None) for y in sorted({m.planned_date.year for m in manifests})])
