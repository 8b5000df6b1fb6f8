"""Monthly ledger use cases: accept a read ``LedgerDraft`` as a new version, and read versions back.

The workbook is read by ``imports`` (the API and CLI pass the draft in); this module checks what
needs the database (registered units, permissions, receivers, permits, continuity) and stores the
version in one transaction with its audit entry (ledger-workbook.md, "Outcome of an upload").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.domain.ledger import SHEET_COVER, SHEET_IN, SHEET_OUT, SHEET_STOCK, LedgerDraft, stream_totals
from nofei.domain.manifests import is_discrepancy, is_well_formed_number
from nofei.domain.transfer_columns import TransferBlock, TransferColumns, row_counts, summarised
from nofei.domain.units import month_days, normalise_credit_code
from nofei.errors import LedgerRejected, NotFound, PermissionDenied
from nofei.problems import Problem, SourceRef
from nofei.quantity import kg_to_t_float
from nofei.storage import ledgerstore as store
from nofei.storage.repo import (
    find_unit_row,
    move_reports_from_back,
    permits_by_unit,
    unit_ids_of,
    unit_rows_by_code,
)
from nofei.storage.tables import LedgerRow, UnitRow
from nofei.storage.uow import UnitOfWork

_TOTAL_KEYS = ("generated", "utilised", "disposed", "transferred_out", "received")
_MAX_WARNINGS = 1000


def _receipt(row: LedgerRow | None, unit: UnitRow, *, month: str, version: int, duplicate: bool,
             rows: dict[str, int], totals_kg: dict[str, dict[str, int]], warnings: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id if row is not None else None,
        "unit": unit.credit_code,
        "month": month,
        "version": version,
        "duplicate": duplicate,
        "rows": rows,
        "totals": totals_t(totals_kg),
        "warnings": warnings,
    }


def totals_t(totals_kg: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Stored totals (kg) → the receipt's tonnes: ``{stream: {generated_t, …, received_t}}``."""
    return {s: {f"{k}_t": kg_to_t_float(int(v.get(k, 0))) for k in _TOTAL_KEYS} for s, v in totals_kg.items()}


def receipt_of(row: LedgerRow, unit: UnitRow, *, duplicate: bool = False) -> dict[str, Any]:
    return _receipt(row, unit, month=row.month, version=row.version, duplicate=duplicate,
                    rows=dict(row.row_counts), totals_kg=dict(row.totals), warnings=list(row.warnings))


def _cover_ref(draft: LedgerDraft, label: str) -> SourceRef:
    return draft.cover_refs.get(label) or SourceRef(SHEET_COVER, None, "B", label)


def _warn(ref: SourceRef | None, code: str, zh: str, en: str, value: Any = None) -> Problem:
    return Problem.at(ref, code, zh, en, value=value, severity="warning")


def _ref_with(ref: SourceRef | None, sheet: str, column: str | None, header: str) -> SourceRef:
    return SourceRef(ref.sheet if ref else sheet, ref.row if ref else None, column, header)


def _letters_from(draft: LedgerDraft) -> dict[str, dict[str, str]]:
    """Column letters of the headers the reader found (``cover_refs["转出/废物代码"]``)."""
    out: dict[str, dict[str, str]] = {}
    for key, ref in draft.cover_refs.items():
        if "/" in key and ref.column and ref.header:
            out.setdefault(ref.sheet, {})[ref.header] = ref.column
    return out


@dataclass
class UploadStream:
    """A version begun before its workbook is fully read, whose 转出/转入 rows a ``TransferWriter`` stores
    chunk by chunk as the reader checks them (the reader's ``TransferSink``; issue 3, B1). It lives inside
    the caller's unit of work: ``submit_monthly_ledger(stream=…)`` completes it, an exception rolls it back."""

    unit_id: int
    month: str
    sha256: str
    row: LedgerRow
    writer: store.TransferWriter

    def put(self, block: TransferBlock) -> None:
        self.writer.put(block)

    def abort(self) -> None:
        """The upload was rejected: stop writing (the caller's unit of work then rolls everything back)."""
        self.writer.abort()


