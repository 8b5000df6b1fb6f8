"""Column-wise cell coercion with fast paths, every failure pinned to its cell.

A column is coerced as a whole (a list comprehension over calamine's values with a fast path for the
common type: a float for a quantity, a ``date`` for a date) and only the odd cells take the slow,
tolerant path (full-width digits, thousands separators, Chinese text dates...). This keeps a
100,000-row sheet within a fraction of calamine's own read time (issue 3, Performance).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import compress
from typing import Any

from imports.spec import MEASURES_KG, MEASURES_T, Col
from nofei.catalogue import Catalogue, CodeCheck
from nofei.domain.manifests import is_well_formed_number
from nofei.domain.units import is_valid_credit_code, normalise_credit_code
from nofei.problems import Problem, SourceRef
from nofei.quantity import tonnes_to_kg
from nofei.text import HALFWIDTH, describe_char, refused_char

_FW = HALFWIDTH | {0x3002: 0x2E}  # and 。 typed as a decimal point
_NUM_JUNK = re.compile(r"[\s,_'，]")
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")
_MONTH_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?(?:\s*[-/.]\s*0?1\s*日?)?$")
_EXCEL_EPOCH = date(1899, 12, 30)


def is_blank(v: Any) -> bool:
    return v is None or v == "" or (type(v) is str and not v.strip())


def to_text(v: Any) -> str:
    """A cell as text: integral floats lose their ``.0`` (calamine returns every number as float)."""
    if v is None:
        return ""
    if type(v) is float:
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    return str(v).strip()


def control_char(text: str) -> str | None:
    """``U+0003`` when a cell's text holds a character no stored text may (NUL, other control characters,
    also as calamine decodes ``_x0003_`` escapes); line breaks and tabs are allowed in cells. None if clean."""
    i = refused_char(text, multiline=True)
    return None if i is None else describe_char(text[i])


def norm_text_number(s: str) -> str:
    return _NUM_JUNK.sub("", s.translate(_FW))


def excel_serial_to_date(v: float) -> date | None:
    if 1 <= v < 2958466:
        return _EXCEL_EPOCH + timedelta(days=int(v))
    return None


def parse_date(v: Any) -> date | None:
    """A cell as a date: an Excel date, an Excel serial number, or text ``2025-03-07``, ``2025/3/7``,
    ``2025年3月7日``. None when it is not a date."""
    if type(v) is date:
        return v
    if isinstance(v, datetime):
        return v.date()
    if type(v) in (float, int):
        return excel_serial_to_date(float(v))
    if isinstance(v, str):
        s = v.translate(_FW).strip()
        m = _DATE_TEXT.match(s)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
    return None


def parse_month(v: Any) -> str | None:
    """``YYYY-MM`` from ``YYYY-MM``, ``YYYY年M月``, ``YYYY/MM`` or an Excel date; None if none of those."""
    if isinstance(v, date):
        return f"{v.year:04d}-{v.month:02d}"
    if type(v) in (float, int):
        d = excel_serial_to_date(float(v))
        return f"{d.year:04d}-{d.month:02d}" if d else None
    if isinstance(v, str):
        s = v.translate(_FW).strip()
        m = _MONTH_TEXT.match(s)
        if m and 1 <= int(m.group(2)) <= 12:
            return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"
    return None


class SheetCtx:
    """Where a sheet's problems go, and how to turn a data index into a row number and cell."""

    def __init__(self, sheet: str, rownums: Sequence[int], problems: list[Problem], warnings: list[Problem],
                 max_cell_chars: int, max_problems: int = 1000, cache: dict[str, dict[Any, Any]] | None = None) -> None:
        self.cache: dict[str, dict[Any, Any]] = {} if cache is None else cache  # shared by a sheet's chunks
        self.sheet = sheet
        self.rownums = rownums
        self.problems = problems
        self.warnings = warnings
        self.max_cell_chars = max_cell_chars
        self.max_problems = max_problems
        self.bad_rows: set[int] = set()

    def ref(self, i: int, col: Col, letter: str | None) -> SourceRef:
        return SourceRef(self.sheet, self.rownums[i], letter, col.header)

    def error(self, i: int, col: Col, letter: str | None, code: str, zh: str, en: str, value: Any) -> None:
        self.bad_rows.add(i)
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem.at(self.ref(i, col, letter), code, zh, en, value=_shown(value)))

    def warn(self, i: int, col: Col, letter: str | None, code: str, zh: str, en: str, value: Any) -> None:
        if len(self.warnings) < self.max_problems:
            self.warnings.append(Problem.at(self.ref(i, col, letter), code, zh, en, value=_shown(value),
                                            severity="warning"))


