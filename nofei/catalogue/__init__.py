"""The code catalogue: waste codes and their streams, method codes and classes, districts, parks, targets.

The data files ship inside the package (``nofei/catalogue/data``), copied from
``shared/domain/catalogue``. Stream rules follow ``ledger-workbook.md`` "Codes and streams".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal, cast

Stream = Literal["general_industrial", "hazardous", "medical", "agricultural_film", "kitchen_waste"]
STREAMS: tuple[Stream, ...] = ("general_industrial", "hazardous", "medical", "agricultural_film", "kitchen_waste")
STREAM_NAMES_ZH: dict[str, str] = {
    "general_industrial": "一般工业固体废物",
    "hazardous": "危险废物",
    "medical": "医疗废物",
    "agricultural_film": "农膜",
    "kitchen_waste": "餐厨垃圾",
}
MethodClass = Literal["utilisation", "disposal"]
CITY = "630100"

_HW_FORM = re.compile(r"^(\d{3})-(\d{3})-(\d{2})$")
_HW_PREFIX = re.compile(r"^HW(\d{2})[-－—_\s]*", re.IGNORECASE)
_SW_OLD = re.compile(r"^SW(\d{2})$", re.IGNORECASE)
_SW_2024 = re.compile(r"^(\d{3})-(\d{3})-S(\d{2})$", re.IGNORECASE)
_MEDICAL = re.compile(r"^841-00\d-01$")


@dataclass(frozen=True, slots=True)
class WasteCode:
    """A waste code (废物代码) with its stream and catalogue name."""

    code: str
    name_zh: str
    stream: Stream
    category: str | None = None
    source: str = "package"


@dataclass(frozen=True, slots=True)
class Method:
    """A utilisation/disposal method code (利用处置方式代码) and its class."""

    code: str
    name_zh: str
    method_class: MethodClass
    note: str = ""


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name_zh: str
    kind: str


@dataclass(frozen=True, slots=True)
class Park:
    """An industrial park (工业园区); a region for indicators, inside one district."""

    code: str
    name_zh: str
    district: str


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    region: str
    year: int
    comparator: str
    target: Decimal
    source: str

    def met_by(self, value: Decimal | float | None) -> bool | None:
        if value is None:
            return None
        v = Decimal(str(value))
        return {
            ">": v > self.target,
            ">=": v >= self.target,
            "<": v < self.target,
            "<=": v <= self.target,
        }[self.comparator]


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of classifying a code: normalised code, stream, and whether the catalogue knows it.

    ``error`` is a stable problem code (``unknown_code``, ``bad_category``) when the code is refused.
    """

    raw: str
    code: str | None
    stream: Stream | None
    known: bool
    error: str | None = None
    name_zh: str | None = None


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("nofei.catalogue").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@dataclass(frozen=True)
class Catalogue:
    """Immutable view of the code lists. Build with :meth:`default`, extend with :meth:`with_codes`."""

    codes: dict[str, WasteCode]
    hw_categories: dict[str, tuple[str, Stream]]
    methods: dict[str, Method]
    districts: dict[str, District]
    parks: dict[str, Park]
    targets: tuple[Target, ...]
    c1_class: MethodClass = "disposal"
    _class_cache: dict[str, MethodClass] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def default(cls, *, c1_class: MethodClass = "disposal") -> Catalogue:
        base = _default_catalogue()
        return base if c1_class == base.c1_class else replace(base, c1_class=c1_class, _class_cache={})

    def with_codes(self, extra: Iterable[WasteCode]) -> Catalogue:
        """A catalogue that also knows ``extra`` codes (e.g. the full 名录 loaded by an admin)."""
        codes = dict(self.codes)
        for wc in extra:
            codes[wc.code] = wc
        return replace(self, codes=codes, _class_cache={})

    # --- waste codes -------------------------------------------------------------------
    def classify(self, raw: object) -> CodeCheck:
        """Classify a code as the contract's "Codes and streams" table says.

        Accepts a leading ``HWnn-`` prefix (dropped), SW codes old and 2024 form, HW/HW01 codes,
        NM (film) and CC (kitchen) local codes. Unknown hazardous codes of a valid form and
        category are accepted with ``known=False`` (the caller warns).
        """
        text = str(raw).strip().replace("－", "-").replace("—", "-").replace(" ", "")
        up = text.upper()
        prefix_cat = None
        m = _HW_PREFIX.match(up)
        if m:
            prefix_cat = m.group(1)
            up = up[m.end():]
        wc = self.codes.get(up)
        if wc is not None and (prefix_cat is None or wc.category == f"HW{prefix_cat}"):
            return CodeCheck(text, wc.code, wc.stream, True, name_zh=wc.name_zh)
        if _SW_OLD.match(up):
            n = int(up[2:])
            if 1 <= n <= 59 and n != 8:
                return CodeCheck(text, up, "general_industrial", up in self.codes)
            return CodeCheck(text, None, None, False, "unknown_code")
        m2 = _SW_2024.match(up)
        if m2:
            n = int(m2.group(3))
            if 1 <= n <= 59:
                return CodeCheck(text, up, "general_industrial", up in self.codes)
            return CodeCheck(text, None, None, False, "unknown_code")
        m3 = _HW_FORM.match(up)
        if m3:
            cat = m3.group(3)
            if prefix_cat is not None and prefix_cat != cat:
                return CodeCheck(text, None, None, False, "bad_category")
            if f"HW{cat}" not in self.hw_categories:
                return CodeCheck(text, None, None, False, "bad_category")
            if cat == "01":
                if _MEDICAL.match(up):
                    return CodeCheck(text, up, "medical", up in self.codes)
                return CodeCheck(text, None, None, False, "unknown_code")
            return CodeCheck(text, up, "hazardous", False)
        return CodeCheck(text, None, None, False, "unknown_code")

    def stream_of(self, code: str) -> Stream | None:
        return self.classify(code).stream

    def waste_codes(self, stream: str | None = None) -> list[WasteCode]:
        return sorted(
            (c for c in self.codes.values() if stream is None or c.stream == stream), key=lambda c: c.code
        )

    # --- methods -----------------------------------------------------------------------
    def method_class(self, code: str) -> MethodClass | None:
        """Utilisation or disposal; C1 (水泥窑协同处置) follows the ``c1_class`` setting."""
        c = code.strip().upper()
        if c == "C1":
            return self.c1_class
        m = self.methods.get(c)
        return m.method_class if m else None

    def method_list(self) -> list[Method]:
        return [
            replace(m, method_class=self.c1_class) if m.code == "C1" else m for m in self.methods.values()
        ]

    # --- regions -----------------------------------------------------------------------
    def is_region(self, code: str) -> bool:
        return code in self.districts or code in self.parks

    def region_name(self, code: str) -> str:
        if code in self.districts:
            return self.districts[code].name_zh
        if code in self.parks:
            return self.parks[code].name_zh
        return code

    def target_for(self, key: str, region: str, year: int) -> Target | None:
        """The plan's target for an indicator. Targets are set for the city and apply to every year
        up to and after the plan year (the latest target at or before ``year``, else the earliest)."""
        cands = [t for t in self.targets if t.key == key and t.region == region]
        if not cands:
            return None
        before = [t for t in cands if t.year <= year]
        return max(before, key=lambda t: t.year) if before else min(cands, key=lambda t: t.year)