def open_upload_stream(*, uow: UnitOfWork, actor: Actor, cover: LedgerDraft, content: bytes, filename: str,
                       content_type: str = "") -> UploadStream | None:
    """Begin the next version of (unit, month) from a read cover and start writing its transfer rows as they
    come, or None when the upload cannot be stored as it is (regulator, unknown or foreign unit, a
    byte-identical re-upload): ``submit_monthly_ledger`` then answers it on the ordinary path with the error
    or the duplicate receipt. Takes the same unit lock as ``submit_monthly_ledger``."""
    if actor.role == "regulator" or store.TRANSFER_INSERT != "auto" or not cover.credit_code or not cover.month:
        return None
    session = uow.session
    unit = find_unit_row(uow.session, normalise_credit_code(cover.credit_code))
    if unit is None or not actor.can_submit_for(unit.credit_code):
        return None
    sha = hashlib.sha256(content).hexdigest()
    store.lock_unit(session, int(unit.id or 0))  # before the duplicate check, or two identical uploads both pass it
    if store.find_by_sha(session, int(unit.id or 0), cover.month, sha) is not None:
        return None
    row = store.begin_version(session, unit=unit, draft=cover, sha256=sha, size=len(content), filename=filename,
                              uploaded_by=actor.label)
    store.insert_file(session, int(row.id or 0), content, content_type)  # while the connection is idle anyway
    return UploadStream(int(unit.id or 0), cover.month, sha, row,
                        store.TransferWriter(session, int(row.id or 0)))


def _unit_submitted_for(uow: UnitOfWork, actor: Actor, draft: LedgerDraft) -> UnitRow:
    """The registered unit of the cover's credit code, if the actor may submit for it: an enterprise naming a
    unit not its own is refused (403) before it learns whether that unit is registered; an unknown unit is
    ``unknown_unit`` pinned to the cover cell (422)."""
    cc = draft.credit_code
    unit = find_unit_row(uow.session, normalise_credit_code(cc))
    if unit is None:
        if actor.role == "enterprise" and cc not in actor.units:
            raise PermissionDenied(f"无权为单位 {cc} 提交台账 (not your unit)")
        raise LedgerRejected("单位未注册 (unit not registered)", problems=[Problem.at(
            _cover_ref(draft, "统一社会信用代码"), "unknown_unit", f"统一社会信用代码 {cc} 不是已注册的单位",
            f"{cc} is not a registered unit", value=cc)])
    if not actor.can_submit_for(unit.credit_code):
        raise PermissionDenied(f"无权为单位 {cc} 提交台账 (an enterprise submits only for its own units)")
    return unit


def _check_stream(stream: UploadStream, unit: UnitRow, draft: LedgerDraft, sha: str, written: int,
                  dry_run: bool) -> None:
    """A begun version must be the one submitted (same unit, month, bytes and transfer rows), never a dry run."""
    if dry_run or (stream.unit_id, stream.month, stream.sha256, written) != (unit.id, draft.month, sha,
                                                                              len(draft.transfers)):
        raise RuntimeError("the upload stream does not match the ledger submitted")


def _duplicate(uow: UnitOfWork, unit: UnitRow, month: str, sha: str, *, dry_run: bool) -> LedgerRow | None:
    """The current version when it is byte-identical; checked under the unit lock the insert then holds, so
    two identical uploads cannot both pass it (issue 17 item 7)."""
    if not dry_run:
        store.lock_unit(uow.session, int(unit.id or 0))
    return store.find_by_sha(uow.session, int(unit.id or 0), month, sha)


