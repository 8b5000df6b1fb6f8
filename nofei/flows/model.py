"""The per-(stream, year) inputs of the flow graph (indicators.md §1), in integer kilograms.

``StreamYearData`` is what the storage layer aggregates from the current versions of accepted
ledgers and what the pure graph, fate and indicator code read. ``StreamYearBuilder`` accumulates it
row by row (month order does not matter: open/close come from the earliest/latest month), so the
same code serves the SQL loader and the tests that build a city from ``LedgerDraft`` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft
from nofei.domain.manifests import is_well_formed_number
from nofei.domain.regions import in_region

NodeKey = tuple[str, str]  # (credit_code, waste_code)
FATES: tuple[str, ...] = ("U", "D", "S", "X")
FATE_NAMES_ZH: dict[str, str] = {"U": "利用", "D": "处置", "S": "贮存", "X": "去向不明"}


def is_wellformed_manifest(number: str | None) -> bool:
    """A 联单编号 is well formed when it is 14 digits (ledger-workbook.md, sheet 转出)."""
    return number is not None and is_well_formed_number(str(number).strip())


@dataclass(slots=True)
class NodeFlows:
    """One node (unit *i*, code *c*) of the yearly graph: the symbols of indicators.md §1, in kg."""

    unit: str
    code: str
    generated: int = 0  # G
    received: int = 0  # In
    own_u: int = 0  # OwnU
    own_d: int = 0  # OwnD
    open: int = 0  # 期初贮存量 of the earliest month reported
    close: int = 0  # 期末贮存量 of the latest month reported
    first_month: str = ""
    last_month: str = ""
    transfers: dict[str, int] = field(default_factory=dict)  # receiver credit code -> Σ 转出 kg
    transfer_rows: dict[str, int] = field(default_factory=dict)  # receiver credit code -> 转出 rows

    @property
    def stored(self) -> int:
        return max(0, self.close - self.open)

    @property
    def drawn(self) -> int:
        return max(0, self.open - self.close)

    @property
    def transferred(self) -> int:
        return sum(self.transfers.values())

    @property
    def outflow(self) -> int:
        """``O = OwnU + OwnD + Σ T + stored`` — the sum of the node's edge weights."""
        return self.own_u + self.own_d + self.transferred + self.stored

    @property
    def attributable(self) -> int:
        """``A_n = G_n + drawn_n`` (indicators.md §2)."""
        return self.generated + self.drawn


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What the indicators need to know of a registered unit: its region and roles."""

    credit_code: str
    name: str = ""
    district: str = ""
    park: str | None = None
    roles: tuple[str, ...] = ()
    unit_type: str = "industrial"  # industrial | social_source | medical_institution | licensed
    small_clinic: bool = False  # a medical institution with ≤ 19 beds (豁免清单 item 2)

    def in_region(self, region: str, city: str = "630100") -> bool:
        """A unit belongs to the city, its registered district and its park (indicators.md, header)."""
        return in_region(region, self.district, self.park, city=city)


@dataclass(slots=True)
class StreamYearData:
    """Everything the graph of one stream and year is built from."""

    stream: str
    year: int
    nodes: dict[NodeKey, NodeFlows] = field(default_factory=dict)
    units: dict[str, UnitInfo] = field(default_factory=dict)
    ledgers: dict[str, set[int]] = field(default_factory=dict)  # unit -> ids of ledgers with rows of the stream
    manifest_rows: dict[str, list[int]] = field(default_factory=dict)  # unit -> [转出 rows, well-formed 联单]

    def unit(self, credit_code: str) -> UnitInfo:
        return self.units.get(credit_code) or UnitInfo(credit_code)


class StreamYearBuilder:
    """Accumulate ledger rows (any order) into a ``StreamYearData``."""

    def __init__(self, stream: str, year: int, units: Mapping[str, UnitInfo] | None = None) -> None:
        self.data = StreamYearData(stream, year, units=dict(units or {}))

    def _node(self, unit: str, code: str) -> NodeFlows:
        key = (unit, code)
        n = self.data.nodes.get(key)
        if n is None:
            n = self.data.nodes[key] = NodeFlows(unit, code)
        return n

    def ledger(self, unit: str, ledger_id: int | None) -> None:
        if ledger_id is not None:
            self.data.ledgers.setdefault(unit, set()).add(ledger_id)

    def stock(self, unit: str, month: str, code: str, open_kg: int, generated_kg: int, close_kg: int) -> None:
        n = self._node(unit, code)
        n.generated += generated_kg
        if not n.first_month or month < n.first_month:
            n.first_month, n.open = month, open_kg
        if not n.last_month or month > n.last_month:
            n.last_month, n.close = month, close_kg

    def treatment(self, unit: str, code: str, utilisation: bool, qty_kg: int) -> None:
        n = self._node(unit, code)
        if utilisation:
            n.own_u += qty_kg
        else:
            n.own_d += qty_kg

    def transfer_out(self, unit: str, code: str, receiver: str, qty_kg: int, *, rows: int = 1,
                     wellformed: int = 0) -> None:
        n = self._node(unit, code)
        n.transfers[receiver] = n.transfers.get(receiver, 0) + qty_kg
        n.transfer_rows[receiver] = n.transfer_rows.get(receiver, 0) + rows
        m = self.data.manifest_rows.setdefault(unit, [0, 0])
        m[0] += rows
        m[1] += wellformed

    def transfer_in(self, unit: str, code: str, qty_kg: int) -> None:
        self._node(unit, code).received += qty_kg

    def build(self) -> StreamYearData:
        return self.data


def manifest_exempt(catalogue: Catalogue, code: str, unit: UnitInfo | None) -> bool:
    """A 转出 of ``code`` by ``unit`` is exempt from the 联单 at the transport stage (豁免清单; e.g. 900-052-31,
    or HW01 of a clinic with ≤ 19 beds), so it is in neither term of ``manifest_execution_rate``."""
    return catalogue.transport_exempt(code, small_clinic=bool(unit and unit.small_clinic)) is not None


def data_from_drafts(drafts: Iterable[tuple[int | None, LedgerDraft]], *, stream: str, year: int,
                     catalogue: Catalogue, units: Mapping[str, UnitInfo] | None = None) -> StreamYearData:
    """Build the data of one stream and year from current ledger versions ``(ledger_id, draft)``.

    The pure twin of ``nofei.storage.flowdata``: tests use it to check the SQL loader row for row.
    """
    b = StreamYearBuilder(stream, year, units)
    cat = catalogue.for_year(year)
    for lid, d in drafts:
        if d.year != year:
            continue
        cc = d.credit_code
        touched = False
        for s in d.stocks:
            if s.stream == stream:
                b.stock(cc, d.month, s.code, s.open_kg, s.generated_kg, s.close_kg)
                touched = True
        for t in d.treatments:
            if t.stream == stream:
                b.treatment(cc, t.code, catalogue.method_class(t.method) == "utilisation", t.qty_kg)
                touched = True
        for tr in d.transfers:
            if tr.stream != stream:
                continue
            touched = True
            if tr.direction == "out":
                exempt = manifest_exempt(cat, tr.code, b.data.units.get(cc))
                b.transfer_out(cc, tr.code, tr.counterpart, tr.qty_kg, rows=0 if exempt else 1,
                               wellformed=0 if exempt else int(is_wellformed_manifest(tr.manifest_no)))
            else:
                b.transfer_in(cc, tr.code, tr.qty_kg)
        if touched:
            b.ledger(cc, lid)
    return b.build()
