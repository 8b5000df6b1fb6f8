"""The manifest bulk-import workbook (``POST /manifests/import``) → manifest items, each field's cell in
``_refs``. Rows with the same 分组 and parties are one manifest. Moved from the API so the parse worker
(``imports.gate``) reads it like every other upload (issue 17)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from imports.coerce import control_char
from imports.reader import col_letter
from imports.safety import ReadLimits
from imports.table_reader import first_sheet_rows
from nofei.errors import InputRejected, TooLarge
from nofei.problems import Problem

IMPORT_COLUMNS: dict[str, str] = {
    "分组": "group", "移出单位统一社会信用代码": "shipper", "接收单位统一社会信用代码": "receiver",
    "承运单位统一社会信用代码": "carrier", "计划转移日期": "planned_date", "废物代码": "waste_code",
    "数量": "quantity_t", "包装方式": "packaging", "拟利用处置方式": "planned_method",
}
_LINE_FIELDS = ("waste_code", "quantity_t", "packaging", "planned_method")
MAX_ROWS = 10_000


def _norm_header(h: Any) -> str:
    s = str(h or "").strip().replace(" ", "").replace("（", "(").replace("）", ")")
    for suffix in ("(吨)", "(t)"):
        s = s.removesuffix(suffix)
    return s


def _cell(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return "" if v is None else str(v).strip()


def read_manifest_workbook(data: bytes, limits: ReadLimits | None = None, max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """xlsx → manifest items; ``UnsupportedFile``/``TooLarge``/``InputRejected`` as the API answers them."""
    try:
        sheet, rows = first_sheet_rows(data, limits or ReadLimits(), max_rows=max_rows, kinds=("xlsx", "ods"))
    except TooLarge as e:
        if e.code == "too_many_rows":
            raise TooLarge(f"最多 {max_rows} 行 (at most {max_rows} rows)", code=e.code, problems=e.problems) from e
        raise
    if not rows:
        raise InputRejected("工作簿为空 (empty workbook)", problems=[Problem("empty", "工作簿为空", "empty", sheet=sheet)])
    heads = _headers(sheet, rows[0])
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    bad_cells: list[Problem] = []
    for r, raw in enumerate(rows[1:], start=2):
        vals = {f: _cell(raw[i]) if i < len(raw) else "" for f, (i, _h) in heads.items()}
        if any(vals.values()):
            bad_cells.extend(_control_chars(sheet, r, heads, vals))
            _add_row(groups, sheet, r, heads, vals)
    if bad_cells:
        raise InputRejected("工作簿含有不允许的控制字符 (control characters in cells)", problems=bad_cells)
    return list(groups.values())


def _headers(sheet: str, header: list[Any]) -> dict[str, tuple[int, str]]:
    """Field → (column index, header text); ``InputRejected`` naming every required column missing."""
    heads = {IMPORT_COLUMNS[_norm_header(h)]: (i, str(h)) for i, h in enumerate(header)
             if _norm_header(h) in IMPORT_COLUMNS}
    missing = [k for k, f in IMPORT_COLUMNS.items() if f not in heads and f in ("receiver", "planned_date",
                                                                               "waste_code", "quantity_t")]
    if missing:
        raise InputRejected("缺少列 (missing columns)", problems=[
            Problem("missing_column", f"缺少列 {m}", f"missing column {m}", sheet=sheet, row=1, header=m)
            for m in missing])
    return heads


def _control_chars(sheet: str, r: int, heads: dict[str, tuple[int, str]], vals: dict[str, Any]) -> list[Problem]:
    return [Problem("control_character", f"{heads[f][1]}含有不允许的控制字符 {bad}",
                    f"{heads[f][1]} contains the control character {bad}", value=v[:50],
                    sheet=sheet, row=r, column=col_letter(heads[f][0]), header=heads[f][1])
            for f, v in vals.items() if (bad := control_char(v)) is not None]


def _add_row(groups: dict[tuple[Any, ...], dict[str, Any]], sheet: str, r: int, heads: dict[str, tuple[int, str]],
             vals: dict[str, Any]) -> None:
    """The row's line, in the manifest of its 分组 and parties (begun by its first row), each field's cell in
    ``_refs``."""
    refs = {f: {"sheet": sheet, "row": r, "column": col_letter(i), "header": h} for f, (i, h) in heads.items()}
    key = (vals.get("group") or f"row{r}", vals.get("shipper"), vals.get("receiver"), vals.get("carrier"),
           vals.get("planned_date"))
    item = groups.get(key)
    if item is None:
        item = {"shipper": vals.get("shipper") or None, "receiver": vals.get("receiver"),
                "carrier": vals.get("carrier") or None, "planned_date": vals.get("planned_date"), "lines": [],
                "_refs": {k: refs[k] for k in ("shipper", "receiver", "carrier", "planned_date") if k in refs}}
        item["_refs"]["*"] = {"sheet": sheet, "row": r}
        groups[key] = item
    n = len(item["lines"])
    item["lines"].append({f: vals.get(f) or None for f in _LINE_FIELDS})
    for f in _LINE_FIELDS:
        if f in refs:
            item["_refs"][f"lines.{n}.{f}"] = refs[f]
    item["_refs"]["lines"] = item["_refs"].get("lines") or {"sheet": sheet, "row": r}