@cache
def _default_catalogue() -> Catalogue:
    cats: dict[str, tuple[str, Stream]] = {
        r["category"]: (r["name_zh"], cast(Stream, r["stream"])) for r in _rows("hw_categories.csv")
    }
    codes: dict[str, WasteCode] = {}
    for r in _rows("sw_codes.csv"):
        codes[r["code"]] = WasteCode(r["code"], r["name_zh"], "general_industrial")
    for r in _rows("hw_codes.csv"):
        stream: Stream = "medical" if r["category"] == "HW01" else "hazardous"
        codes[r["code"]] = WasteCode(r["code"], r["name_zh"], stream, r["category"])
    for r in _rows("local_codes.csv"):
        codes[r["code"]] = WasteCode(r["code"], r["name_zh"], cast(Stream, r["stream"]))
    methods = {
        r["code"]: Method(r["code"], r["name_zh"], cast(MethodClass, r["class"]), r.get("note") or "")
        for r in _rows("methods.csv")
    }
    districts = {r["code"]: District(r["code"], r["name_zh"], r["kind"]) for r in _rows("districts.csv")}
    parks = {r["code"]: Park(r["code"], r["name_zh"], r["district"]) for r in _rows("parks.csv")}
    targets = tuple(
        Target(r["key"], r["region"], int(r["year"]), r["comparator"], Decimal(r["target"]), r["source"])
        for r in _rows("targets.csv")
    )
    return Catalogue(codes, cats, methods, districts, parks, targets)


def parse_code_list(rows: Iterable[dict[str, str]], base: Catalogue) -> tuple[list[WasteCode], list[str]]:
    """Parse rows of a 名录 CSV (columns ``code``, ``name_zh``, optional ``category``) into codes.

    Returns the codes and a list of per-row complaints (``"row 3: bad_category 123-456-99"``).
    """
    out: list[WasteCode] = []
    bad: list[str] = []
    for i, r in enumerate(rows, start=2):
        raw = (r.get("code") or "").strip()
        chk = base.classify(raw)
        if chk.error or chk.code is None or chk.stream is None:
            bad.append(f"row {i}: {chk.error or 'unknown_code'} {raw}")
            continue
        cat = r.get("category") or (f"HW{chk.code[-2:]}" if chk.stream in ("hazardous", "medical") else None)
        out.append(WasteCode(chk.code, (r.get("name_zh") or r.get("name") or "").strip(), chk.stream, cat, "loaded"))
    return out, bad
