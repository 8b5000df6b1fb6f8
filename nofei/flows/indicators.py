"""The 无废城市 indicators, exactly as ``shared/domain/indicators.md`` §3 computes them.

★ marks the national 必选 indicators (official-check.md §1, 2019 definitions); the others are national
optional ones or Xining's local figures (``IndicatorDef.scope``). Issue 18 follows the official definitions:
工业固体废物产生强度 includes 工业危险废物 (2019 #1); the hazardous rates are over **industrial** producers
(2019 #26); the film rate is 地膜 only (2019 #19); the medical ★ indicator counts institutions (2019 #27).

Inputs are, per stream, the year's data and its fate attribution (``nofei.flows.fate``); masses
are integer kilograms (fates rounded once per region total, see ``fate``), and every rate is an
exact ``Decimal`` quotient of those integers, rounded half-even to 0.01 % (intensity to 0.0001
t/万元). A rate whose denominator is 0 is ``None`` with a note (never 0 or 100).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import numpy as np

from nofei.catalogue import CITY, Catalogue
from nofei.domain.units import INDUSTRIAL_TYPES
from nofei.flows.fate import FateResult, RegionFate
from nofei.flows.model import StreamYearData
from nofei.quantity import kg_to_tonnes


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    """One indicator of indicators.md §3. ``national``: a ★ 必选 indicator of the national 无废城市 system;
    ``scope``: ``national`` (a definition of the national system, official-check.md §1) or ``local`` (Xining's
    plan or a figure of this project)."""

    key: str
    name: str
    unit: str
    streams: tuple[str, ...]
    formula: str
    national: bool = False
    scope: str = "local"


INDICATORS: tuple[IndicatorDef, ...] = (
    IndicatorDef("general_industrial_utilisation_rate", "一般工业固体废物综合利用率", "%", ("general_industrial",),
                 "U / (G + U_prior) × 100", True, "national"),
    IndicatorDef("general_industrial_storage_disposal", "一般工业固体废物贮存处置量", "t", ("general_industrial",),
                 "S + D", True, "national"),
    IndicatorDef("general_industrial_intensity", "一般工业固体废物产生强度", "t/万元", ("general_industrial",),
                 "G / 工业增加值 (no target)"),
    IndicatorDef("industrial_solid_waste_intensity", "工业固体废物产生强度", "t/万元", ("general_industrial", "hazardous"),
                 "(G of general_industrial + G of industrial hazardous) / 工业增加值", True, "national"),
    IndicatorDef("hazardous_utilisation_rate", "工业危险废物综合利用率", "%", ("hazardous",),
                 "U / (G + U_prior) × 100 over industrial producers (unit_type industrial or licensed)",
                 False, "national"),
    IndicatorDef("hazardous_utilisation_disposal_rate", "工业危险废物利用处置率", "%", ("hazardous",),
                 "(U + D) / (G + U_prior + D_prior) × 100 over industrial producers (unit_type industrial or licensed)"),
    IndicatorDef("medical_central_disposal_rate", "医疗废物集中处置率", "%", ("medical",),
                 "Σ A_i · Σ_j≠i P_ij (B_jU + B_jD) / Σ A_i × 100"),
    IndicatorDef("medical_collection_coverage_rate", "医疗废物收集处置体系覆盖率", "%", ("medical",),
                 "medical institutions whose medical waste went to a unit with an HW01 permit ÷ medical_institutions "
                 "entered for the region and year × 100", True, "national"),
    IndicatorDef("agricultural_film_recovery_rate", "农膜（地膜）回收率", "%", ("agricultural_film",),
                 "Σ (Σ_j T_ij + OwnU_i + OwnD_i) / Σ G_i × 100 over users of 地膜 (NM01)", False, "national"),
    IndicatorDef("greenhouse_film_recovery_rate", "棚膜回收率", "%", ("agricultural_film",),
                 "Σ (Σ_j T_ij + OwnU_i + OwnD_i) / Σ G_i × 100 over users of 棚膜 (NM02)"),
    IndicatorDef("kitchen_waste_utilisation_rate", "餐厨垃圾资源化利用率", "%", ("kitchen_waste",), "U / G × 100"),
    IndicatorDef("manifest_execution_rate", "危险废物转移电子联单执行率", "%", ("hazardous", "medical"),
                 "转出 rows with a well-formed 联单编号 ÷ all 转出 rows × 100 (by count), rows exempt from the 联单 at "
                 "the transport stage (豁免清单) left out of both"),
)
INDICATOR_KEYS: tuple[str, ...] = tuple(d.key for d in INDICATORS)
BY_KEY: dict[str, IndicatorDef] = {d.key: d for d in INDICATORS}
NEEDED_STREAMS: tuple[str, ...] = ("general_industrial", "hazardous", "medical", "agricultural_film", "kitchen_waste")
HAZARDOUS_KEYS: tuple[str, ...] = ("hazardous_utilisation_rate", "hazardous_utilisation_disposal_rate")
FILM_CODES: dict[str, str] = {"agricultural_film_recovery_rate": "NM01", "greenhouse_film_recovery_rate": "NM02"}
"""地膜 (NM01) for the plan's 农田残膜回收率 and the 2019 地膜回收率; 棚膜 (NM02) reported on its own."""

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
    beside: dict[str, dict[str, Decimal | None]] | None = None  # e.g. social-source hazardous waste, not inside

    def as_dict(self) -> dict[str, object]:
        """The JSON row of the issue (numbers as floats; exactness lives in the Decimals)."""
        def f(d: Decimal | None) -> float | None:
            return None if d is None else float(d)

        d = BY_KEY.get(self.key)
        return {"key": self.key, "name": self.name, "value": f(self.value), "unit": self.unit,
                "numerator": f(self.numerator), "denominator": f(self.denominator), "target": f(self.target),
                "meets_target": self.meets_target, "units_count": len(self.units),
                "ledgers_count": len(self.ledgers), "note": self.note,
                "national": bool(d and d.national), "scope": d.scope if d else "local",
                "beside": None if self.beside is None else
                {k: {n: f(v) for n, v in row.items()} for k, row in self.beside.items()}}