def _warnings(uow: UnitOfWork, unit: UnitRow, draft: LedgerDraft, letters: dict[str, dict[str, str]]) -> list[Problem]:
    """The reader's warnings (without a small clinic's exempt HW01 numbers) and those that need the database:
    registered name, counterparts and their permits, continuity, cited manifests; at most ``_MAX_WARNINGS``."""
    warnings = list(draft.warnings)
    if unit.small_clinic:
        warnings = _without_clinic_exempt(uow, draft, warnings)
    if draft.unit_name and draft.unit_name.strip() != unit.name.strip():
        warnings.append(_warn(_cover_ref(draft, "单位名称"), "name_mismatch",
                              f"单位名称与登记名称“{unit.name}”不一致", f"the name differs from the registered name {unit.name!r}",
                              draft.unit_name))
    warnings.extend(_counterpart_warnings(uow, draft, letters))
    warnings.extend(_continuity_warnings(uow, unit, draft, letters))
    warnings.extend(manifest_warnings(uow, unit, draft, letters))
    return warnings[:_MAX_WARNINGS]


@dataclass(frozen=True)
class _Upload:
    """The uploaded file as received."""

    content: bytes
    filename: str
    content_type: str
    sha256: str


def _store_version(uow: UnitOfWork, actor: Actor, unit: UnitRow, draft: LedgerDraft, up: _Upload,
                   stream: UploadStream | None, warnings: list[Problem], totals: dict[str, dict[str, int]],
                   rows: dict[str, int]) -> LedgerRow:
    """Store the version (completing a streamed one), move the unit's ``reports_from`` back and audit it."""
    if stream is not None:
        row = stream.row
        store.complete_version(uow.session, row, draft=draft, content=up.content, content_type=up.content_type,
                               warnings=warnings, totals=totals, streamed=True, edges=stream.writer.edges)
    else:
        row = store.insert_ledger_version(
            uow.session, unit=unit, draft=draft, sha256=up.sha256, content=up.content, filename=up.filename,
            content_type=up.content_type, uploaded_by=actor.label, warnings=warnings, totals=totals,
        )
    move_reports_from_back(uow.session, int(unit.id or 0), row.month)
    uow.audit(actor, "ledger.submit", f"ledger:{row.id}", district=unit.district,
              detail={"unit": unit.credit_code, "month": draft.month, "version": row.version, "sha256": up.sha256,
                      "rows": rows, "warnings": len(warnings), "filename": up.filename[:255]})
    return row


def submit_monthly_ledger(*, uow: UnitOfWork, actor: Actor, draft: LedgerDraft, content: bytes, filename: str,
                          content_type: str = "", dry_run: bool = False,
                          column_letters: dict[str, dict[str, str]] | None = None,
                          stream: UploadStream | None = None) -> dict[str, Any]:
    """Accept ``draft`` as the next version of (unit, month) and return the receipt.

    Regulators submit nothing and an enterprise only for its own units (PermissionDenied → 403); the
    unit must be registered (``unknown_unit`` pinned to the cover cell, 422). A byte-identical
    re-upload of the current version returns that version's receipt with ``duplicate: true`` and
    stores nothing. Warnings: registered name differs, unregistered receiver, permit not covering an
    HW code or method, opening stock ≠ last month's close. ``column_letters`` (sheet → header → letter,
    from the reader) lets warnings name their cells. ``stream``: the version was begun by
    ``open_upload_stream`` in this unit of work and its transfer rows are written already.
    """
    if actor.role == "regulator":
        raise PermissionDenied("监管部门不能提交台账 (regulators submit no ledgers)")
    letters = column_letters or _letters_from(draft)
    with uow:
        written = stream.writer.close() if stream is not None else 0  # hands the connection back first
        unit = _unit_submitted_for(uow, actor, draft)
        up = _Upload(content, filename, content_type, hashlib.sha256(content).hexdigest())
        if stream is not None:  # checked by open_upload_stream under the same lock; the begun row is current now
            _check_stream(stream, unit, draft, up.sha256, written, dry_run)
        elif (dup := _duplicate(uow, unit, draft.month, up.sha256, dry_run=dry_run)) is not None:
            return receipt_of(dup, unit, duplicate=True)
        warnings = _warnings(uow, unit, draft, letters)
        totals = stream_totals(summarised(draft), uow.catalogue)
        rows = row_counts(draft)
        wdicts = [store.problem_dict(w) for w in warnings]
        if dry_run:
            nxt = len(store.versions_of(uow.session, int(unit.id or 0), draft.month)) + 1
            return _receipt(None, unit, month=draft.month, version=nxt, duplicate=False, rows=rows, totals_kg=totals,
                            warnings=wdicts)
        row = _store_version(uow, actor, unit, draft, up, stream, warnings, totals, rows)
        uow.commit()
        return _receipt(row, unit, month=row.month, version=row.version, duplicate=False, rows=rows,
                        totals_kg=totals, warnings=wdicts)


