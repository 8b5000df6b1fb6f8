"""The one column specification of the monthly ledger workbook (ledger-workbook.md).

The reader, the template and the annotated error workbook are all built from these tuples, so the
file nofei hands out and the file it accepts can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from nofei.domain.ledger import SHEET_COVER, SHEET_IN, SHEET_OUT, SHEET_STOCK, SHEET_TREAT
from nofei.text import to_halfwidth

Kind = Literal["code", "text", "qty", "date", "credit", "method", "measure", "manifest"]


@dataclass(frozen=True, slots=True)
class Col:
    """A column: key in the draft, Chinese header, kind of value, whether required, width, help text."""

    key: str
    header: str
    kind: Kind
    required: bool = False
    width: int = 14
    help: str = ""
    unit_suffix: str = ""  # shown in the template header, e.g. （吨）; ignored when matching


@dataclass(frozen=True, slots=True)
class SheetSpec:
    name: str
    columns: tuple[Col, ...]
    required: bool
    help: str

    def by_header(self) -> dict[str, Col]:
        return {norm_header(c.header): c for c in self.columns}


@dataclass(frozen=True, slots=True)
class CoverField:
    key: str
    label: str
    required: bool
    help: str


COVER = (
    CoverField("credit_code", "统一社会信用代码", True, "18位，须为已注册单位"),
    CoverField("unit_name", "单位名称", True, "与登记名称一致"),
    CoverField("month", "填报月份", True, "YYYY-MM，例如 2025-03；不得为将来月份"),
    CoverField("reporter", "填报人", False, ""),
    CoverField("phone", "联系电话", False, ""),
)

_QTY_HELP = "吨，保留三位小数（计量单位为千克时按千克填写）"

STOCK = SheetSpec(SHEET_STOCK, (
    Col("code", "废物代码", "code", True, 14, "名录代码，如 900-041-49、SW01"),
    Col("name", "废物名称", "text", False, 24, "可不填，按名录补全"),
    Col("open", "期初贮存量", "qty", True, 14, "≥0，" + _QTY_HELP, "（吨）"),
    Col("generated", "本月产生量", "qty", True, 14, "≥0（农膜使用单位填本月使用量）", "（吨）"),
    Col("close", "期末贮存量", "qty", True, 14, "≥0", "（吨）"),
    Col("measure", "计量单位", "measure", False, 10, "吨/千克，默认吨"),
    Col("note", "备注", "text", False, 24),
    Col("form", "形态", "text", False, 10, "可不填；危险废物填 固态/半固态/液态/气态（HJ 1259 申报表用）"),
    Col("harmful", "有害成分名称", "text", False, 24, "可不填；危险废物的有害成分（HJ 1259 申报表用）"),
), True, "每个废物代码一行；其他表出现的代码必须在此有一行。期初+产生+转入−利用处置−转出=期末。")

TREAT = SheetSpec(SHEET_TREAT, (
    Col("code", "废物代码", "code", True, 14),
    Col("method", "方式代码", "method", True, 10, "R/D/C/Y 方式代码"),
    Col("qty", "数量", "qty", True, 14, ">0，" + _QTY_HELP, "（吨）"),
    Col("measure", "计量单位", "measure", False, 10),
    Col("product", "利用产物", "text", False, 20),
    Col("note", "备注", "text", False, 24),
), False, "本单位自行利用、处置的数量。")

OUT = SheetSpec(SHEET_OUT, (
    Col("day", "转移日期", "date", True, 12, "须在填报月份内"),
    Col("manifest", "转移联单编号", "manifest", False, 18, "危险废物、医疗废物必填，14位数字"),
    Col("code", "废物代码", "code", True, 14),
    Col("qty", "数量", "qty", True, 14, ">0，" + _QTY_HELP, "（吨）"),
    Col("measure", "计量单位", "measure", False, 10),
    Col("counterpart", "接收单位统一社会信用代码", "credit", True, 22),
    Col("counterpart_name", "接收单位名称", "text", False, 24),
    Col("carrier", "承运单位统一社会信用代码", "credit", False, 22),
    Col("planned_method", "拟利用处置方式", "method", False, 12),
    Col("note", "备注", "text", False, 24),
), False, "转移给其他单位的每一批次。")

IN = SheetSpec(SHEET_IN, (
    Col("day", "接收日期", "date", True, 12, "须在填报月份内"),
    Col("manifest", "转移联单编号", "manifest", False, 18, "危险废物、医疗废物必填，14位数字"),
    Col("code", "废物代码", "code", True, 14),
    Col("qty", "数量", "qty", True, 14, ">0，实际接收（称重）量", "（吨）"),
    Col("measure", "计量单位", "measure", False, 10),
    Col("counterpart", "移出单位统一社会信用代码", "credit", True, 22),
    Col("counterpart_name", "移出单位名称", "text", False, 24),
    Col("note", "备注", "text", False, 24),
), False, "从其他单位接收的每一批次。")

DATA_SHEETS: tuple[SheetSpec, ...] = (STOCK, TREAT, OUT, IN)
INSTRUCTIONS_SHEET = "填报说明"
LISTS_SHEET = "代码表"
KNOWN_EXTRA_SHEETS = frozenset({INSTRUCTIONS_SHEET, LISTS_SHEET})
ALL_SHEETS = (SHEET_COVER, *(s.name for s in DATA_SHEETS))

MEASURES_T = frozenset({"吨", "T", "公吨", "TON", "TONNE", "TONNES"})
MEASURES_KG = frozenset({"千克", "KG", "公斤", "KGS"})
MEASURE_CHOICES = ("吨", "千克")

_SUFFIX = re.compile(r"\([^()]*\)$")


def norm_header(text: object) -> str:
    """Header text for matching: full-width → ASCII, no spaces, no trailing unit like （吨）, no colon."""
    s = to_halfwidth(str(text or ""))
    s = "".join(s.split()).rstrip(":")
    prev = None
    while prev != s:
        prev, s = s, _SUFFIX.sub("", s)
    return s.upper()


def template_header(col: Col) -> str:
    return col.header + col.unit_suffix