def _shown(v: Any) -> Any:
    if v is None or isinstance(v, str | int | bool):
        return v
    if type(v) is float:
        return int(v) if v.is_integer() else v
    return str(v)


Column = Sequence[Any] | None  # None: the column is absent from the sheet


def missing(ctx: SheetCtx, col: Col, letter: str | None, i: int, v: Any) -> None:
    ctx.error(i, col, letter, "missing_value", f"{col.header}不能为空", f"{col.header} is required", v)


def text_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int, limit: int = 500) -> list[str]:
    if values is None:
        return [""] * n
    try:
        out = list(map(str.strip, values))  # the common case: every cell is text
    except TypeError:
        out = [v.strip() if type(v) is str else to_text(v) for v in values]
    if refused_char("\n".join(out), multiline=True) is not None:  # one scan of the column; cells only if found
        for i, s in enumerate(out):
            bad = control_char(s)
            if bad is not None:
                ctx.error(i, col, letter, "control_character", f"{col.header}含有不允许的控制字符 {bad}",
                          f"{col.header} contains the control character {bad}", s[:50])
                out[i] = ""
    maxlen = max(map(len, out), default=0)
    if maxlen > ctx.max_cell_chars or maxlen > limit:
        for i, s in enumerate(out):
            if len(s) > min(limit, ctx.max_cell_chars):
                ctx.error(i, col, letter, "too_long", f"{col.header}过长（最多 {min(limit, ctx.max_cell_chars)} 字）",
                          f"{col.header} is too long", s[:50] + "…")
                out[i] = ""
    if col.required:
        for i, s in enumerate(out):
            if not s:
                missing(ctx, col, letter, i, values[i])
    return out


def measure_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int) -> list[int]:
    """kg per unit of the row's quantities: 1000 for 吨 (default), 1 for 千克/kg/公斤."""
    if values is None:
        return [1000] * n
    first = values[0] if n else ""
    if all(v == first for v in values) and first in ("", None, "吨"):
        return [1000] * n
    out = [1000] * n
    for i, v in enumerate(values):
        s = to_text(v).translate(_FW).strip().upper()
        if not s or s in MEASURES_T:
            continue
        if s in MEASURES_KG:
            out[i] = 1
        else:
            ctx.error(i, col, letter, "bad_measure_unit", f"计量单位“{to_text(v)}”无法识别（应为 吨 或 千克）",
                      f"unknown unit of measure {to_text(v)!r} (吨 or 千克)", v)
    return out


def qty_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, factors: list[int], *,
            positive: bool) -> list[int]:
    """Quantities in integer kg. Fast path: a float cell times its factor, rounded (half-even) to the kg."""
    if values is None:
        return [0] * len(factors)
    out: list[int] = [
        round(v * f) if type(v) is float else _slow_qty(ctx, col, letter, i, v, f)
        for i, (v, f) in enumerate(zip(values, factors, strict=True))
    ]
    if out and max(out) > MAX_KG:
        _too_large_qty(ctx, col, letter, values, out)
    if out and (min(out) <= 0):
        _not_positive_qty(ctx, col, letter, values, out, positive)
    return out


def _too_large_qty(ctx: SheetCtx, col: Col, letter: str | None, values: Sequence[Any], out: list[int]) -> None:
    """Above ``MAX_KG``: an error, and 0 in its place."""
    for i, q in enumerate(out):
        if q > MAX_KG:
            ctx.error(i, col, letter, "too_large_value", f"{col.header}数值过大", f"{col.header} is implausibly large",
                      values[i])
            out[i] = 0


def _not_positive_qty(ctx: SheetCtx, col: Col, letter: str | None, values: Sequence[Any], out: list[int],
                      positive: bool) -> None:
    """Negative (not already refused as ``_BAD``), or a zero where the column must be positive."""
    for i, q in enumerate(out):
        if q < 0:
            if q != _BAD:
                ctx.error(i, col, letter, "negative", f"{col.header}不能为负数", f"{col.header} must not be negative",
                          values[i])
        elif q == 0 and positive and i not in ctx.bad_rows and not is_blank(values[i]):
            ctx.error(i, col, letter, "not_positive", f"{col.header}必须大于 0", f"{col.header} must be greater than 0",
                      values[i])