def _without_clinic_exempt(uow: UnitOfWork, draft: LedgerDraft, warnings: list[Problem]) -> list[Problem]:
    """A clinic with ≤ 19 beds needs no 联单 for its HW01 (豁免清单 item 2, 收集 and 运输): the reader, which does
    not know the unit, warned about the missing numbers; drop those warnings."""
    cat = uow.catalogue.for_year(draft.year)
    exempt = {(t.ref.sheet, t.ref.row) for t in draft.transfers
              if t.ref is not None and cat.transport_exempt(t.code, small_clinic=True) is not None}
    return [w for w in warnings if not (w.code == "missing_manifest" and (w.sheet, w.row) in exempt)]


def _columns(draft: LedgerDraft) -> TransferColumns:
    tr = draft.transfers
    return tr if isinstance(tr, TransferColumns) else TransferColumns(_lines=list(tr))


def _registered(uow: UnitOfWork, codes: Iterable[str]) -> dict[str, UnitRow]:
    """The registered units among credit codes as written in the sheets, keyed as written."""
    wanted = {cp: normalise_credit_code(cp) for cp in codes if cp}
    rows = unit_rows_by_code(uow.session, set(wanted.values()))
    return {cp: rows[cc] for cp, cc in wanted.items() if cc in rows}


_COUNTERPART = {"out": (SHEET_OUT, "接收单位统一社会信用代码"), "in": (SHEET_IN, "移出单位统一社会信用代码")}


def _unregistered_warnings(cols: TransferColumns, registered: dict[str, UnitRow],
                           letters: dict[str, dict[str, str]]) -> list[Problem]:
    """One warning per unregistered receiver (转出) or sender (转入) and sheet, at its first row."""
    out: list[Problem] = []
    firsts = {d: cols.first_refs(d, "counterpart") for d in _COUNTERPART}
    for d, cp in sorted(cols.distinct("direction", "counterpart"), key=lambda x: (x[0] != "out", x[1] or "")):
        if not cp or cp in registered:
            continue
        sheet, header = _COUNTERPART[d]
        out.append(_warn(_ref_with(firsts[d].get((cp,)), sheet, letters.get(sheet, {}).get(header), header),
                         "unregistered_unit", f"单位 {cp} 未在系统登记", f"unit {cp} is not registered", cp))
    return out


def _none_first(combo: tuple[str | None, ...]) -> tuple[str, ...]:
    """A sort key for (direction, stream, counterpart, code, method): a row without a method sorts first."""
    return tuple("" if x is None else x for x in combo)