def rate(numerator: int, denominator: int) -> Decimal | None:
    """``numerator / denominator × 100`` exactly, rounded half-even to 0.01; ``None`` if the denominator is 0."""
    if denominator == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(_PCT, rounding=ROUND_HALF_EVEN)


@dataclass
class StreamView:
    """One stream's data and fates restricted to the producers of a region.

    Views are memoised on their ``FateResult`` (``fate.memo``, per data object, region and filter), and what
    they derive (producer and downstream units, ledgers) on the view, so a read after a write recomputes
    only the streams the write touched: the fates of the others are the same objects."""

    data: StreamYearData
    fate: FateResult
    region_units: set[str]
    idx: np.ndarray  # producer node indices (G > 0) of the region's units
    totals: RegionFate
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def producer_units(self) -> set[str]:
        got = self._memo.get("producers")
        if got is None:
            keys = self.fate.keys
            got = self._memo["producers"] = {keys[i][0] for i in self.idx.tolist()}
        return got

    def downstream_units(self) -> set[str]:
        got = self._memo.get("downstream")
        if got is None:
            mask = self.fate.reachable(self.idx)
            keys = self.fate.keys
            got = self._memo["downstream"] = {keys[i][0] for i in np.nonzero(mask)[0].tolist()}
        return got

    def ledgers_of(self, units: set[str]) -> set[int]:
        out: set[int] = set()
        led = self.data.ledgers
        for u in units:
            got = led.get(u)
            if got:
                out |= got
        return out

    def who(self, downstream: bool = True) -> tuple[set[str], set[int]]:
        """The units behind a figure of the view (its producers) and the ledgers behind it (theirs and, with
        ``downstream``, those of every unit their waste reached)."""
        k = ("who", downstream)
        got = self._memo.get(k)
        if got is None:
            units = self.producer_units()
            got = self._memo[k] = (units, self.ledgers_of(units | self.downstream_units() if downstream else units))
        return got


def region_units(data: StreamYearData, region: str) -> set[str]:
    """Credit codes of the units of ``data`` registered in ``region`` (city, district or park)."""
    return {cc for cc, u in data.units.items() if u.in_region(region, CITY)} | (
        {n.unit for n in data.nodes.values()} if region == CITY else set())


