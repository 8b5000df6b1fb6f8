"""The nine 无废城市 indicators, exactly as ``shared/domain/indicators.md`` §3 computes them.

Inputs are, per stream, the year's data and its fate attribution (``nofei.flows.fate``); masses
are integer kilograms (fates rounded once per region total, see ``fate``), and every rate is an
exact ``Decimal`` quotient of those integers, rounded half-even to 0.01 % (intensity to 0.0001
t/万元). A rate whose denominator is 0 is ``None`` with a note (never 0 or 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np

from nofei.catalogue import CITY, Catalogue
from nofei.flows.fate import FateResult, RegionFate
from nofei.flows.model import StreamYearData
from nofei.quantity import kg_to_tonnes


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    key: str
    name: str
    unit: str
    streams: tuple[str, ...]
    formula: str


INDICATORS: tuple[IndicatorDef, ...] = (
    IndicatorDef("general_industrial_utilisation_rate", "一般工业固体废物综合利用率", "%", ("general_industrial",),
                 "U / (G + U_prior) × 100"),
    IndicatorDef("general_industrial_storage_disposal", "一般工业固体废物贮存处置量", "t", ("general_industrial",),
                 "S + D"),
    IndicatorDef("general_industrial_intensity", "一般工业固体废物产生强度", "t/万元", ("general_industrial",),
                 "G / 工业增加值"),
    IndicatorDef("hazardous_utilisation_rate", "工业危险废物综合利用率", "%", ("hazardous",),
                 "U / (G + U_prior) × 100"),
    IndicatorDef("hazardous_utilisation_disposal_rate", "工业危险废物利用处置率", "%", ("hazardous",),
                 "(U + D) / (G + U_prior + D_prior) × 100"),
    IndicatorDef("medical_central_disposal_rate", "医疗废物集中处置率", "%", ("medical",),
                 "Σ A_i · Σ_j≠i P_ij (B_jU + B_jD) / Σ A_i × 100"),
    IndicatorDef("agricultural_film_recovery_rate", "农膜回收率", "%", ("agricultural_film",),
                 "Σ (Σ_j T_ij + OwnU_i + OwnD_i) / Σ G_i × 100 over film users"),
    IndicatorDef("kitchen_waste_utilisation_rate", "餐厨垃圾资源化利用率", "%", ("kitchen_waste",), "U / G × 100"),
    IndicatorDef("manifest_execution_rate", "危险废物转移电子联单执行率", "%", ("hazardous", "medical"),
                 "转出 rows with a well-formed 联单编号 ÷ all 转出 rows × 100 (by count)"),
)
INDICATOR_KEYS: tuple[str, ...] = tuple(d.key for d in INDICATORS)
BY_KEY: dict[str, IndicatorDef] = {d.key: d for d in INDICATORS}
NEEDED_STREAMS: tuple[str, ...] = ("general_industrial", "hazardous", "medical", "agricultural_film", "kitchen_waste")

_PCT = Decimal("0.01")
_INTENSITY = Decimal("0.0001")


@dataclass
class Figure:
    """One computed indicator. ``numerator``/``denominator`` are tonnes (rows for the manifest rate)."""

    key: str
    name: str
    unit: str
    value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    note: str | None = None
    units: set[str] = field(default_factory=set)
    ledgers: set[int] = field(default_factory=set)
    target: Decimal | None = None
    comparator: str | None = None
    meets_target: bool | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON row of the issue (numbers as floats; exactness lives in the Decimals)."""
        def f(d: Decimal | None) -> float | None:
            return None if d is None else float(d)

        return {"key": self.key, "name": self.name, "value": f(self.value), "unit": self.unit,
                "numerator": f(self.numerator), "denominator": f(self.denominator), "target": f(self.target),
                "meets_target": self.meets_target, "units_count": len(self.units),
                "ledgers_count": len(self.ledgers), "note": self.note}


def rate(numerator: int, denominator: int) -> Decimal | None:
    """``numerator / denominator × 100`` exactly, rounded half-even to 0.01; ``None`` if the denominator is 0."""
    if denominator == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(_PCT, rounding=ROUND_HALF_EVEN)


@dataclass
class StreamView:
    """One stream's data and fates restricted to the producers of a region."""

    data: StreamYearData
    fate: FateResult
    region_units: set[str]
    idx: np.ndarray  # producer node indices (G > 0) of the region's units
    totals: RegionFate

    def producer_units(self) -> set[str]:
        return {self.fate.keys[i][0] for i in self.idx.tolist()}

    def downstream_units(self) -> set[str]:
        mask = self.fate.reachable(self.idx)
        return {self.fate.keys[i][0] for i in np.nonzero(mask)[0].tolist()}

    def ledgers_of(self, units: set[str]) -> set[int]:
        out: set[int] = set()
        for u in units:
            out |= self.data.ledgers.get(u, set())
        return out


def region_units(data: StreamYearData, region: str) -> set[str]:
    """Credit codes of the units of ``data`` registered in ``region`` (city, district or park)."""
    return {cc for cc, u in data.units.items() if u.in_region(region, CITY)} | (
        {n.unit for n in data.nodes.values()} if region == CITY else set())


def stream_view(data: StreamYearData, fate: FateResult, region: str) -> StreamView:
    units = region_units(data, region)
    idx = fate.producers(None if region == CITY else units)
    return StreamView(data, fate, units, idx, fate.totals(idx))


def _t(kg: int) -> Decimal:
    return kg_to_tonnes(kg)