def _permit_warnings(uow: UnitOfWork, draft: LedgerDraft, cols: TransferColumns, registered: dict[str, UnitRow],
                     letters: dict[str, dict[str, str]]) -> list[Problem]:
    """For HW and HW01 codes sent to a registered receiver, one warning per (receiver, code, method) that no
    permit of the receiver in force during the month covers. One query for the permits of every receiver."""
    # None beside a text would make sorted() fail (a 500 on upload): _none_first
    combos = sorted((c for c in cols.distinct("direction", "stream", "counterpart", "code", "planned_method")
                     if c[0] == "out" and c[1] in ("hazardous", "medical") and c[2] in registered),
                    key=_none_first)
    permits = permits_by_unit(uow.session, {int(registered[c[2]].id or 0) for c in combos})
    first, last = month_days(draft.month)
    refs: dict[tuple[Any, ...], SourceRef | None] | None = None
    out: list[Problem] = []
    for _, _, cp, code, method in combos:
        receiver = registered[cp]
        if any(p.in_force(first, last) and p.names(code, method) for p in permits.get(int(receiver.id or 0), [])):
            continue
        what = f"{code}" + (f" / {method}" if method else "")
        refs = refs if refs is not None else cols.first_refs("out", "counterpart", "code", "planned_method")
        out.append(_warn(_ref_with(refs.get((cp, code, method)), SHEET_OUT, letters.get(SHEET_OUT, {}).get("废物代码"),
                                   "废物代码"), "permit_not_covering", f"接收单位 {receiver.name} 的经营许可证不涵盖 {what}",
                         f"the receiver's permit does not cover {what}", code))
    return out


def _counterpart_warnings(uow: UnitOfWork, draft: LedgerDraft, letters: dict[str, dict[str, str]]) -> list[Problem]:
    """Unregistered receivers/senders and receivers whose permits do not cover what they were sent. Works on
    distinct combinations, never row by row: a 转出 sheet may have 100,000 rows."""
    cols = _columns(draft)
    registered = _registered(uow, {cp for _, cp in cols.distinct("direction", "counterpart")})
    return _unregistered_warnings(cols, registered, letters) + _permit_warnings(uow, draft, cols, registered, letters)


def _continuity_warnings(uow: UnitOfWork, unit: UnitRow, draft: LedgerDraft,
                         letters: dict[str, dict[str, str]]) -> list[Problem]:
    """期初贮存量 should equal last month's accepted 期末贮存量 (warning, ledger-workbook.md)."""
    prev = store.previous_month_close(uow.session, int(unit.id or 0), draft.month)
    if prev is None:
        return []
    out = []
    col = letters.get(SHEET_STOCK, {}).get("期初贮存量")
    have = set()
    for s in draft.stocks:
        have.add(s.code)
        before = prev.get(s.code, 0)
        if before != s.open_kg:
            out.append(_warn(_ref_with(s.ref, SHEET_STOCK, col, "期初贮存量"), "continuity",
                             f"废物代码 {s.code} 期初贮存量 {kg_to_t_float(s.open_kg)} 吨与上月期末贮存量 {kg_to_t_float(before)} 吨不一致",
                             f"{s.code}: opening stock {kg_to_t_float(s.open_kg)} t differs from last month's close "
                             f"{kg_to_t_float(before)} t", kg_to_t_float(s.open_kg)))
    for code, kg in sorted(prev.items()):
        if code not in have and kg:
            out.append(_warn(SourceRef(SHEET_STOCK, None, None, "废物代码"), "continuity",
                             f"上月期末贮存 {code} {kg_to_t_float(kg)} 吨，本月未填报", f"{code}: last month closed with "
                             f"{kg_to_t_float(kg)} t but has no row this month", code))
    return out


# --- 转出 rows against the manifests they cite (issue 16) -------------------------------------------
_NO, _CODE, _RECV, _QTY = "转移联单编号", "废物代码", "接收单位统一社会信用代码", "数量"