@dataclass
class _Regions:
    """The units and producer nodes of one (data, fate) grouped by region, from one pass over each."""

    units: dict[str, set[str]]
    producers: dict[str, list[int]]


def _regions(data: StreamYearData, fate: FateResult) -> _Regions:
    memo = fate.memo.get("regions")
    if memo is not None and memo[0] is data:
        return memo[1]
    units: dict[str, set[str]] = {CITY: set(data.units) | {n.unit for n in data.nodes.values()}}
    for cc, u in data.units.items():
        units.setdefault(u.district, set()).add(cc)
        if u.park is not None:
            units.setdefault(u.park, set()).add(cc)
    prods: dict[str, list[int]] = {}
    keys = fate.keys
    for i in fate.producers().tolist():
        info = data.units.get(keys[i][0])
        if info is not None:
            prods.setdefault(info.district, []).append(i)
            if info.park is not None and info.park != info.district:
                prods.setdefault(info.park, []).append(i)
    out = _Regions(units, prods)
    fate.memo["regions"] = (data, out)
    return out


def stream_view(data: StreamYearData, fate: FateResult, region: str, *, unit_types: Iterable[str] | None = None,
                code: str | None = None) -> StreamView:
    """The producers of ``region`` — only units of ``unit_types`` and nodes of ``code`` when given (the
    industrial producers of the hazardous indicators, the 地膜 or 棚膜 users of the film indicators)."""
    types = None if unit_types is None else tuple(sorted(set(unit_types)))
    key = ("view", region, types, code)
    memo = fate.memo.get(key)
    if memo is not None and memo[0] is data:
        return memo[1]
    reg = _regions(data, fate)
    units = set(reg.units.get(region, ())) if region != CITY else set(reg.units[CITY])
    if region == CITY:
        idx = fate.producers()
    else:
        idx = np.array(sorted(reg.producers.get(region, ())), dtype=np.int64)
    if types is not None:
        units = {u for u in units if data.unit(u).unit_type in types}
        keys = fate.keys
        idx = np.array([i for i in idx.tolist() if keys[i][0] in units], dtype=np.int64)
    if code is not None:
        idx = np.array([i for i in idx.tolist() if fate.keys[i][1] == code], dtype=np.int64)
    view = StreamView(data, fate, units, idx, fate.totals(idx))
    fate.memo[key] = (data, view)
    return view


def key_view(key: str, streams: Mapping[str, tuple[StreamYearData, FateResult]], region: str,
             stream: str | None = None) -> StreamView:
    """The producers behind indicator ``key`` (of ``stream``, for a key over two streams): the lineage reads
    the same nodes as the figure."""
    s = stream or BY_KEY[key].streams[0]
    data, fate = streams[s]
    if s == "hazardous" and (key in HAZARDOUS_KEYS or key == "industrial_solid_waste_intensity"):
        return stream_view(data, fate, region, unit_types=INDUSTRIAL_TYPES)
    if key in FILM_CODES:
        return stream_view(data, fate, region, code=FILM_CODES[key])
    return stream_view(data, fate, region)


def recovered_kg(view: StreamView) -> int:
    """Σ (Σ_j T_ij + OwnU_i + OwnD_i) over the view's producer nodes: the film 回收量 (indicators.md §3)."""
    rec = 0
    for i in view.idx.tolist():
        nd = view.data.nodes[view.fate.keys[i]]
        rec += nd.transferred + nd.own_u + nd.own_d
    return rec


def covered_institutions(data: StreamYearData, region: str, hw01_holders: Iterable[str]) -> set[str]:
    """Medical institutions (``unit_type`` medical_institution) of ``region`` whose medical waste went, in the
    year, to a unit holding a permit that covers HW01 — a transfer to such a unit, or treatment on site by an
    institution that holds one itself (indicators.md §3, ``medical_collection_coverage_rate``)."""
    holders = set(hw01_holders)
    out: set[str] = set()
    for (u, _code), nd in data.nodes.items():
        info = data.unit(u)
        if info.unit_type != "medical_institution" or not info.in_region(region, CITY):
            continue
        if any(kg > 0 and r in holders and r != u for r, kg in nd.transfers.items()) or (
                u in holders and nd.own_u + nd.own_d > 0):
            out.add(u)
    return out


def _t(kg: int) -> Decimal:
    return kg_to_tonnes(kg)