_BAD = -(1 << 62)
MAX_KG = 10**15  # a trillion tonnes: anything above is a typo, and would overflow a BIGINT further on


def _slow_qty(ctx: SheetCtx, col: Col, letter: str | None, i: int, v: Any, factor: int) -> int:
    if type(v) is int:
        return v * factor
    if is_blank(v):
        if col.required:
            missing(ctx, col, letter, i, v)
            return _BAD
        return 0
    if isinstance(v, str):
        s = norm_text_number(v)
        try:
            d = Decimal(s)
            if d.is_finite():
                return tonnes_to_kg(d * factor / 1000)
        except (InvalidOperation, ValueError):
            pass
    ctx.error(i, col, letter, "not_a_number", f"{col.header}“{to_text(v)}”不是数字", f"{col.header} is not a number", v)
    return _BAD


def _all_dates_in(values: Sequence[Any], month: str | None, y: int, m: int) -> bool:
    """Fast path (B1): a month has at most 31 distinct days, so each distinct value is checked once; the
    per-row loop of ``date_col`` runs only when some cell needs parsing or is an error to pin to its row."""
    try:
        distinct = set(values)
    except TypeError:
        distinct = {None}
    return all(type(d) is date and (not month or (d.year == y and d.month == m)) for d in distinct)


def date_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int, month: str | None) -> list[date]:
    if values is None:
        return [date.min] * n
    y, m = (int(month[:4]), int(month[5:7])) if month else (0, 0)
    if _all_dates_in(values, month, y, m):
        return list(values)
    out: list[date] = []
    for i, v in enumerate(values):
        d = v if type(v) is date else parse_date(v)
        if d is None:
            if is_blank(v):
                missing(ctx, col, letter, i, v)
            else:
                ctx.error(i, col, letter, "bad_date", f"{col.header}“{to_text(v)}”不是有效日期（如 2025-03-07）",
                          f"{col.header} is not a date", v)
            out.append(date.min)
            continue
        if month and (d.year != y or d.month != m):
            ctx.error(i, col, letter, "date_outside_month", f"{col.header} {d.isoformat()} 不在填报月份 {month} 内",
                      f"{col.header} {d.isoformat()} is outside the reported month {month}", d.isoformat())
        out.append(d)
    return out


def _mapped(values: Sequence[Any], convert: Any, table: dict[Any, Any]) -> tuple[list[Any], dict[Any, Any]]:
    """Convert each distinct value once (codes, methods, credit codes repeat across rows and chunks);
    ``table`` is the caller's cache, kept across the chunks of a sheet. Returns the converted values
    and the entries of this column's distinct values."""
    try:
        distinct = set(values)
    except TypeError:  # an unhashable cell value cannot happen with calamine, but be safe
        return [convert(v) for v in values], {}
    for v in distinct - table.keys():
        table[v] = convert(v)
    return list(map(table.__getitem__, values)), {v: table[v] for v in distinct}


def code_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int, catalogue: Catalogue,
             cache: dict[Any, CodeCheck]) -> list[CodeCheck | None]:
    """Waste codes classified by the catalogue (once per distinct raw value)."""
    if values is None:
        return [None] * n

    def classify(v: Any) -> CodeCheck:
        return catalogue.classify(to_text(v)) if not is_blank(v) else CodeCheck("", None, None, False, "missing_value")

    checks, table = _mapped(values, classify, ctx.cache.setdefault("code", {}))
    if not any(c.error or not c.known for c in table.values()):
        return checks
    out: list[CodeCheck | None] = []
    for i, (v, chk) in enumerate(zip(values, checks, strict=True)):
        if chk.error:
            if chk.error == "missing_value":
                missing(ctx, col, letter, i, v)
            else:
                ctx.error(i, col, letter, "unknown_code", f"废物代码“{to_text(v)}”不存在或格式错误",
                          f"unknown waste code {to_text(v)!r}", v)
            out.append(None)
            continue
        if not chk.known and chk.stream == "hazardous":
            ctx.warn(i, col, letter, "code_not_in_catalogue", f"废物代码 {chk.code} 不在已加载的名录中（按其类别接受）",
                     f"waste code {chk.code} is not in the loaded catalogue (accepted by its category)", v)
        out.append(chk)
    return out


