"""The monthly ledger (月度台账) as the reader hands it over: ``LedgerDraft`` and its lines.

``imports`` produces a draft from a workbook; ``ledgers`` accepts it as a new version. Every line
carries its ``SourceRef`` so any later problem can still be pinned to its cell.
Quantities are integer kilograms (see ``nofei.quantity``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from nofei.catalogue import Catalogue, Stream
from nofei.problems import Problem, SourceRef
from nofei.quantity import kg_to_tonnes

SHEET_COVER = "填报信息"
SHEET_STOCK = "产生贮存"
SHEET_TREAT = "利用处置"
SHEET_OUT = "转出"
SHEET_IN = "转入"


@dataclass(frozen=True, slots=True)
class StockLine:
    """A row of 产生贮存: opening stock, generation and closing stock of one code in the month."""

    code: str
    stream: Stream
    open_kg: int
    generated_kg: int
    close_kg: int
    name: str = ""
    note: str = ""
    ref: SourceRef | None = None
    close_column: str | None = None  # column letter of 期末贮存量, to pin balance errors
    form: str = ""  # 形态 (optional column; feeds the HJ 1259 declarations)
    harmful_components: str = ""  # 有害成分名称 (optional column)


@dataclass(frozen=True, slots=True)
class TreatmentLine:
    """A row of 利用处置: own utilisation or disposal by method code."""

    code: str
    stream: Stream
    method: str
    qty_kg: int
    product: str = ""
    note: str = ""
    ref: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class TransferLine:
    """A row of 转出 (direction ``out``) or 转入 (``in``); ``counterpart`` is the other unit's credit code."""

    direction: str
    day: date
    code: str
    stream: Stream
    qty_kg: int
    counterpart: str
    counterpart_name: str = ""
    manifest_no: str | None = None
    carrier: str | None = None
    planned_method: str | None = None
    note: str = ""
    ref: SourceRef | None = None


@dataclass(slots=True)
class LedgerDraft:
    """A monthly ledger read from a workbook, not yet accepted. ``month`` is ``YYYY-MM``."""

    credit_code: str
    unit_name: str
    month: str
    reporter: str = ""
    phone: str = ""
    stocks: list[StockLine] = field(default_factory=list)
    treatments: list[TreatmentLine] = field(default_factory=list)
    transfers: list[TransferLine] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    cover_refs: dict[str, SourceRef] = field(default_factory=dict)

    @property
    def year(self) -> int:
        return int(self.month[:4])

    def row_counts(self) -> dict[str, int]:
        return {
            SHEET_STOCK: len(self.stocks),
            SHEET_TREAT: len(self.treatments),
            SHEET_OUT: sum(1 for t in self.transfers if t.direction == "out"),
            SHEET_IN: sum(1 for t in self.transfers if t.direction == "in"),
        }


def balance_problems(draft: LedgerDraft, tolerance_kg: int = 1) -> list[Problem]:
    """The balance check of ``ledger-workbook.md`` (Checks across the workbook), per waste code:

    ``期初贮存量 + 本月产生量 + Σ转入 − Σ利用处置 − Σ转出 = 期末贮存量`` within ``tolerance_kg``
    (0.001 t by default). Also: every code used elsewhere must have a 产生贮存 row, once.
    """
    problems: list[Problem] = []
    stock: dict[str, StockLine] = {}
    for s in draft.stocks:
        if s.code in stock:
            problems.append(
                Problem.at(s.ref, "duplicate_code", f"废物代码 {s.code} 在产生贮存表中重复出现",
                           f"waste code {s.code} appears more than once in 产生贮存", value=s.code)
            )
        else:
            stock[s.code] = s
    flow_in: dict[str, int] = defaultdict(int)
    flow_out: dict[str, int] = defaultdict(int)
    first_ref: dict[str, SourceRef | None] = {}
    for t in draft.treatments:
        flow_out[t.code] += t.qty_kg
        first_ref.setdefault(t.code, t.ref)
    for tr in draft.transfers:
        if tr.direction == "in":
            flow_in[tr.code] += tr.qty_kg
        else:
            flow_out[tr.code] += tr.qty_kg
        first_ref.setdefault(tr.code, tr.ref)
    for code in sorted(set(flow_in) | set(flow_out)):
        if code not in stock:
            ref = first_ref.get(code)
            problems.append(
                Problem.at(ref, "missing_stock_row", f"废物代码 {code} 未在产生贮存表中填报",
                           f"waste code {code} has no row in 产生贮存", value=code)
            )
    for code, s in stock.items():
        left = s.open_kg + s.generated_kg + flow_in[code] - flow_out[code]
        if abs(left - s.close_kg) > tolerance_kg:
            ref = SourceRef(SHEET_STOCK, s.ref.row if s.ref else None, s.close_column, "期末贮存量")
            lt, rt = kg_to_tonnes(left), kg_to_tonnes(s.close_kg)
            problems.append(
                Problem.at(
                    ref, "unbalanced",
                    f"废物代码 {code} 不平衡：期初+产生+转入−利用处置−转出 = {lt} 吨，期末贮存量 = {rt} 吨",
                    f"waste code {code} does not balance: open+generated+in−treated−out = {lt} t, close = {rt} t",
                    value=str(rt),
                )
            )
    return problems


def stream_totals(draft: LedgerDraft, catalogue: Catalogue) -> dict[str, dict[str, int]]:
    """Receipt totals per stream in kg: generated, utilised, disposed, transferred_out, received."""
    out: dict[str, dict[str, int]] = {}

    def slot(stream: str) -> dict[str, int]:
        return out.setdefault(
            stream, {"generated": 0, "utilised": 0, "disposed": 0, "transferred_out": 0, "received": 0}
        )

    for s in draft.stocks:
        slot(s.stream)["generated"] += s.generated_kg
    for t in draft.treatments:
        cls = catalogue.method_class(t.method)
        slot(t.stream)["utilised" if cls == "utilisation" else "disposed"] += t.qty_kg
    for tr in draft.transfers:
        slot(tr.stream)["transferred_out" if tr.direction == "out" else "received"] += tr.qty_kg
    return out
