"""HJ 1259-2022 rules for hazardous-waste declarations: tiers (4.2), periods and deadlines (7.2).

Pure functions: the figures come from the ledgers (``nofei.storage.declarations``), the answers are
values a page, an export or a test can show with the rule that decided them
(``official-check.md`` §3).

- Tier (4.2.1): 重点监管 when the annual amount at the site is ≥ 100 t, or the unit has its own
  utilisation/disposal facilities, or holds a 危险废物经营许可证; 简化管理 when ≥ 10 t; otherwise 登记管理.
- Annual amount (4.2.3): the maximum of the last three years; between one and three years of
  operation the maximum during operation. nofei counts the years before the tier's year that have
  ledgers; a unit with none yet is judged on the year's own ledgers (nofei holds no EIA or permit
  figures, which HJ 1259 names for that case) and says so in the reason.
- Declarations (7.2): 重点 monthly by the 15th of the next month plus annual; 简化 quarterly by the
  15th of the month after the quarter plus annual; 登记 annual only; the annual one by 31 March.
  Deadlines are calendar dates (no working-day shift).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from nofei.quantity import kg_to_tonnes

Tier = Literal["key", "simplified", "registration"]
TIERS: tuple[Tier, ...] = ("key", "simplified", "registration")
TIER_ZH: dict[str, str] = {"key": "重点监管", "simplified": "简化管理", "registration": "登记管理"}
KEY_KG = 100_000  # 100 t
SIMPLIFIED_KG = 10_000  # 10 t
WINDOW_YEARS = 3
HW_STREAMS = ("hazardous", "medical")  # HW01 (医疗废物) is a 名录 category too

PeriodKind = Literal["month", "quarter", "year"]
TABLE_OF: dict[str, str] = {"month": "C.1", "quarter": "C.2", "year": "C.3"}
KIND_ZH: dict[str, str] = {"month": "月度", "quarter": "季度", "year": "年度"}

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


# --- periods ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A declaration period (申报期): a month (C.1), a quarter (C.2) or a year (C.3)."""

    year: int
    kind: PeriodKind
    index: int = 1  # month 1-12, quarter 1-4, 1 for a year

    @property
    def key(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.index}"
        return str(self.year)

    @property
    def label_zh(self) -> str:
        if self.kind == "month":
            return f"{self.year}年{self.index}月"
        if self.kind == "quarter":
            return f"{self.year}年第{self.index}季度"
        return f"{self.year}年度"

    @property
    def table(self) -> str:
        return TABLE_OF[self.kind]

    def months(self) -> list[str]:
        """The ``YYYY-MM`` months the period covers, in order."""
        if self.kind == "month":
            nums = [self.index]
        elif self.kind == "quarter":
            nums = [3 * self.index - 2, 3 * self.index - 1, 3 * self.index]
        else:
            nums = list(range(1, 13))
        return [f"{self.year}-{m:02d}" for m in nums]

    @property
    def start(self) -> date:
        m = self.months()[0]
        return date(self.year, int(m[5:]), 1)

    @property
    def end(self) -> date:
        """The last day of the period."""
        m = int(self.months()[-1][5:])
        nxt = date(self.year + 1, 1, 1) if m == 12 else date(self.year, m + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)

    def previous(self) -> Period:
        """The period before (its end is this period's 上期末)."""
        if self.kind == "year":
            return Period(self.year - 1, "year")
        last = 12 if self.kind == "month" else 4
        if self.index == 1:
            return Period(self.year - 1, self.kind, last)
        return Period(self.year, self.kind, self.index - 1)

    def deadline(self) -> date:
        """HJ 1259 7.2: the 15th of the month after a month or a quarter; 31 March after a year."""
        if self.kind == "year":
            return date(self.year + 1, 3, 31)
        m = int(self.months()[-1][5:])
        return date(self.year + 1, 1, 15) if m == 12 else date(self.year, m + 1, 15)


class BadPeriod(ValueError):
    """The text is not a period of the form ``2025-03``, ``2025-Q1`` or ``2025``."""


def parse_period(text: str) -> Period:
    """``2025-03`` → a month, ``2025-Q1`` → a quarter, ``2025`` → a year (BadPeriod otherwise)."""
    t = (text or "").strip()
    for rx, kind in ((_MONTH, "month"), (_QUARTER, "quarter"), (_YEAR, "year")):
        m = rx.match(t)
        if m is None:
            continue
        year = int(m.group(1))
        idx = int(m.group(2)) if kind != "year" else 1
        if not 2000 <= year <= 2100 or (kind == "month" and not 1 <= idx <= 12):
            break
        return Period(year, kind, idx)  # type: ignore[arg-type]
    raise BadPeriod(f"申报期应为 YYYY-MM、YYYY-Qn 或 YYYY：{text!r}")


def declarations_due(tier: Tier, year: int) -> list[Period]:
    """The declarations a unit of ``tier`` owes for ``year``: months or quarters, then the annual one."""
    if tier == "key":
        periods = [Period(year, "month", m) for m in range(1, 13)]
    elif tier == "simplified":
        periods = [Period(year, "quarter", q) for q in range(1, 5)]
    else:
        periods = []
    return [*periods, Period(year, "year")]


# --- status of a due declaration ---------------------------------------------------------------
Status = Literal["not_due", "open", "ready", "late", "late_ready"]
STATUS_ZH: dict[str, str] = {"not_due": "未到申报期", "open": "待申报（台账未齐）", "ready": "可申报",
                             "late": "逾期（台账未齐）", "late_ready": "可申报（台账逾期补齐）"}