def method_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int,
               catalogue: Catalogue) -> list[str | None]:
    if values is None:
        return [None] * n

    def convert(v: Any) -> str | None:
        s = to_text(v).translate(_FW).strip().upper()
        return s if s and catalogue.method_class(s) is not None else None

    out, table = _mapped(values, convert, ctx.cache.setdefault("method", {}))
    if all(table.values()):
        return out
    for i, (v, code) in enumerate(zip(values, out, strict=True)):
        if code is None:
            if not is_blank(v):
                ctx.error(i, col, letter, "unknown_method", f"方式代码“{to_text(v)}”不存在",
                          f"unknown method code {to_text(v)!r}", v)
            elif col.required:
                missing(ctx, col, letter, i, v)
    return out


_BAD_CC = "!"


def credit_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int) -> list[str | None]:
    if values is None:
        return [None] * n

    def convert(v: Any) -> str | None:
        if is_blank(v):
            return None
        cc = normalise_credit_code(to_text(v))
        return cc if is_valid_credit_code(cc) else _BAD_CC

    out, table = _mapped(values, convert, ctx.cache.setdefault("credit", {}))
    if None not in table.values() and _BAD_CC not in table.values():
        return out
    for i, (v, cc) in enumerate(zip(values, out, strict=True)):
        if cc == _BAD_CC:
            ctx.error(i, col, letter, "bad_credit_code", f"{col.header}“{to_text(v)}”校验不通过（GB 32100-2015）",
                      f"{col.header} fails the GB 32100-2015 check", v)
            out[i] = None
        elif cc is None and col.required:
            missing(ctx, col, letter, i, v)
    return out


def manifest_col(ctx: SheetCtx, col: Col, letter: str | None, values: Column, n: int) -> list[str | None]:
    """联单编号 as text (a number typed into Excel comes back as a float: 14 digits are exact)."""
    if values is None:
        return [None] * n
    # empty cells (None or "", most rows of a non-hazardous sheet) skip the slow path, which maps them to None too
    return [v if type(v) is str and v.isascii() and v.isdigit() else None if v is None or v == "" else _manifest_slow(v)
            for v in values]


def _manifest_slow(v: Any) -> str | None:
    s = v.translate(_FW).strip().replace(" ", "") if type(v) is str else to_text(v)
    return s or None


def _manifest_rows_to_look_at(values: list[str | None]) -> Iterable[int]:
    """The rows whose 联单编号 may need a warning: empty or not 14 ASCII digits. Fast path (B1): when every
    filled cell is 14 ASCII digits (checked with C-level passes), only the empty cells are visited."""
    filled = [s for s in values if s is not None]
    joined = "".join(filled)
    if (not filled or set(map(len, filled)) == {14}) and joined.isascii() and (not joined or joined.isdigit()):
        return compress(range(len(values)), map(operator.not_, values))
    return (i for i, s in enumerate(values) if not (s is not None and len(s) == 14 and s.isascii() and s.isdigit()))


def check_manifests(ctx: SheetCtx, col: Col, letter: str | None, values: list[str | None],
                    codes: list[CodeCheck | None], raw: Column, catalogue: Catalogue | None = None) -> None:
    """Missing for HW/HW01 → warning, unless the code is exempt at the transport stage; not 14 digits →
    warning (ledger-workbook.md, 转出). A clinic's exemption (≤ 19 beds) depends on the unit, so the ledger use
    case drops those warnings (``ledgers.ledger``)."""
    seen: dict[str | None, bool] = {}

    def exempt(code: str | None) -> bool:
        hit = seen.get(code)
        if hit is None:
            hit = seen[code] = catalogue is not None and catalogue.transport_exempt(code) is not None
        return hit

    for i in _manifest_rows_to_look_at(values):
        s, chk = values[i], codes[i]
        if s is None:
            # a transfer exempt at the transport stage (豁免清单, e.g. 900-052-31) needs no 联单: no warning
            if chk is not None and chk.stream in ("hazardous", "medical") and not exempt(chk.code):
                ctx.warn(i, col, letter, "missing_manifest", "危险废物/医疗废物转移应填写转移联单编号",
                         "a manifest number is expected for hazardous and medical waste", None)
        elif not is_well_formed_number(s):
            ctx.warn(i, col, letter, "bad_manifest", f"转移联单编号“{s}”不是14位数字", f"manifest number {s!r} is not 14 digits",
                     raw[i] if raw is not None else s)
