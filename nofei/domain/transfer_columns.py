"""``TransferColumns``: the 转出/转入 lines of a read ledger kept column by column.

A 100,000-row 转出 sheet must be read, checked and stored in about the time python-calamine takes to
read it (issue 3). Building one frozen ``TransferLine`` object per row costs about 40 % of that
budget, so the reader keeps the columns it has already coerced and hands them over in this
sequence. It behaves as the ``list[TransferLine]`` that ``LedgerDraft.transfers`` is (iteration,
indexing and ``len`` materialise ``TransferLine`` objects on first use), while the use case and the
store take the fast paths: ``summary()`` (one line per direction/code/stream, for the balance and the
totals — both are sums), ``counts()``, ``insert_tuples()`` and ``distinct()``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import repeat
from typing import Any, Protocol, overload

from nofei.catalogue import Stream
from nofei.domain.ledger import LedgerDraft, TransferLine
from nofei.domain.manifests import is_well_formed_number
from nofei.problems import SourceRef


@dataclass(slots=True)
class TransferBlock:
    """The rows of one sheet (one direction), as parallel columns of equal length."""

    direction: str
    sheet: str
    rows: list[int]
    days: list[date]
    codes: list[str]
    streams: list[Stream]
    qty_kg: list[int]
    counterparts: list[str]
    counterpart_names: list[str]
    manifests: list[str | None]
    carriers: list[str | None]
    planned_methods: list[str | None]
    notes: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def lines(self) -> list[TransferLine]:
        d, sheet = self.direction, self.sheet
        return [
            TransferLine(d, day, code, stream, q, cp, cpn, man, car, pm, note, SourceRef(sheet, r))
            for r, day, code, stream, q, cp, cpn, man, car, pm, note in zip(
                self.rows, self.days, self.codes, self.streams, self.qty_kg, self.counterparts,
                self.counterpart_names, self.manifests, self.carriers, self.planned_methods, self.notes, strict=True)
        ]


class TransferSink(Protocol):
    """Takes the checked rows of a transfer sheet chunk by chunk while the workbook is still being read, so
    storing them overlaps reading (issue 3, B1). Rows handed over are provisional: the upload they belong to
    may still be rejected, and then the transaction they were written in is rolled back."""

    def put(self, block: TransferBlock) -> None: ...


EdgeKey = tuple[str, str, str, str, str | None]
"""(direction, stream, code, counterpart, planned method): how a ledger's transfer rows group into flow edges."""


class EdgeSums:
    """A ledger version's transfer rows summed per flow edge, block by block as they arrive: what
    ``flow_edge`` holds for the version (kg, rows, 转出 rows citing a well-formed 联单编号), computed while the
    workbook is still being read instead of by a GROUP BY over the stored rows afterwards (issue 17, B1)."""

    def __init__(self) -> None:
        self.sums: dict[EdgeKey, list[int]] = {}

    def add(self, block: TransferBlock) -> None:
        d, sums = block.direction, self.sums
        keys: list[EdgeKey] = list(zip(repeat(d, len(block)), block.streams, block.codes, block.counterparts,
                                       block.planned_methods, strict=True))
        kg: dict[EdgeKey, int] = defaultdict(int)
        for k, q in zip(keys, block.qty_kg, strict=True):  # the one Python-level pass; the counts below run in C
            kg[k] += q
        rows = Counter(keys)
        # the same test as the SQL of nofei.storage.flowstore.wellformed: 14 ASCII digits after trimming spaces
        wf = Counter(k for k, no in zip(keys, block.manifests, strict=True) if no is not None and is_well_formed_number(no.strip(" "))
                     ) if d == "out" else Counter()
        for k, q in kg.items():
            s = sums.get(k)
            if s is None:
                s = sums[k] = [0, 0, 0]
            s[0] += q
            s[1] += rows[k]
            s[2] += wf[k]

    def rows(self) -> list[tuple[str, str, str, str, str | None, int, int, int]]:
        """(direction, stream, code, counterpart, method, kg, rows, well-formed rows) per edge."""
        return [(*k, kg, n, wf) for k, (kg, n, wf) in self.sums.items()]