def _numbered_out_rows(draft: LedgerDraft) -> list[tuple[int | None, str, str, int, str]]:
    """(row, number, code, kg, receiver) of each 转出 row citing a well-formed 联单编号, column-wise when possible."""
    tr = draft.transfers
    out: list[tuple[int | None, str, str, int, str]] = []
    if isinstance(tr, TransferColumns) and tr.columnar:
        for b in tr.blocks:
            if b.direction == "out":
                out.extend((r, no, code, kg, cp) for r, no, code, kg, cp in zip(
                    b.rows, b.manifests, b.codes, b.qty_kg, b.counterparts, strict=True)
                    if is_well_formed_number(no))
        return out
    for ln in tr:
        no = ln.manifest_no
        if ln.direction == "out" and is_well_formed_number(no):
            out.append((ln.ref.row if ln.ref else None, no, ln.code, ln.qty_kg, ln.counterpart))
    return out


@dataclass
class _Citations:
    """What the 转出 rows citing 联单编号 are checked against: the ledger's unit and year, the manifests nofei
    holds among the numbers, the other months already citing them, and where each warning is pinned."""

    unit: UnitRow
    year: int
    letters: dict[str, str]
    numbers: list[str]
    cited: dict[str, store.CitedManifest]
    elsewhere: dict[str, str]
    odd_years: set[str] = field(init=False)  # numbers whose year is neither the ledger's nor the one before

    def __post_init__(self) -> None:
        self.odd_years = {no for no in self.numbers if int(no[:4]) not in (self.year, self.year - 1)}

    def at(self, row: int | None, header: str) -> SourceRef:
        return SourceRef(SHEET_OUT, row, self.letters.get(header), header)


def _row_warnings(c: _Citations, row: int | None, no: str, code: str, cp: str) -> list[Problem]:
    """A row citing a manifest nofei holds: this unit shipped it, to this row's receiver, with a line of its code."""
    shipper, receiver, lines = c.cited[no].shipper, c.cited[no].receiver, c.cited[no].lines
    out: list[Problem] = []
    if shipper != c.unit.credit_code:
        out.append(_warn(c.at(row, _NO), "manifest_other_shipper", f"联单 {no} 的移出单位是 {shipper}，不是本单位",
                         f"manifest {no} was shipped by {shipper}, not this unit", no))
    if cp != receiver:
        out.append(_warn(c.at(row, _RECV), "manifest_other_receiver", f"联单 {no} 的接收单位是 {receiver}",
                         f"manifest {no} goes to {receiver}", cp))
    if code not in lines:
        out.append(_warn(c.at(row, _CODE), "manifest_other_code", f"联单 {no} 中没有废物代码 {code}",
                         f"manifest {no} has no line of {code}", code))
    return out


def _number_warnings(c: _Citations, first_row: dict[str, int | None]) -> list[Problem]:
    """Per number, at its first row: a year other than the ledger's or the one before; cited in another month."""
    out: list[Problem] = []
    for no in c.numbers:
        ny = int(no[:4])
        if no in c.odd_years:
            out.append(_warn(c.at(first_row[no], _NO), "manifest_year", f"联单 {no} 的年份 {ny} 不是台账年份 {c.year} 或上一年",
                             f"manifest {no} is of {ny}, not {c.year} or {c.year - 1}", no))
        if no in c.elsewhere:
            out.append(_warn(c.at(first_row[no], _NO), "manifest_cited_twice",
                             f"联单 {no} 已在 {c.elsewhere[no]} 的转出中填报",
                             f"manifest {no} is already cited in the 转出 of {c.elsewhere[no]}", no))
    return out


def _quantity_warnings(c: _Citations, sums: dict[tuple[str, str], int], first: dict[tuple[str, str], int | None],
                       discrepancy: tuple[Decimal, int]) -> list[Problem]:
    """The month's kg of (number, code) against the manifest's line, by the discrepancy rule (a local setting)."""
    ratio, min_kg = discrepancy
    out: list[Problem] = []
    for (no, code), kg in sorted(sums.items()):
        want = c.cited[no].lines.get(code)
        if want is None or not is_discrepancy(want, kg, ratio=ratio, min_kg=min_kg):
            continue
        out.append(_warn(c.at(first[(no, code)], _QTY), "manifest_quantity",
                         f"联单 {no} {code} 转移 {kg_to_t_float(want)} 吨，本表转出 {kg_to_t_float(kg)} 吨"
                         f"（差异超过 {ratio * 100:g}% 且超过 {kg_to_t_float(min_kg):g} 吨，本地设置）",
                         f"manifest {no} {code}: {kg_to_t_float(want)} t on the manifest, {kg_to_t_float(kg)} t here",
                         kg_to_t_float(kg)))
    return out


