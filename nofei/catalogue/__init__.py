"""The code catalogue: waste codes and their streams, method codes and classes, districts, parks, targets.

The data files ship inside the package (``nofei/catalogue/data``), copied from
``shared/domain/catalogue``. Stream rules follow ``ledger-workbook.md`` "Codes and streams".

The hazardous codes are the complete 国家危险废物名录 of each edition (``hw_codes_<edition>.csv``; the 2021
edition is ``hw_codes_2021_full.csv`` of ``shared``, byte for byte: 467 codes, names and 危险特性 verbatim,
where "，" and "/" mean different things — table note 1). An edition applies from 1 January of the year it
names (2021 → 2021-01-01, the 2025 名录 → 2025-01-01) and the year of a ledger or transfer decides which one
checks its codes (:meth:`Catalogue.for_year`). A hazardous or medical code not in that edition is refused.
The 豁免管理清单 of an edition is ``exemptions_<edition>.csv`` (official-check.md §5: the items' codes and
stages as read; the condition texts are summaries, not verbatim). Local choices, labelled as such: the NM/CC
codes (``local_codes.csv``) and the method codes of ``methods.csv``, which are not verified against HJ 1033
附录 F (official-check.md §9.16).
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
EDITION_2021 = 2021
Stage = Literal["收集", "运输", "利用", "处置", "全部环节"]


@dataclass(frozen=True, slots=True)
class WasteCode:
    """A waste code (废物代码) with its stream and catalogue name."""

    code: str
    name_zh: str
    stream: Stream
    category: str | None = None
    source: str = "package"
    hazard: str = ""  # 危险特性 verbatim from the 名录 ("，" = first certain, others possible; "/" = one or more)
    edition: int | None = None  # the 名录 edition for hazardous and medical codes


@dataclass(frozen=True, slots=True)
class Exemption:
    """An item of the 危险废物豁免管理清单: a code or a class (``HW34``) or none, the stages exempted, the condition.

    ``applies`` says how nofei can tell a row meets the condition: ``code`` (every row of the code — the
    condition is the shipper's to meet), ``small_clinic`` (the producer is marked as a clinic with ≤ 19 beds)
    or ``manual`` (a condition nofei cannot see, e.g. disinfection; never applied automatically)."""

    item: int
    code: str
    waste: str
    stages: tuple[str, ...]
    applies: str
    condition: str
    edition: int

    def matches(self, code: str) -> bool:
        if not self.code:
            return False
        if self.code.startswith("HW"):
            return code.endswith("-" + self.code[2:])
        return code == self.code


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
    hazard: str | None = None


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
    editions: dict[int, dict[str, WasteCode]] = field(default_factory=dict)  # edition -> its HW/HW01 codes
    edition: int = EDITION_2021  # the edition whose codes ``codes`` holds
    exemptions: dict[int, tuple[Exemption, ...]] = field(default_factory=dict)
    _views: dict[int, Catalogue] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def default(cls, *, c1_class: MethodClass = "disposal") -> Catalogue:
        base = _default_catalogue()
        return base if c1_class == base.c1_class else replace(base, c1_class=c1_class, _class_cache={})

    def with_codes(self, extra: Iterable[WasteCode]) -> Catalogue:
        """A catalogue that also knows ``extra`` codes in every edition (codes an admin loaded without one)."""
        extra = list(extra)
        codes = dict(self.codes)
        for wc in extra:
            codes[wc.code] = wc
        editions = {e: {**cs, **{w.code: w for w in extra if w.stream in ("hazardous", "medical")}}
                    for e, cs in self.editions.items()}
        return replace(self, codes=codes, editions=editions, _class_cache={}, _views={})

    def with_edition(self, edition: int, codes: Iterable[WasteCode],
                     exemptions: Iterable[Exemption] | None = None) -> Catalogue:
        """A catalogue that also knows a whole 名录 edition (``nofei catalogue load --edition``): its hazardous
        and medical codes replace those of earlier editions from 1 January ``edition`` on."""
        hw = {w.code: replace(w, edition=edition) for w in codes if w.stream in ("hazardous", "medical")}
        editions = {**self.editions, edition: hw}
        ex = dict(self.exemptions)
        if exemptions is not None:
            ex[edition] = tuple(exemptions)
        newest = max(editions)
        base = replace(self, editions=editions, exemptions=ex, _class_cache={}, _views={})
        return base._view(newest)

    def edition_for(self, year: int) -> int:
        """The 名录 edition in force in ``year``: the latest loaded one at or before it (else the earliest)."""
        eds = sorted(self.editions) or [self.edition]
        before = [e for e in eds if e <= year]
        return before[-1] if before else eds[0]

    def for_year(self, year: int) -> Catalogue:
        """The view of the catalogue whose hazardous codes are those of the edition in force in ``year``."""
        return self._view(self.edition_for(year))

    def _view(self, edition: int) -> Catalogue:
        if edition == self.edition or edition not in self.editions:
            return self
        hit = self._views.get(edition)
        if hit is None:
            codes = {c: w for c, w in self.codes.items() if w.stream not in ("hazardous", "medical")}
            codes.update(self.editions[edition])
            hit = replace(self, codes=codes, edition=edition, _class_cache={}, _views=self._views)
            self._views[edition] = hit
            self._views.setdefault(self.edition, self)
        return hit

    def exemption_list(self) -> tuple[Exemption, ...]:
        """The 豁免清单 that goes with this view's edition (the latest list at or before it)."""
        eds = [e for e in self.exemptions if e <= self.edition]
        return self.exemptions[max(eds)] if eds else ()

    def transport_exempt(self, code: str | None, *, small_clinic: bool = False) -> Exemption | None:
        """The 豁免清单 item that waives the 运输 stage for a 转出 of ``code`` (so no 联单 is needed), or None.

        Only items nofei can check apply: by code (e.g. 900-052-31 未破损的废铅蓄电池, transport only), and
        HW01 of a clinic with ≤ 19 beds (item 2, 收集 and 运输) when ``small_clinic``."""
        if not code:
            return None
        for e in self.exemption_list():
            if "运输" not in e.stages and "全部环节" not in e.stages:
                continue
            if e.applies == "code" and e.matches(code):
                return e
            if e.applies == "small_clinic" and small_clinic and e.matches(code):
                return e
        return None

    # --- waste codes -------------------------------------------------------------------
    def classify(self, raw: object) -> CodeCheck:
        """Classify a code as the contract's "Codes and streams" table says.

        Accepts a leading ``HWnn-`` prefix (dropped), SW codes old and 2024 form, HW/HW01 codes,
        NM (film) and CC (kitchen) local codes. A hazardous or medical code must be in this view's 名录
        edition (``unknown_code`` otherwise: 841-006-01 and the HW31 codes that do not exist are refused);
        ``S08``/``SW08`` are outside the general-industrial range in both forms.
        """
        return self._classify(raw, strict=True)

    def classify_form(self, raw: object) -> CodeCheck:
        """Like :meth:`classify`, but a hazardous code of a valid form and category is accepted even when this
        edition lacks it (``known=False``): for reading the rows of a new edition of the 名录."""
        return self._classify(raw, strict=False)

    def _classify(self, raw: object, *, strict: bool) -> CodeCheck:
        text = str(raw).strip().replace("－", "-").replace("—", "-").replace(" ", "")
        up = text.upper()
        prefix_cat = None
        m = _HW_PREFIX.match(up)
        if m:
            prefix_cat = m.group(1)
            up = up[m.end():]
        wc = self.codes.get(up)
        if wc is not None and (prefix_cat is None or wc.category == f"HW{prefix_cat}"):
            return CodeCheck(text, wc.code, wc.stream, True, name_zh=wc.name_zh, hazard=wc.hazard or None)
        sw = _SW_OLD.match(up) and up[2:] or ((m2 := _SW_2024.match(up)) and m2.group(3))
        if sw:
            return self._general_industrial(text, up, int(sw))
        m3 = _HW_FORM.match(up)
        if m3:
            return self._hazardous_form(text, up, m3.group(3), prefix_cat, strict=strict)
        return CodeCheck(text, None, None, False, "unknown_code")

    def _general_industrial(self, text: str, up: str, n: int) -> CodeCheck:
        """An SW code (SW01 or the 2024 form): categories 01–59 but 08 (not in GB 34330's list)."""
        if 1 <= n <= 59 and n != 8:
            return CodeCheck(text, up, "general_industrial", up in self.codes)
        return CodeCheck(text, None, None, False, "unknown_code")

    def _hazardous_form(self, text: str, up: str, cat: str, prefix_cat: str | None, *, strict: bool) -> CodeCheck:
        """A NNN-NNN-NN code this edition lacks: its category must exist (and match an HWnn prefix); only
        ``classify_form`` (not strict) accepts it, for a new edition's rows."""
        if (prefix_cat is not None and prefix_cat != cat) or f"HW{cat}" not in self.hw_categories:
            return CodeCheck(text, None, None, False, "bad_category")
        if strict:
            return CodeCheck(text, None, None, False, "unknown_code")
        return CodeCheck(text, up, "medical" if cat == "01" else "hazardous", False)

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
    editions = {EDITION_2021: _edition_codes(_rows("hw_codes_2021.csv"), EDITION_2021)}
    codes.update(editions[EDITION_2021])
    exemptions = {EDITION_2021: parse_exemptions(_rows("exemptions_2021.csv"))}
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
    return Catalogue(codes, cats, methods, districts, parks, targets, editions=editions, edition=EDITION_2021,
                     exemptions=exemptions)


def _edition_codes(rows: Iterable[dict[str, str]], edition: int) -> dict[str, WasteCode]:
    out: dict[str, WasteCode] = {}
    for r in rows:
        stream: Stream = "medical" if r["category"] == "HW01" else "hazardous"
        out[r["code"]] = WasteCode(r["code"], r["name_zh"], stream, r["category"], "package", r.get("hazard") or "",
                                   edition)
    return out


def parse_exemptions(rows: Iterable[dict[str, str]]) -> tuple[Exemption, ...]:
    """Rows of an ``exemptions_<edition>.csv`` (item, code, waste, stages ``;``-separated, applies, condition)."""
    return tuple(
        Exemption(int(r["item"]), (r.get("code") or "").strip(), r["waste"],
                  tuple(x for x in (r.get("stages") or "").split(";") if x), r.get("applies") or "manual",
                  r.get("condition") or "", int(r.get("edition") or EDITION_2021))
        for r in rows
    )


def _row_edition(r: dict[str, str], edition: int | None) -> int | str | None:
    """The edition a 名录 row belongs to, or the complaint about its ``edition`` column."""
    text = (r.get("edition") or "").strip()
    if text and not text.isdigit():
        return f"bad_edition {text}"
    row_ed = int(text) if text else None
    if edition is not None and row_ed is not None and row_ed != edition:
        return f"edition {row_ed} is not {edition}"
    return edition if edition is not None else row_ed


def _code_row(r: dict[str, str], base: Catalogue, edition: int | None) -> WasteCode | str:
    """One 名录 row as a code, or the complaint about it."""
    raw = (r.get("code") or "").strip()
    ed = _row_edition(r, edition)
    if isinstance(ed, str):
        return ed
    chk = base.classify_form(raw) if ed is not None else base.classify(raw)
    if chk.error or chk.code is None or chk.stream is None:
        return f"{chk.error or 'unknown_code'} {raw}"
    hw = chk.stream in ("hazardous", "medical")
    cat = r.get("category") or (f"HW{chk.code[-2:]}" if hw else None)
    return WasteCode(chk.code, (r.get("name_zh") or r.get("name") or "").strip(), chk.stream, cat, "loaded",
                     (r.get("hazard") or "").strip(), ed if hw else None)


def parse_code_list(rows: Iterable[dict[str, str]], base: Catalogue, *, edition: int | None = None
                    ) -> tuple[list[WasteCode], list[str]]:
    """Parse rows of a 名录 CSV (columns ``code``, ``name_zh``, optional ``category``, ``hazard``, ``edition``).

    With ``edition`` (or an ``edition`` column) the rows are a whole edition of the 名录, so a hazardous code
    only needs a valid form and category (a later edition has codes the earlier one lacks); rows whose
    ``edition`` differs are refused. Without, the codes are additions and hazardous ones must be known.
    Returns the codes and a list of per-row complaints (``"row 3: bad_category 123-456-99"``).
    """
    out: list[WasteCode] = []
    bad: list[str] = []
    for i, r in enumerate(rows, start=2):
        got = _code_row(r, base, edition)
        if isinstance(got, str):
            bad.append(f"row {i}: {got}")
        else:
            out.append(got)
    return out, bad