def declaration_status(period: Period, first_upload: Mapping[str, date | None], today: date) -> Status:
    """Whether a declaration can be made from the ledgers, and whether that is late.

    ``first_upload``: the China-time date on which each month's ledger first arrived (None: not yet).
    A declaration is ready when every month of its period has a ledger; late when its deadline has
    passed without them (``late_ready``: they all came, but after the deadline)."""
    months = period.months()
    if today <= period.end:
        return "not_due"
    days = [first_upload.get(m) for m in months]
    complete = all(d is not None for d in days)
    dl = period.deadline()
    if complete:
        return "ready" if max(d for d in days if d is not None) <= dl else "late_ready"
    return "late" if today > dl else "open"


# --- tiers -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class YearFigures:
    """One year's hazardous-waste figures of a unit, from the current versions of its ledgers."""

    year: int
    generated_kg: int
    months: int  # months with a current ledger that has an HW row
    own_methods: tuple[str, ...] = ()  # methods of its own 利用处置 rows of HW codes


@dataclass(frozen=True, slots=True)
class TierDecision:
    """A tier with the rule and the figures that decided it (the API's ``{tier, tier_zh, reason, figures}``)."""

    tier: Tier
    rule: str  # licence | own_facility | amount_key | amount_simplified | amount_registration
    reason: str
    annual_kg: int
    basis: str  # last_three_years | operating_years | current_year | none
    years: tuple[YearFigures, ...]
    own_methods: tuple[str, ...] = ()
    licences: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def tier_zh(self) -> str:
        return TIER_ZH[self.tier]


def _t(kg: int) -> str:
    return f"{kg_to_tonnes(kg)}"


def _window(year: int, history: Iterable[YearFigures]) -> tuple[list[YearFigures], str]:
    """The years whose amount decides (HJ 1259 4.2.3): up to three before ``year`` with ledgers, else the year's
    own ledgers so far; and which basis that is."""
    by_year = {f.year: f for f in history}
    window = [by_year[y] for y in range(year - WINDOW_YEARS, year) if y in by_year and by_year[y].months]
    if window:
        return window, "last_three_years" if len(window) == WINDOW_YEARS else "operating_years"
    if year in by_year and by_year[year].months:
        return [by_year[year]], "current_year"
    return [], "none"


def _amount_text(year: int, window: list[YearFigures], basis: str, annual: int) -> str:
    span = "、".join(str(f.year) for f in window)
    basis_zh = {
        "last_three_years": f"近三年（{span}）",
        "operating_years": f"运行期间（{span}，不足三年）",
        "current_year": f"{year} 年本年台账（此前无台账；nofei 无环评及排污许可核定量）",
        "none": "（无台账）",
    }[basis]
    peak = max(window, key=lambda f: (f.generated_kg, f.year)) if window else None
    return f"{basis_zh}最大年产生量 {_t(annual)} 吨" + (f"（{peak.year} 年）" if peak else "")


def _rule(annual: int, own: tuple[str, ...], lic: tuple[str, ...], amount: str) -> tuple[str, str, str]:
    """(tier, rule, why) by HJ 1259 4.2.1: a licence or an own facility makes a unit 重点; else the amount."""
    if lic:
        return "key", "licence", f"持有危险废物经营许可证（{'、'.join(lic)}）；{amount}"
    if own:
        return "key", "own_facility", f"有自行利用/处置设施（台账利用处置方式 {'、'.join(own)}）；{amount}"
    if annual >= KEY_KG:
        return "key", "amount_key", f"{amount} ≥ 100 吨"
    if annual >= SIMPLIFIED_KG:
        return "simplified", "amount_simplified", f"{amount} ≥ 10 吨且 < 100 吨"
    return "registration", "amount_registration", f"{amount} < 10 吨"


def decide_tier(year: int, history: Iterable[YearFigures], *, licences: Iterable[str] = ()) -> TierDecision:
    """The HJ 1259 4.2 tier of a unit for ``year`` from its yearly figures and licences.

    The annual amount is the maximum over the up to three years before ``year`` that have ledgers
    (4.2.3); with none, the year's own ledgers so far. Own facilities count from the same years."""
    window, basis = _window(year, history)
    annual = max((f.generated_kg for f in window), default=0)
    own = tuple(sorted({m for f in window for m in f.own_methods}))
    lic = tuple(sorted(set(licences)))
    tier, rule, why = _rule(annual, own, lic, _amount_text(year, window, basis, annual))
    reason = f"{TIER_ZH[tier]}：{why}（HJ 1259—2022 4.2.1、4.2.3）"
    return TierDecision(tier, rule, reason, annual, basis, tuple(window), own, lic)  # type: ignore[arg-type]


# --- provinces (GB/T 2260, the first two digits of a 统一社会信用代码's 区划码) ----------------------------
PROVINCES: dict[str, str] = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区", "21": "辽宁省",
    "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省",
    "35": "福建省", "36": "江西省", "37": "山东省", "41": "河南省", "42": "湖北省", "43": "湖南省",
    "44": "广东省", "45": "广西壮族自治区", "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省",
    "53": "云南省", "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}


def province_of(credit_code: str) -> str | None:
    """The province of a unit from the 登记管理机关行政区划码 (characters 3-8) of its credit code."""
    if len(credit_code) != 18 or not credit_code[2:8].isdigit():
        return None
    return PROVINCES.get(credit_code[2:4])