def manifest_warnings(uow: UnitOfWork, unit: UnitRow, draft: LedgerDraft,
                      letters: dict[str, dict[str, str]]) -> list[Problem]:
    """Each 转出 row that cites a 联单编号, checked against that manifest (issue 16): the same shipper (this
    unit), receiver and code; the month's quantity of (number, code) within the discrepancy rule (a local
    setting, 5 % and 0.1 t); the manifest's year the ledger's or the one before; the number not cited in
    another month's 转出. Every mismatch is a warning pinned to the row's cell (number, code, receiver or
    quantity column); the ledger is stored as before. A number nofei does not know is left to the
    reconciliation (``unknown_number``): a city's ledgers may cite the national system's numbers."""
    rows = _numbered_out_rows(draft)
    if not rows or not draft.month:
        return []
    numbers = sorted({r[1] for r in rows})
    c = _Citations(unit, int(draft.month[:4]), letters.get(SHEET_OUT, {}), numbers,
                   store.manifests_cited(uow.session, numbers),
                   store.cited_in_other_months(uow.session, int(unit.id or 0), draft.month, numbers))
    if not c.cited and not c.elsewhere and not c.odd_years:  # the common case of a big upload: nothing to say
        return []
    out: list[Problem] = []
    sums: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int | None] = {}
    first_row: dict[str, int | None] = {}
    for row, no, code, kg, cp in rows:
        first_row.setdefault(no, row)
        if no not in c.cited:  # a number nofei does not know is the reconciliation's ``unknown_number``
            continue
        sums[(no, code)] = sums.get((no, code), 0) + kg
        first.setdefault((no, code), row)
        out += _row_warnings(c, row, no, code, cp)
    return out + _number_warnings(c, first_row) + _quantity_warnings(c, sums, first, uow.rules.discrepancy)


# --- reads -----------------------------------------------------------------------------------
def _visible(actor: Actor, unit: UnitRow) -> bool:
    """A registered unit's ledgers: its district's regulators (and its park's), the city, admins, the unit."""
    return actor.can_view_unit_at(unit.credit_code, unit.district, unit.park)


def _ledger_dict(row: LedgerRow, unit: UnitRow) -> dict[str, Any]:
    return {
        **receipt_of(row, unit), "is_current": row.is_current, "sha256": row.sha256, "filename": row.filename,
        "size": row.size, "uploaded_at": row.uploaded_at, "uploaded_by": row.uploaded_by, "unit_name": row.unit_name,
        "reporter": row.reporter, "phone": row.phone, "year": row.year,
    }


def _stock_t(r: dict[str, Any]) -> dict[str, Any]:
    return {"row": r["row"], "code": r["code"], "stream": r["stream"], "name": r["name"],
            "open_t": kg_to_t_float(r["open_kg"]), "generated_t": kg_to_t_float(r["generated_kg"]),
            "close_t": kg_to_t_float(r["close_kg"]), "note": r["note"]}


def _treatment_t(r: dict[str, Any]) -> dict[str, Any]:
    return {"row": r["row"], "code": r["code"], "stream": r["stream"], "method": r["method"],
            "qty_t": kg_to_t_float(r["qty_kg"]), "product": r["product"], "note": r["note"]}


