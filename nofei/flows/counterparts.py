"""The per-manifest layer of the flow model and the three-way reconciliation read from it.

A transfer edge of the flow graph (``nofei.flows.graph``) carries what the manifests of the year attest on one
(shipper, receiver, code). Those attestations are folded from ``ManifestSides``: one row per current manifest
and waste code (its lines of the code summed, its status and times), kept with the year's model. So what an edge
says and what each manifest behind it says are one load and one rule. The three-way reconciliation
(ledger-workbook.md "Counterparts") holds each (number, code) of those sides against what the shipper's 转出 rows
and the receiver's 转入 rows citing it declare (``LedgerSides``): a quantity mismatch, a side missing after the
following month, or a row citing an unknown number.

Columnar (numpy) because a city-year holds a million manifests: the sides of B3 take ~100 MB as arrays where
Python objects took over a gigabyte, and the rule runs over all of them as array operations. Integer kilograms
throughout; the tolerance is compared as integers (``diff*q > p*against``), falling back to Python integers where
int64 could overflow. Pure: the storage layer loads the rows (``nofei.storage.sides``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import numpy as np

from nofei.domain.manifests import STATUSES, discrepant

NONE_TIME = np.iinfo(np.int64).max  # "no such moment": never before a cut-off
_CODE_BITS = 12  # a (number, code) key is number * 2^12 + code id (14 digits * 4096 < 2^63)
_STATUS: dict[str, int] = {s: i for i, s in enumerate(STATUSES)}
_SUBMITTED, _IN_TRANSIT = _STATUS["submitted"], _STATUS["in_transit"]
_ARRIVED = (_STATUS["received"], _STATUS["partially_received"])
_SAFE = 1 << 62


def micros(moment: datetime | None) -> int:
    """A moment as microseconds since the epoch, UTC (a naive value is UTC, as the database stores it)."""
    if moment is None:
        return int(NONE_TIME)
    m = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(m.timestamp() * 1_000_000)


def number_range(year: int) -> tuple[int, int]:
    """The manifest numbers a year's ledgers are held against: those issued from the year before to the year
    after (a number starts with the year it was issued; a December load may be received in January)."""
    return (year - 1) * 10**10, (year + 1) * 10**10 + 10**10 - 1


class ManifestSide(NamedTuple):
    """One row of ``ManifestSides``, for a finding or a test."""

    number: str
    code: str
    mid: int
    shipper: str
    receiver: str
    status: str
    follow_on: bool
    planned_year: int
    quantity: int
    received: int
    rejected: int


class LedgerSide(NamedTuple):
    """What the 转出 (or 转入) rows citing one (number, code) declare: Σ kg, the first row id and unit id."""

    kg: int
    row: int
    unit_id: int


ManifestRowIn = tuple[str, str, int, str, str, str, bool, date, datetime | None, datetime | None, int, int, int]
"""(number, code, manifest id, shipper, receiver, status, follow-on, planned date, shipped at, received at,
Σ quantity, Σ received, Σ rejected) — what ``nofei.storage.sides`` reads per current manifest and code."""


@dataclass(slots=True)
class Names:
    """Text values (waste codes, credit codes) as small integer ids, shared by the sides that are compared. Safe
    across threads: an id once given never changes (``CODES`` is the one process-wide naming of waste codes)."""

    ids: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def extend(self) -> Names:
        """A copy to add names to: the ids given so far stay valid (a cached model's namings are never changed)."""
        with self.lock:
            return Names(dict(self.ids), list(self.names))

    def of(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            with self.lock:
                i = self.ids.get(name)
                if i is None:
                    i = len(self.names)
                    self.names.append(name)
                    self.ids[name] = i
        return i


CODES = Names()
"""The waste codes of every side of this process (a few hundred): the model's cached manifest sides and the ledger
sides compared with them share their ids."""


@dataclass(slots=True)
class ManifestSides:
    """The current manifests of a year, one row per (manifest, waste code), as parallel arrays sorted by key."""

    codes: Names
    units: Names
    key: np.ndarray  # int64: number * 2^12 + code id
    mid: np.ndarray  # int64
    shipper: np.ndarray  # int32 id in ``units``
    receiver: np.ndarray  # int32 id in ``units``
    status: np.ndarray  # int8 index in ``nofei.domain.manifests.STATUSES``
    follow_on: np.ndarray  # bool: a follow-on of a refusal (it has a parent manifest)
    planned_year: np.ndarray  # int16
    shipped_at: np.ndarray  # int64 µs since the epoch (UTC), NONE_TIME when not shipped
    received_at: np.ndarray  # int64 µs, NONE_TIME when not received
    quantity: np.ndarray  # int64 kg: Σ 转移量 of the lines
    received: np.ndarray  # int64 kg: Σ 接收量 (0 when none was recorded)
    rejected: np.ndarray  # int64 kg: Σ 拒收量

    def __len__(self) -> int:
        return len(self.key)

    @property
    def number(self) -> np.ndarray:
        return self.key >> _CODE_BITS

    @property
    def code(self) -> np.ndarray:
        return self.key & ((1 << _CODE_BITS) - 1)

    @property
    def is_return(self) -> np.ndarray:
        """Follow-ons of a refusal addressed to the shipper itself: the load goes back to the shipper's node (the
        array form of ``nofei.domain.manifests.is_return``)."""
        return self.follow_on & (self.receiver == self.shipper)

    def side(self, i: int) -> ManifestSide:
        k = int(self.key[i])
        return ManifestSide(f"{k >> _CODE_BITS:014d}", self.codes.names[k & ((1 << _CODE_BITS) - 1)],
                            int(self.mid[i]), self.units.names[int(self.shipper[i])],
                            self.units.names[int(self.receiver[i])], STATUSES[int(self.status[i])],
                            bool(self.follow_on[i]), int(self.planned_year[i]), int(self.quantity[i]),
                            int(self.received[i]), int(self.rejected[i]))

    def named(self, codes: Names, units: Names) -> ManifestSides:
        """The same rows under other namings that extend these (ids kept: ``Names.extend``)."""
        return ManifestSides(codes, units, *(getattr(self, f) for f in _ARRAYS))

    def take(self, index: np.ndarray) -> ManifestSides:
        """The rows ``index`` (same names)."""
        return ManifestSides(self.codes, self.units, *(getattr(self, f)[index] for f in _ARRAYS))


_ARRAYS = ("key", "mid", "shipper", "receiver", "status", "follow_on", "planned_year", "shipped_at", "received_at",
           "quantity", "received", "rejected")
_DTYPES = (np.int64, np.int64, np.int32, np.int32, np.int8, np.bool_, np.int16, np.int64, np.int64, np.int64,
           np.int64, np.int64)


def _micros(values: Sequence[datetime | int | None]) -> np.ndarray:
    """Moments as int64 µs since the epoch (``micros``); the storage layer gives them as such integers already."""
    return np.array([v if isinstance(v, int) else micros(v) for v in values], dtype=np.int64)


def _numbers(values: Sequence[str | int]) -> np.ndarray:
    """Manifest numbers (14 digits, or already integers) as int64."""
    if all(isinstance(v, int) for v in values):
        return np.array(values, dtype=np.int64)
    return np.array([int(v) for v in values], dtype=np.int64)


def manifest_sides(rows: Iterable[ManifestRowIn | Sequence[Any]], codes: Names | None = None,
                   units: Names | None = None) -> ManifestSides:
    """The sides from rows (any order; a number is one current manifest, so (number, code) is unique). The number
    may come as text or as an integer, the planned date as a date or as its year, the times as datetimes or as
    ``micros``. Column by column: a year's million rows convert in numpy, not row by row in Python."""
    codes, units = codes or CODES, units or Names()
    cols = list(zip(*rows, strict=True)) or [() for _ in range(13)]
    number, code, mid, shipper, receiver, status, follow, planned, shipped_at, received_at, qty, rec, rej = cols
    code_id = np.array([codes.of(c) for c in code], dtype=np.int64)
    arrays: list[np.ndarray] = [
        (_numbers(number) << _CODE_BITS) | code_id, np.array(mid, dtype=np.int64),
        np.array([units.of(u) for u in shipper], dtype=np.int32), np.array([units.of(u) for u in receiver],
                                                                           dtype=np.int32),
        np.array([_STATUS[x] for x in status], dtype=np.int8), np.array(follow, dtype=np.bool_),
        np.array([p if isinstance(p, int) else p.year for p in planned], dtype=np.int16),
        _micros(shipped_at), _micros(received_at), np.array(qty, dtype=np.int64), np.array(rec, dtype=np.int64),
        np.array(rej, dtype=np.int64)]
    order = np.argsort(arrays[0], kind="stable")
    return ManifestSides(codes, units, *(a[order] for a in arrays))


def keys(number: np.ndarray, code_id: np.ndarray) -> np.ndarray:
    """The (number, code) keys of sides: number * 2^12 + code id."""
    return (number.astype(np.int64) << _CODE_BITS) | code_id.astype(np.int64)


def _distinct_sorted(a: np.ndarray) -> np.ndarray:
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def cited_elsewhere(led: LedgerSides, m: ManifestSides) -> list[str]:
    """The well-formed numbers the ledger sides cite that no side of ``m`` has (both are sorted by key, so by
    number: no hashing of a million numbers)."""
    cited, held = _distinct_sorted(led.key >> _CODE_BITS), _distinct_sorted(m.key >> _CODE_BITS)
    pos = np.minimum(np.searchsorted(held, cited), max(len(held) - 1, 0))
    found = (held[pos] == cited) if len(held) else np.zeros(len(cited), dtype=np.bool_)
    return [f"{int(n):014d}" for n in cited[~found]]


def replace_shippers(old: ManifestSides, shippers: Iterable[str], new: ManifestSides) -> ManifestSides:
    """``old`` with every side of ``shippers`` replaced by ``new``'s (the live model after a manifest step reloads
    the sides of the shippers it names only); ``new`` is named by ``old``'s namings extended."""
    ids = [old.units.ids[c] for c in shippers if c in old.units.ids]
    keep = ~np.isin(old.shipper, np.array(ids, dtype=np.int32))
    return concat([old.take(np.flatnonzero(keep)).named(new.codes, new.units), new])


def concat(parts: Sequence[ManifestSides]) -> ManifestSides:
    """Sides of one naming (``codes``, ``units``) stacked and sorted by key."""
    first = parts[0]
    if any(p.codes is not first.codes or p.units is not first.units for p in parts):
        raise ValueError("sides of different namings")
    arrays = [np.concatenate([getattr(p, f) for p in parts]) for f in _ARRAYS]
    order = np.argsort(arrays[0], kind="stable")
    return ManifestSides(first.codes, first.units, *(a[order] for a in arrays))


@dataclass(slots=True)
class LedgerSides:
    """Per (number, code) cited by current ledger rows: Σ kg, first row and unit of the 转出 and the 转入 side
    (row −1: that side is absent), sorted by key; ``odd`` holds the numbers that are not 14 ASCII digits (they
    can be no manifest's: always unknown)."""

    odd: dict[tuple[str, str], dict[str, LedgerSide]]
    codes: Names
    key: np.ndarray
    out_kg: np.ndarray
    out_row: np.ndarray
    out_unit: np.ndarray
    in_kg: np.ndarray
    in_row: np.ndarray
    in_unit: np.ndarray

    def columns(self) -> list[np.ndarray]:
        return [self.key, self.out_kg, self.out_row, self.out_unit, self.in_kg, self.in_row, self.in_unit]

    def of(self, i: int, direction: str) -> LedgerSide | None:
        row = int((self.out_row if direction == "out" else self.in_row)[i])
        if row < 0:
            return None
        if direction == "out":
            return LedgerSide(int(self.out_kg[i]), row, int(self.out_unit[i]))
        return LedgerSide(int(self.in_kg[i]), row, int(self.in_unit[i]))


LedgerRowIn = tuple[int, str | None, str, int, int, int, int, int, int]
"""(number as an integer, or −1 with the text when it is not 14 ASCII digits; the number's text then, else None;
waste code; Σ 转出 kg, first 转出 row, its unit; Σ 转入 kg, first 转入 row, its unit), rows −1 for an absent
side — what ``nofei.storage.sides`` reads per (number, code)."""


def ledger_sides(rows: Iterable[LedgerRowIn | Sequence[Any]], codes: Names = CODES) -> LedgerSides:
    """From one row per (number, code) cited (``LedgerRowIn``), column by column."""
    odd: dict[tuple[str, str], dict[str, LedgerSide]] = {}
    good: list[Sequence[Any]] = []
    for r in rows:
        if r[1] is None:
            good.append(r)
            continue
        sides = odd.setdefault((str(r[1]), r[2]), {})
        if r[4] >= 0:
            sides["out"] = LedgerSide(r[3], r[4], r[5])
        if r[7] >= 0:
            sides["in"] = LedgerSide(r[6], r[7], r[8])
    cols = list(zip(*good, strict=True)) or [() for _ in range(9)]
    code_id = np.array([codes.of(c) for c in cols[2]], dtype=np.int64)
    keys = (np.array(cols[0], dtype=np.int64) << _CODE_BITS) | code_id
    vals = [np.array(c, dtype=np.int64) for c in cols[3:]]
    order = np.argsort(keys, kind="stable")
    return LedgerSides(odd, codes, keys[order], *(v[order] for v in vals))


def concat_ledger(parts: Sequence[LedgerSides]) -> LedgerSides:
    """Ledger sides of disjoint (number, code) sets, one naming of codes, stacked and sorted by key."""
    if any(p.codes is not parts[0].codes for p in parts):
        raise ValueError("ledger sides of different namings")
    odd: dict[tuple[str, str], dict[str, LedgerSide]] = {}
    for p in parts:
        odd.update(p.odd)
    cols = [np.concatenate(c) for c in zip(*(p.columns() for p in parts), strict=True)]
    order = np.argsort(cols[0], kind="stable")
    return LedgerSides(odd, parts[0].codes, *(c[order] for c in cols))


def replace_numbers(old: LedgerSides, numbers: Iterable[str], new: LedgerSides) -> LedgerSides:
    """``old`` with every (number, code) of ``numbers`` replaced by ``new``'s (summed again after a ledger version of
    a unit that cites them); one naming of codes."""
    texts = set(numbers)
    ints = np.array([int(n) for n in texts if n.isascii() and n.isdigit()], dtype=np.int64)
    keep = ~np.isin(old.key >> _CODE_BITS, ints)
    kept = LedgerSides({k: v for k, v in old.odd.items() if k[0] not in texts}, old.codes,
                       *(c[keep] for c in old.columns()))
    return concat_ledger([kept, new])


class Disagreement(NamedTuple):
    """One (number, code) whose three sides disagree, with each side (None: the side is absent) and why."""

    number: str
    code: str
    reason: str
    out: LedgerSide | None
    into: LedgerSide | None
    manifest: ManifestSide | None

    @property
    def out_kg(self) -> int | None:
        return self.out.kg if self.out else None

    @property
    def in_kg(self) -> int | None:
        return self.into.kg if self.into else None

    @property
    def shipped(self) -> int | None:
        return self.manifest.quantity if self.manifest else None

    @property
    def received(self) -> int | None:
        return self.manifest.received if self.manifest else None


def _differs(kg: np.ndarray, against: np.ndarray, ratio: tuple[int, int], min_kg: int) -> np.ndarray:
    """``discrepant`` over arrays: as int64 where no product can overflow, else in Python integers."""
    p, q = ratio
    big = max(int(np.abs(kg).max(initial=0)), int(np.abs(against).max(initial=0)))
    if (2 * big + 1) * max(p, q, 1) < _SAFE:
        diff = np.abs(kg - against)
        return (diff > min_kg) & (diff * q > against * p)
    return np.fromiter((discrepant(int(a), int(b), ratio, min_kg) for a, b in zip(kg, against, strict=True)),
                       dtype=np.bool_, count=len(kg))


REASONS = ("unknown_number", "out_vs_manifest", "in_vs_manifest", "out_missing", "in_missing")


def judge(m: ManifestSides, out_kg: np.ndarray, has_out: np.ndarray, in_kg: np.ndarray, has_in: np.ndarray, *,
          year: int, cutoff: datetime, ratio: tuple[int, int], min_kg: int) -> np.ndarray:
    """Why each manifest side disagrees with the ledger sides aligned on it: an index in ``REASONS`` (1–4), or
    0 when it agrees; first match wins.

    - ``out_vs_manifest`` / ``in_vs_manifest``: the 转出 differs from what the manifest shipped (once it moved), the
      转入 from what it received (once it arrived) — ``discrepant``, the local tolerance of ledger-workbook.md
      "Counterparts";
    - ``out_missing``: a manifest planned in the year, shipped before ``cutoff``, and no 转出 cites it — unless it
      is a follow-on of a refusal (it leaves from the refusing receiver's gate; the shipper's 转出 cites the
      original);
    - ``in_missing``: a manifest planned in the year, received (something) before ``cutoff``, no 转入 cites it.
    """
    moved = m.status != _SUBMITTED
    arrived = np.isin(m.status, _ARRIVED)
    in_year = m.planned_year == year
    cut = micros(cutoff)
    why = np.zeros(len(m), dtype=np.int8)
    rules = (
        has_out & moved & _differs(out_kg, m.quantity, ratio, min_kg),
        has_in & arrived & _differs(in_kg, m.received, ratio, min_kg),
        in_year & ~has_out & moved & ~m.follow_on & (m.shipped_at < cut),
        in_year & ~has_in & arrived & (m.received > 0) & (m.received_at < cut),
    )
    for i, hit in enumerate(rules, start=1):
        why[(why == 0) & hit] = i
    return why


def reconcile(m: ManifestSides, led: LedgerSides, *, year: int, cutoff: datetime, ratio: tuple[int, int],
              min_kg: int) -> list[Disagreement]:
    """Every (number, code) whose three sides disagree: the manifests' (those of ``number_range(year)``) against the
    ledger sides cited, then the ledger sides citing a (number, code) no manifest there has (unknown numbers).
    ``led`` names codes as ``m`` does, or extends its naming. In key order, the unknown numbers last."""
    lo, hi = number_range(year)
    number = m.number
    m = m.take(np.flatnonzero((number >= lo) & (number <= hi)))
    pos = np.searchsorted(led.key, m.key)
    pos_ok = np.minimum(pos, max(len(led.key) - 1, 0))
    hit = (pos < len(led.key)) & (led.key[pos_ok] == m.key) if len(led.key) else np.zeros(len(m), dtype=np.bool_)
    at = np.where(hit, pos_ok, 0)
    pick = (lambda a: a[at]) if len(led.key) else (lambda a: np.zeros(len(m), dtype=np.int64))
    has_out, has_in = hit & (pick(led.out_row) >= 0), hit & (pick(led.in_row) >= 0)
    why = judge(m, np.where(has_out, pick(led.out_kg), 0), has_out, np.where(has_in, pick(led.in_kg), 0), has_in,
                year=year, cutoff=cutoff, ratio=ratio, min_kg=min_kg)
    out: list[Disagreement] = []
    for i in np.flatnonzero(why):
        j = int(at[i])
        s = m.side(int(i))
        out.append(Disagreement(s.number, s.code, REASONS[int(why[i])], led.of(j, "out") if has_out[i] else None,
                                led.of(j, "in") if has_in[i] else None, s))
    matched = np.zeros(len(led.key), dtype=np.bool_)
    matched[at[hit]] = True
    for u in np.flatnonzero(~matched):
        k = int(led.key[u])
        out.append(Disagreement(f"{k >> _CODE_BITS:014d}", led.codes.names[k & ((1 << _CODE_BITS) - 1)],
                                "unknown_number", led.of(int(u), "out"), led.of(int(u), "in"), None))
    for (number_s, code), sides in sorted(led.odd.items()):
        out.append(Disagreement(number_s, code, "unknown_number", sides.get("out"), sides.get("in"), None))
    return out