def compute(streams: Mapping[str, tuple[StreamYearData, FateResult]], *, region: str, year: int,
            catalogue: Catalogue, value_added: Decimal | None) -> list[Figure]:
    """All nine indicators for ``region`` and ``year`` (indicators.md §3), in the order of the table.

    ``streams`` maps each of ``NEEDED_STREAMS`` to its (data, fate); ``value_added`` is the 工业增加值
    of the region and year in 万元, or ``None`` when not entered.
    """
    views = {s: stream_view(d, f, region) for s, (d, f) in streams.items()}
    figs: list[Figure] = []

    def whole(s: str) -> tuple[set[str], set[int]]:
        v = views[s]
        units = v.producer_units()
        return units, v.ledgers_of(units | v.downstream_units())

    def only_producers(s: str) -> tuple[set[str], set[int]]:
        v = views[s]
        units = v.producer_units()
        return units, v.ledgers_of(units)

    def rate_fig(d: IndicatorDef, num: int, den: int, who: tuple[set[str], set[int]], empty: str) -> Figure:
        value = rate(num, den)
        return Figure(d.key, d.name, d.unit, value, _t(num), _t(den), None if den else empty, who[0], who[1])

    def no_gen(s: str) -> str:
        return f"分母为 0：{year} 年本区域无该类废物 (denominator is 0: no {s} waste in the region in {year})"

    # 1 一般工业固体废物综合利用率
    g = views["general_industrial"].totals
    d0 = BY_KEY["general_industrial_utilisation_rate"]
    figs.append(rate_fig(d0, g.utilised, g.generated + g.utilised_prior, whole("general_industrial"),
                         no_gen("general_industrial")))
    # 2 贮存处置量 S + D
    d1 = BY_KEY["general_industrial_storage_disposal"]
    sd = _t(g.stored + g.disposed)
    u1, l1 = whole("general_industrial")
    figs.append(Figure(d1.key, d1.name, d1.unit, sd, sd, None, None, u1, l1))
    # 3 产生强度 G / 工业增加值
    d2 = BY_KEY["general_industrial_intensity"]
    u2, l2 = only_producers("general_industrial")
    gt = _t(g.generated)
    if value_added is None or value_added == 0:
        note = ("未录入工业增加值 (industrial value added not entered for this region and year)"
                if value_added is None else "工业增加值为 0 (industrial value added is 0)")
        figs.append(Figure(d2.key, d2.name, d2.unit, None, gt, value_added, note, u2, l2))
    else:
        with localcontext() as ctx:
            ctx.prec = 40
            val = (gt / value_added).quantize(_INTENSITY, rounding=ROUND_HALF_EVEN)
        figs.append(Figure(d2.key, d2.name, d2.unit, val, gt, value_added, None, u2, l2))
    # 4, 5 hazardous
    h = views["hazardous"].totals
    figs.append(rate_fig(BY_KEY["hazardous_utilisation_rate"], h.utilised, h.generated + h.utilised_prior,
                         whole("hazardous"), no_gen("hazardous")))
    figs.append(rate_fig(BY_KEY["hazardous_utilisation_disposal_rate"], h.utilised + h.disposed,
                         h.generated + h.utilised_prior + h.disposed_prior, whole("hazardous"), no_gen("hazardous")))
    # 6 medical: central treatment only (a unit other than the producer)
    m = views["medical"].totals
    figs.append(rate_fig(BY_KEY["medical_central_disposal_rate"], m.central, m.attributable, whole("medical"),
                         no_gen("medical")))
    # 7 film: (Σ T + OwnU + OwnD) / Σ G over film users (G > 0)
    fv = views["agricultural_film"]
    rec = 0
    for i in fv.idx.tolist():
        nd = fv.data.nodes[fv.fate.keys[i]]
        rec += nd.transferred + nd.own_u + nd.own_d
    figs.append(rate_fig(BY_KEY["agricultural_film_recovery_rate"], rec, fv.totals.generated,
                         only_producers("agricultural_film"), no_gen("agricultural_film")))
    # 8 kitchen waste U / G
    k = views["kitchen_waste"].totals
    figs.append(rate_fig(BY_KEY["kitchen_waste_utilisation_rate"], k.utilised, k.generated, whole("kitchen_waste"),
                         no_gen("kitchen_waste")))
    # 9 manifests, by count
    d8 = BY_KEY["manifest_execution_rate"]
    rows = good = 0
    m_units: set[str] = set()
    m_ledgers: set[int] = set()
    for s in ("hazardous", "medical"):
        v = views[s]
        for u, (r, ok) in v.data.manifest_rows.items():
            if r and (region == CITY or u in v.region_units):
                rows += r
                good += ok
                m_units.add(u)
                m_ledgers |= v.data.ledgers.get(u, set())
    mval = rate(good, rows)
    figs.append(Figure(d8.key, d8.name, d8.unit, mval, Decimal(good), Decimal(rows),
                       None if rows else f"分母为 0：{year} 年本区域无危险废物/医疗废物转出记录 (no hazardous or "
                                         "medical 转出 rows in the region)", m_units, m_ledgers))
    for f in figs:
        t = catalogue.target_for(f.key, region, year)
        if t is not None:
            f.target, f.comparator = t.target, t.comparator
            f.meets_target = t.met_by(f.value)
        extra = _fate_note(f.key, views)
        if extra:
            f.note = f"{f.note}; {extra}" if f.note else extra
    return figs


def _fate_note(key: str, views: Mapping[str, StreamView]) -> str | None:
    """X is shown, not hidden (indicators.md §4): say how much of the stream is unresolved."""
    d = BY_KEY[key]
    if d.unit != "%" or key in ("manifest_execution_rate", "agricultural_film_recovery_rate"):
        return None
    t = views[d.streams[0]].totals
    if t.unresolved <= 0:
        return None
    msg = f"去向不明 X = {_t(t.unresolved)} 吨 (unresolved)"
    if t.trapped:
        msg += f"，其中闭环无出口 {_t(t.trapped)} 吨 (closed loops with no exit)"
    return msg