def block_tuples(block: TransferBlock, ledger_id: int, *, iso_days: bool = False) -> list[tuple[Any, ...]]:
    """One block's rows for ``transfer_entry`` in column order (see ``TransferColumns.insert_tuples``)."""
    b = block
    days = list(map(date.isoformat, b.days)) if iso_days else b.days
    return list(zip(repeat(ledger_id), b.rows, repeat(b.direction), days, b.codes, b.streams, b.qty_kg,
                    b.counterparts, b.counterpart_names, b.manifests, b.carriers, b.planned_methods, b.notes))


class TransferColumns(Sequence[TransferLine]):
    """A sequence of ``TransferLine`` stored as column blocks; see the module docstring."""

    def __init__(self, blocks: list[TransferBlock] | None = None, *, _lines: list[TransferLine] | None = None) -> None:
        self.blocks: list[TransferBlock] = [b for b in (blocks or []) if len(b)]
        self._lines: list[TransferLine] | None = _lines
        self._summary: list[TransferLine] | None = None
        # set once lines were appended (or given as lines): the blocks are then no longer the whole truth
        self._dirty = _lines is not None

    # --- the list behaviour (materialises once) ---------------------------------------------
    def _all(self) -> list[TransferLine]:
        if self._lines is None:
            out: list[TransferLine] = []
            for b in self.blocks:
                out.extend(b.lines())
            self._lines = out
        return self._lines

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks) if not self._dirty else len(self._all())

    @overload
    def __getitem__(self, i: int) -> TransferLine: ...
    @overload
    def __getitem__(self, i: slice) -> list[TransferLine]: ...
    def __getitem__(self, i: int | slice) -> TransferLine | list[TransferLine]:
        return self._all()[i]

    def __iter__(self) -> Iterator[TransferLine]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TransferColumns | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def append(self, line: TransferLine) -> None:
        self._all().append(line)
        self._dirty = True

    def extend(self, lines: Sequence[TransferLine]) -> None:
        self._all().extend(lines)
        self._dirty = True

    @property
    def columnar(self) -> bool:
        """True while the column blocks are the whole content (nothing appended since)."""
        return not self._dirty

    # --- fast paths -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {"out": 0, "in": 0}
        if self.columnar:
            for b in self.blocks:
                out[b.direction] = out.get(b.direction, 0) + len(b)
        else:
            for t in self._all():
                out[t.direction] = out.get(t.direction, 0) + 1
        return out

    def summary(self) -> list[TransferLine]:
        """One line per (direction, code, stream) with the summed quantity and the first row's ref:
        enough for ``balance_problems`` and ``stream_totals``, which only sum per code and stream."""
        if not self.columnar:
            return list(self._all())
        if self._summary is None:
            out: list[TransferLine] = []
            for b in self.blocks:
                # one pass summing per (code, stream) — cheaper than a C-level masked pass per code once a
                # sheet has more than two or three codes (B1: 8 codes, 43 → 15 ms for 100,000 rows)
                acc: dict[tuple[str, Stream], int] = {}
                get = acc.get
                for k, q in zip(zip(b.codes, b.streams, strict=True), b.qty_kg, strict=True):
                    acc[k] = get(k, 0) + q
                order = {c: n for n, c in enumerate(dict.fromkeys(b.codes))}
                for code, stream in sorted(acc, key=lambda k: (order[k[0]], k[1])):
                    i = b.codes.index(code)
                    out.append(TransferLine(b.direction, b.days[i], code, stream, acc[(code, stream)], "",
                                            ref=SourceRef(b.sheet, b.rows[i])))
            self._summary = out
        return self._summary

    def insert_tuples(self, ledger_id: int, *, iso_days: bool = False) -> list[tuple[Any, ...]]:
        """Rows for ``transfer_entry`` in column order (ledger_id, row, direction, day, code, stream,
        qty_kg, counterpart, counterpart_name, manifest_no, carrier, planned_method, note); ``iso_days``
        gives the day as ``YYYY-MM-DD`` text (what SQLite stores for a DATE)."""
        if not self.columnar:
            return [(ledger_id, t.ref.row if t.ref else None, t.direction, t.day.isoformat() if iso_days else t.day,
                     t.code, t.stream, t.qty_kg, t.counterpart, t.counterpart_name, t.manifest_no, t.carrier,
                     t.planned_method, t.note)
                    for t in self._all()]
        out: list[tuple[Any, ...]] = []
        for b in self.blocks:
            out.extend(block_tuples(b, ledger_id, iso_days=iso_days))
        return out

    def distinct(self, *fields: str) -> set[tuple[Any, ...]]:
        """Distinct combinations of ``TransferLine`` fields (e.g. ``("direction", "counterpart")``)."""
        names = {"direction": None, "day": "days", "code": "codes", "stream": "streams", "qty_kg": "qty_kg",
                 "counterpart": "counterparts", "counterpart_name": "counterpart_names", "manifest_no": "manifests",
                 "carrier": "carriers", "planned_method": "planned_methods", "note": "notes"}
        if not self.columnar:
            return {tuple(getattr(t, f) for f in fields) for t in self._all()}
        out: set[tuple[Any, ...]] = set()
        for b in self.blocks:
            cols = [repeat(b.direction, len(b)) if f == "direction" else getattr(b, names[f] or f) for f in fields]
            out.update(zip(*cols, strict=False))
        return out

    def first_refs(self, direction: str, *fields: str) -> dict[tuple[Any, ...], SourceRef | None]:
        """For each distinct combination of ``fields`` among rows of ``direction``, the ref of its first row
        (one pass over the columns, to pin a warning about many rows to the first of them)."""
        out: dict[tuple[Any, ...], SourceRef | None] = {}
        if not self.columnar:
            for line in self._all():
                if line.direction == direction:
                    out.setdefault(tuple(getattr(line, f) for f in fields), line.ref)
            return out
        names = {"day": "days", "code": "codes", "stream": "streams", "counterpart": "counterparts",
                 "manifest_no": "manifests", "carrier": "carriers", "planned_method": "planned_methods"}
        for b in self.blocks:
            if b.direction != direction:
                continue
            first: dict[tuple[Any, ...], int] = {}
            for i, key in enumerate(zip(*(getattr(b, names[f]) for f in fields), strict=True)):
                if key not in first:
                    first[key] = i
            for key, i in first.items():
                if key not in out:
                    out[key] = SourceRef(b.sheet, b.rows[i])
        return out