def _intensity(tonnes: Decimal, value_added: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return (tonnes / value_added).quantize(_INTENSITY, rounding=ROUND_HALF_EVEN)


def compute(streams: Mapping[str, tuple[StreamYearData, FateResult]], *, region: str, year: int,
            catalogue: Catalogue, value_added: Decimal | None, medical_institutions: int | None = None,
            hw01_holders: Iterable[str] = ()) -> list[Figure]:
    """Every indicator of indicators.md §3 for ``region`` and ``year``, in the order of the table.

    ``streams`` maps each of ``NEEDED_STREAMS`` to its (data, fate); ``value_added`` is the 工业增加值
    of the region and year in 万元, ``medical_institutions`` the number of 医疗卫生机构 entered for them
    (``None``: not entered), ``hw01_holders`` the units holding a permit that covers HW01 in the year.
    The hazardous figures count industrial producers only (``unit_type`` industrial or licensed); what
    social-source producers generate is reported ``beside`` them (indicators.md §3, last paragraph).
    """
    views = {s: stream_view(d, f, region) for s, (d, f) in streams.items()}
    haz = key_view("hazardous_utilisation_rate", streams, region)
    figs: list[Figure] = []

    def who(v: StreamView, downstream: bool = True) -> tuple[set[str], set[int]]:
        return v.who(downstream)

    def rate_fig(d: IndicatorDef, num: int, den: int, w: tuple[set[str], set[int]], empty: str) -> Figure:
        value = rate(num, den)
        return Figure(d.key, d.name, d.unit, value, _t(num), _t(den), None if den else empty, w[0], w[1])

    def no_gen(s: str) -> str:
        return f"分母为 0：{year} 年本区域无该类废物 (denominator is 0: no {s} waste in the region in {year})"

    def intensity_fig(d: IndicatorDef, gen_kg: int, w: tuple[set[str], set[int]]) -> Figure:
        gt = _t(gen_kg)
        if value_added is None or value_added == 0:
            note = ("未录入工业增加值 (industrial value added not entered for this region and year)"
                    if value_added is None else "工业增加值为 0 (industrial value added is 0)")
            return Figure(d.key, d.name, d.unit, None, gt, value_added, note, w[0], w[1])
        return Figure(d.key, d.name, d.unit, _intensity(gt, value_added), gt, value_added, None, w[0], w[1])

    # 一般工业固体废物综合利用率 ★ U / (G + U_prior)
    g = views["general_industrial"].totals
    gi_who = who(views["general_industrial"])
    figs.append(rate_fig(BY_KEY["general_industrial_utilisation_rate"], g.utilised, g.generated + g.utilised_prior,
                         gi_who, no_gen("general_industrial")))
    # 贮存处置量 ★ S + D
    d1 = BY_KEY["general_industrial_storage_disposal"]
    sd = _t(g.stored + g.disposed)
    figs.append(Figure(d1.key, d1.name, d1.unit, sd, sd, None, None, gi_who[0], gi_who[1]))
    # 一般工业固体废物产生强度 G / 工业增加值 (no target)
    gi_prod = who(views["general_industrial"], downstream=False)
    figs.append(intensity_fig(BY_KEY["general_industrial_intensity"], g.generated, gi_prod))
    # 工业固体废物产生强度 ★ (G general industrial + G industrial hazardous) / 工业增加值 (the 0.87 target)
    hz_prod = who(haz, downstream=False)
    figs.append(intensity_fig(BY_KEY["industrial_solid_waste_intensity"], g.generated + haz.totals.generated,
                              (gi_prod[0] | hz_prod[0], gi_prod[1] | hz_prod[1])))
    # 工业危险废物 rates over industrial producers; social-source producers beside
    h = haz.totals
    hz_who = who(haz)
    social = stream_view(*streams["hazardous"], region, unit_types=("social_source",)).totals
    f_u = rate_fig(BY_KEY["hazardous_utilisation_rate"], h.utilised, h.generated + h.utilised_prior, hz_who,
                   no_gen("industrial hazardous"))
    f_u.beside = {"social_source": _beside(social, rate(social.utilised, social.generated + social.utilised_prior))}
    figs.append(f_u)
    f_ud = rate_fig(BY_KEY["hazardous_utilisation_disposal_rate"], h.utilised + h.disposed,
                    h.generated + h.utilised_prior + h.disposed_prior, hz_who, no_gen("industrial hazardous"))
    f_ud.beside = {"social_source": _beside(social, rate(
        social.utilised + social.disposed, social.generated + social.utilised_prior + social.disposed_prior))}
    figs.append(f_ud)
    # 医疗废物集中处置率 (local): central treatment only (a unit other than the producer)
    m = views["medical"].totals
    figs.append(rate_fig(BY_KEY["medical_central_disposal_rate"], m.central, m.attributable, who(views["medical"]),
                         no_gen("medical")))
    # 医疗废物收集处置体系覆盖率 ★: institutions, not tonnes
    figs.append(_coverage(streams["medical"][0], region, year, medical_institutions, hw01_holders))
    # 农膜（地膜）回收率 over NM01 users; 棚膜回收率 over NM02 users: (Σ T + OwnU + OwnD) / Σ G
    for key, code in FILM_CODES.items():
        fv = key_view(key, streams, region)
        figs.append(rate_fig(BY_KEY[key], recovered_kg(fv), fv.totals.generated, who(fv, downstream=False),
                             f"分母为 0：{year} 年本区域无 {code} 使用量 (denominator is 0: no {code} used in the region)"))
    # 餐厨垃圾资源化利用率 (local) U / G
    k = views["kitchen_waste"].totals
    figs.append(rate_fig(BY_KEY["kitchen_waste_utilisation_rate"], k.utilised, k.generated, who(views["kitchen_waste"]),
                         no_gen("kitchen_waste")))
    # 电子联单执行率 (local), by count; rows exempt at the transport stage are not in manifest_rows
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
        extra = _fate_note(f.key, views, haz)
        if extra:
            f.note = f"{f.note}; {extra}" if f.note else extra
    return figs


def _beside(t: RegionFate, value: Decimal | None) -> dict[str, Decimal | None]:
    """Social-source hazardous waste, reported beside the industrial figure (not inside it)."""
    return {"generated_t": _t(t.generated), "utilised_t": _t(t.utilised), "disposed_t": _t(t.disposed),
            "value": value}


def _coverage(data: StreamYearData, region: str, year: int, total: int | None, holders: Iterable[str]) -> Figure:
    """医疗废物收集处置体系覆盖率 ★ = covered institutions ÷ 医疗卫生机构总数 × 100 (2019 #27: a count of
    institutions, the total from 卫健委, entered per region and year; indicators.md §3)."""
    d = BY_KEY["medical_collection_coverage_rate"]
    covered = covered_institutions(data, region, holders)
    ledgers: set[int] = set()
    for u in covered:
        ledgers |= data.ledgers.get(u, set())
    num = Decimal(len(covered))
    if total is None:
        return Figure(d.key, d.name, d.unit, None, num, None,
                      f"未录入 {year} 年本区域医疗卫生机构总数 (medical_institutions not entered for this region and year)",
                      covered, ledgers)
    if total == 0:
        return Figure(d.key, d.name, d.unit, None, num, Decimal(0), "医疗卫生机构总数为 0 (medical_institutions is 0)",
                      covered, ledgers)
    value = rate(len(covered), total)
    note = None
    if len(covered) > total:
        note = (f"纳入体系的机构 {len(covered)} 家多于录入的总数 {total} 家，请核对 "
                "(more institutions covered than the entered total: check the total)")
    return Figure(d.key, d.name, d.unit, value, num, Decimal(total), note, covered, ledgers)


def _fate_note(key: str, views: Mapping[str, StreamView], haz: StreamView) -> str | None:
    """X is shown, not hidden (indicators.md §4): say how much of the stream is unresolved."""
    d = BY_KEY[key]
    if d.unit != "%" or key in ("manifest_execution_rate", "medical_collection_coverage_rate", *FILM_CODES):
        return None
    t = haz.totals if key in HAZARDOUS_KEYS else views[d.streams[0]].totals
    if t.unresolved <= 0:
        return None
    msg = f"去向不明 X = {_t(t.unresolved)} 吨 (unresolved)"
    if t.trapped:
        msg += f"，其中闭环无出口 {_t(t.trapped)} 吨 (closed loops with no exit)"
    return msg