def _transfer_t(r: dict[str, Any]) -> dict[str, Any]:
    return {"row": r["row"], "direction": r["direction"], "day": r["day"], "code": r["code"], "stream": r["stream"],
            "qty_t": kg_to_t_float(r["qty_kg"]), "counterpart": r["counterpart"],
            "counterpart_name": r["counterpart_name"], "manifest_no": r["manifest_no"], "carrier": r["carrier"],
            "planned_method": r["planned_method"], "note": r["note"]}


def get_ledger(*, uow: UnitOfWork, actor: Actor, ledger_id: int, with_rows: bool = True) -> dict[str, Any]:
    """One version with its rows (quantities in tonnes) and warnings; 404 when not visible."""
    with uow:
        lw = store.ledger_with_rows(uow.session, ledger_id, with_rows=with_rows)
        if lw is None or not _visible(actor, lw.unit):
            raise NotFound(f"台账 {ledger_id} 不存在 (no such ledger)")
        out = _ledger_dict(lw.ledger, lw.unit)
        if with_rows:
            out["stocks"] = [_stock_t(r) for r in lw.stocks]
            out["treatments"] = [_treatment_t(r) for r in lw.treatments]
            out["transfers"] = [_transfer_t(r) for r in lw.transfers]
        return out


def ledger_file(*, uow: UnitOfWork, actor: Actor, ledger_id: int) -> tuple[bytes, str, str]:
    """The original upload of a version: (bytes, filename, content type)."""
    with uow:
        lw = store.ledger_with_rows(uow.session, ledger_id, with_rows=False)
        if lw is None or not _visible(actor, lw.unit):
            raise NotFound(f"台账 {ledger_id} 不存在 (no such ledger)")
        f = store.ledger_file(uow.session, ledger_id)
        if f is None:
            raise NotFound("原始文件不存在 (file missing)")
        return bytes(f.content), lw.ledger.filename, f.content_type


def _unit_scope(uow: UnitOfWork, actor: Actor, unit: str | None) -> tuple[list[int] | None, str | None]:
    """The units (None: any) and the district or park (None: any) whose ledgers the actor may list."""
    ids: list[int] | None = None
    if unit:
        r = find_unit_row(uow.session, normalise_credit_code(unit))
        if r is None or not _visible(actor, r):
            return [], None
        ids = [int(r.id or 0)]
    if actor.role == "enterprise":
        mine = unit_ids_of(uow.session, actor.units)
        return ([i for i in ids if i in mine] if ids is not None else mine), None
    return ids, actor.district if actor.role == "regulator" and actor.district != CITY else None


def list_ledgers(*, uow: UnitOfWork, actor: Actor, unit: str | None = None, month: str | None = None,
                 year: int | None = None, current_only: bool = False, page: int = 1,
                 per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
    """Ledger versions the actor may see, newest month first, paged (without rows)."""
    with uow:
        ids, district = _unit_scope(uow, actor, unit)
        rows, total = store.list_ledgers(uow.session, unit_ids=ids, district=district, month=month, year=year,
                                         current_only=current_only, page=page, per_page=per_page)
        return [_ledger_dict(r, u) for r, u in rows], total


def versions(*, uow: UnitOfWork, actor: Actor, unit: str, month: str) -> list[dict[str, Any]]:
    """Every version of (unit, month), oldest first; 404 when the unit is unknown or not visible."""
    with uow:
        r = find_unit_row(uow.session, normalise_credit_code(unit))
        if r is None or not _visible(actor, r):
            raise NotFound(f"单位 {unit} 未注册 (unit not registered)", code="unknown_unit")
        return [_ledger_dict(v, r) for v in store.versions_of(uow.session, int(r.id or 0), month)]


def registered_name(*, uow: UnitOfWork, actor: Actor, codes: Iterable[str]) -> dict[str, str]:
    """Names of the actor's units (to pre-fill the template's cover)."""
    with uow:
        return {c: r.name for c, r in unit_rows_by_code(uow.session, codes).items() if _visible(actor, r)}