def transfer_counts(draft: LedgerDraft) -> dict[str, int]:
    """Rows of 转出/转入 without materialising a columnar draft."""
    if isinstance(draft.transfers, TransferColumns):
        return draft.transfers.counts()
    out = {"out": 0, "in": 0}
    for t in draft.transfers:
        out[t.direction] = out.get(t.direction, 0) + 1
    return out


def summarised(draft: LedgerDraft) -> LedgerDraft:
    """The draft with its transfers summed per (direction, code, stream): same balance and totals."""
    if not isinstance(draft.transfers, TransferColumns):
        return draft
    return LedgerDraft(draft.credit_code, draft.unit_name, draft.month, draft.reporter, draft.phone,
                       stocks=draft.stocks, treatments=draft.treatments, transfers=draft.transfers.summary(),
                       warnings=draft.warnings, cover_refs=draft.cover_refs)


def row_counts(draft: LedgerDraft) -> dict[str, int]:
    """``LedgerDraft.row_counts()`` without materialising the transfers."""
    from nofei.domain.ledger import SHEET_IN, SHEET_OUT, SHEET_STOCK, SHEET_TREAT

    c = transfer_counts(draft)
    return {SHEET_STOCK: len(draft.stocks), SHEET_TREAT: len(draft.treatments), SHEET_OUT: c.get("out", 0),
            SHEET_IN: c.get("in", 0)}
