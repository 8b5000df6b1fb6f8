"""Workbooks nofei writes, from the same column specification the reader uses (``imports.spec``):
the blank template, a filled ledger (what a clerk produces from the template) and the uploaded
workbook annotated with its errors (faulty cells red, each with its message as a comment).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from imports.spec import (
    COVER,
    DATA_SHEETS,
    IN,
    INSTRUCTIONS_SHEET,
    KNOWN_EXTRA_SHEETS,
    LISTS_SHEET,
    MEASURE_CHOICES,
    OUT,
    STOCK,
    TREAT,
    SheetSpec,
    template_header,
)
from nofei.catalogue import Catalogue
from nofei.domain.ledger import SHEET_COVER, LedgerDraft
from nofei.problems import Problem
from nofei.quantity import kg_to_tonnes
from nofei.text import neutralise_cell_text

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQ_FONT = Font(bold=True, color="C00000")
_HEAD_FONT = Font(bold=True)
_RED = PatternFill("solid", fgColor="FF9999")
_YELLOW = PatternFill("solid", fgColor="FFF2CC")
_QTY_FORMAT = "#,##0.000"
_DATE_FORMAT = "yyyy-mm-dd"
_VALIDATION_ROWS = 5000


def _lists_sheet(wb: Workbook, catalogue: Catalogue) -> dict[str, str]:
    """The hidden 代码表 sheet holding the drop-down lists; returns list name → range formula."""
    ws = wb.create_sheet(LISTS_SHEET)
    codes = [c.code for c in catalogue.waste_codes()]
    methods = [m.code for m in catalogue.method_list()]
    ws.append(["废物代码", "废物名称", "方式代码", "方式名称", "计量单位"])
    names = {c.code: c.name_zh for c in catalogue.waste_codes()}
    mnames = {m.code: m.name_zh for m in catalogue.method_list()}
    for i in range(max(len(codes), len(methods), len(MEASURE_CHOICES))):
        ws.append([
            codes[i] if i < len(codes) else None, names[codes[i]] if i < len(codes) else None,
            methods[i] if i < len(methods) else None, mnames[methods[i]] if i < len(methods) else None,
            MEASURE_CHOICES[i] if i < len(MEASURE_CHOICES) else None,
        ])
    ws.sheet_state = "hidden"
    q = quote_sheetname(LISTS_SHEET)
    return {
        "code": f"{q}!$A$2:$A${len(codes) + 1}",
        "method": f"{q}!$C$2:$C${len(methods) + 1}",
        "measure": f"{q}!$E$2:$E${len(MEASURE_CHOICES) + 1}",
    }


def _data_sheet(wb: Workbook, spec: SheetSpec, lists: dict[str, str]) -> Worksheet:
    ws = wb.create_sheet(spec.name)
    for j, col in enumerate(spec.columns, start=1):
        cell = ws.cell(row=1, column=j, value=template_header(col))
        cell.font = _REQ_FONT if col.required else _HEAD_FONT
        cell.fill = _HEAD_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if col.help:
            cell.comment = Comment(("必填。" if col.required else "") + col.help, "nofei")
        letter = get_column_letter(j)
        ws.column_dimensions[letter].width = col.width
        fmt = _format(col.kind)
        if fmt:  # the column's default style, so cells a clerk types into get it too
            ws.column_dimensions[letter].number_format = fmt
        rng = f"{letter}2:{letter}{_VALIDATION_ROWS}"
        kind = {"code": "code", "method": "method", "measure": "measure"}.get(col.kind)
        if kind:
            dv = DataValidation(type="list", formula1=f"={lists[kind]}", allow_blank=True, showErrorMessage=kind != "code",
                                errorTitle="输入有误", error=f"请从下拉列表中选择{col.header}")
            dv.add(rng)
            ws.add_data_validation(dv)
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 30
    return ws


def _format(kind: str) -> str | None:
    """Quantities with three decimals, dates as dates, codes as text (so 联单编号 keep every digit)."""
    return {"qty": _QTY_FORMAT, "date": _DATE_FORMAT, "code": "@", "manifest": "@", "credit": "@"}.get(kind)


def _formats(spec: SheetSpec) -> list[str | None]:
    return [_format(c.kind) for c in spec.columns]


def _instructions(wb: Workbook) -> None:
    ws = wb.create_sheet(INSTRUCTIONS_SHEET)
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 90
    ws.append(["月度固体废物管理台账 填报说明"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([])
    ws.append(["通用", "每个单位每月一个文件；表名、表头不要修改（可在表头后注明单位，如“（吨）”）；红色表头为必填列。"])
    ws.append(["数量", "默认单位为吨，保留三位小数；如按千克填写，请在“计量单位”列填“千克”。"])
    ws.append(["日期", "填写日期，如 2025-03-07；须在填报月份内。"])
    ws.append(["平衡", "每个废物代码：期初贮存量 + 本月产生量 + 转入 − 利用处置 − 转出 = 期末贮存量（误差 0.001 吨）。"])
    ws.append(["联单", "危险废物、医疗废物的转出、转入须填写14位转移联单编号。"])
    ws.append([SHEET_COVER, "填写统一社会信用代码、单位名称、填报月份（YYYY-MM）。"])
    for spec in DATA_SHEETS:
        ws.append([spec.name, spec.help])
        for c in spec.columns:
            ws.append(["", f"{c.header}{'（必填）' if c.required else ''}：{c.help}".rstrip("：")])
    for row in ws.iter_rows(min_row=3):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")


def _build(catalogue: Catalogue, cover: dict[str, str], rows: Mapping[str, Iterable[Sequence[Any]]]) -> bytes:
    wb = Workbook()
    cov = wb.active
    cov.title = SHEET_COVER
    cov.column_dimensions["A"].width = 20
    cov.column_dimensions["B"].width = 36
    for i, f in enumerate(COVER, start=1):
        a = cov.cell(row=i, column=1, value=f.label)
        a.font = _REQ_FONT if f.required else _HEAD_FONT
        a.fill = _HEAD_FILL
        b = cov.cell(row=i, column=2, value=neutralise_cell_text(cover.get(f.key) or None))
        b.number_format = "@"
        if f.help:
            a.comment = Comment(f.help, "nofei")
    lists = _lists_sheet(wb, catalogue)
    for spec in DATA_SHEETS:
        ws = _data_sheet(wb, spec, lists)
        fmts = _formats(spec)
        for r, values in enumerate(rows.get(spec.name, ()), start=2):
            for j, v in enumerate(values, start=1):
                if v is None or v == "":
                    continue
                cell = ws.cell(row=r, column=j, value=neutralise_cell_text(v))
                if fmts[j - 1]:
                    cell.number_format = fmts[j - 1]
    _instructions(wb)
    wb.move_sheet(INSTRUCTIONS_SHEET, offset=-(len(wb.sheetnames) - 1))
    wb.move_sheet(LISTS_SHEET, offset=len(wb.sheetnames))
    wb.active = wb.sheetnames.index(SHEET_COVER)
    return workbook_bytes(wb)


def workbook_bytes(wb: Workbook) -> bytes:
    """``wb`` saved to bytes, its worksheet temp files removed even when saving fails.

    openpyxl writes every worksheet to a temp file first (``openpyxl.worksheet._writer.ALL_TEMP_FILES``)
    and deletes it only after a successful write; a failed save would leave megabytes in /tmp per
    request. A write-only sheet's file exists from its first row on, so it is known before saving;
    the others are the files openpyxl registered while this save ran."""
    from openpyxl.worksheet import _writer

    before = set(_writer.ALL_TEMP_FILES)
    buf = io.BytesIO()
    try:
        wb.save(buf)
    except BaseException:
        discard_temp_files(wb)
        _remove_temp_files([p for p in list(_writer.ALL_TEMP_FILES) if p not in before])
        raise
    return buf.getvalue()


def discard_temp_files(wb: Workbook) -> None:
    """Remove the temp files of ``wb``'s write-only sheets (a workbook that will not be saved)."""
    _remove_temp_files([w.out for ws in wb.worksheets if (w := getattr(ws, "_writer", None)) is not None])


def _remove_temp_files(paths: Iterable[str]) -> None:
    import os

    from openpyxl.worksheet import _writer

    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass
        if path in _writer.ALL_TEMP_FILES:
            _writer.ALL_TEMP_FILES.remove(path)


def write_template(unit_code: str | None, unit_name: str | None, catalogue: Catalogue) -> bytes:
    """The blank monthly ledger template (cover pre-filled when the unit is known)."""
    return _build(catalogue, {"credit_code": unit_code or "", "unit_name": unit_name or ""}, {})


def _t(kg: int) -> float:
    return float(kg_to_tonnes(kg))


def _ledger_rows(draft: LedgerDraft) -> tuple[dict[str, str], dict[str, list[list[Any]]]]:
    """The cover and the data sheets' rows of a filled ledger, as a clerk types them (quantities in tonnes)."""
    stock = [[s.code, s.name, _t(s.open_kg), _t(s.generated_kg), _t(s.close_kg), "吨", s.note] for s in draft.stocks]
    treat = [[t.code, t.method, _t(t.qty_kg), "吨", t.product, t.note] for t in draft.treatments]
    out = [[t.day, t.manifest_no, t.code, _t(t.qty_kg), "吨", t.counterpart, t.counterpart_name, t.carrier,
            t.planned_method, t.note] for t in draft.transfers if t.direction == "out"]
    inn = [[t.day, t.manifest_no, t.code, _t(t.qty_kg), "吨", t.counterpart, t.counterpart_name, t.note]
           for t in draft.transfers if t.direction == "in"]
    assert [c.key for c in STOCK.columns][:5] == ["code", "name", "open", "generated", "close"]  # spec order
    cover = {"credit_code": draft.credit_code, "unit_name": draft.unit_name, "month": draft.month,
             "reporter": draft.reporter, "phone": draft.phone}
    return cover, {STOCK.name: stock, TREAT.name: treat, OUT.name: out, IN.name: inn}


def write_ledger_workbook_openpyxl(draft: LedgerDraft, catalogue: Catalogue | None = None) -> bytes:
    """The filled workbook built cell by cell with openpyxl: the reference ``write_ledger_workbook`` must
    equal part for part (tests) and the baseline of ``bench/b5_demo.py``. About 20–40 ms a file."""
    cover, rows = _ledger_rows(draft)
    return _build(catalogue or Catalogue.default(), cover, rows)


# --- the filled workbook, fast: the template's parts rendered once, only the filled sheets per file ----
class _Unusual(Exception):
    """A value the fast writer does not render itself (formula-like text, control characters, …): the
    file is built by openpyxl instead, which decides what such a value becomes."""


@dataclass(frozen=True)
class _SheetPart:
    """A worksheet part of the skeleton, split where the per-file content goes."""

    part: str
    before_dimension: str  # …<dimension ref="
    before_rows: str  # "/>…<sheetData>…row 1…  (up to the end of the existing rows)
    after_rows: str  # </sheetData>… (validations, legacy drawing of the header comments)
    letters: tuple[str, ...]  # column letters
    styles: tuple[str, ...]  # ' s="N"' of each column's default style (what openpyxl gives a formatted cell), or ""
    last_col: str


@dataclass(frozen=True)
class _Skeleton:
    """The blank template's zip parts (openpyxl's own output, once per process and catalogue)."""

    parts: tuple[tuple[str, bytes], ...]
    cover_part: str
    cover_xml: str
    sheets: dict[str, _SheetPart]


_SKELETONS: dict[tuple[Any, ...], _Skeleton] = {}
_COVER_CELL = re.compile(r'<c r="B(\d+)" s="(\d+)" t="n" />')
_CORE_DATES = re.compile(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # openpyxl's ILLEGAL_CHARACTERS_RE
_EPOCH = date(1899, 12, 30)  # Excel's 1900 date system, day 0 (dates from 1900-03-01 on)
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _catalogue_key(catalogue: Catalogue) -> tuple[Any, ...]:
    """What the template depends on besides ``imports.spec``: the code lists of the hidden 代码表 sheet."""
    return (tuple((c.code, c.name_zh) for c in catalogue.waste_codes()),
            tuple((m.code, m.name_zh) for m in catalogue.method_list()))


def _skeleton(catalogue: Catalogue) -> _Skeleton:
    key = _catalogue_key(catalogue)
    got = _SKELETONS.get(key)
    if got is None:
        if len(_SKELETONS) >= 8:  # a handful of catalogues at most; never grow without bound
            _SKELETONS.clear()
        got = _SKELETONS[key] = _make_skeleton(_build(catalogue, {}, {}))
    return got


def _make_skeleton(template: bytes) -> _Skeleton:
    """Split the blank template openpyxl wrote into the parts every filled file shares and the places
    where the cover values and the data rows go."""
    import xml.etree.ElementTree as ET  # noqa: N817 - stdlib convention; parses only openpyxl's own output

    with zipfile.ZipFile(io.BytesIO(template)) as z:
        parts = tuple((i.filename, z.read(i)) for i in z.infolist())
    data = dict(parts)
    rels = ET.fromstring(data["xl/_rels/workbook.xml.rels"])  # noqa: S314 - our own template, not an upload
    targets = {r.get("Id"): (r.get("Target") or "").lstrip("/") for r in rels}
    book = ET.fromstring(data["xl/workbook.xml"])  # noqa: S314
    rid = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    part_of = {s.get("name"): targets[s.get(rid)] for s in book.iter(f"{_NS}sheet")}
    sheets = {spec.name: _sheet_part(spec, part_of[spec.name], data[part_of[spec.name]].decode())
              for spec in DATA_SHEETS}
    cover_part = part_of[SHEET_COVER]
    return _Skeleton(parts, cover_part, data[cover_part].decode(), sheets)


def _sheet_part(spec: SheetSpec, part: str, xml: str) -> _SheetPart:
    """A data sheet of the blank template split around its dimension and rows, with each column's default
    style (every formatted column must have one)."""
    import xml.etree.ElementTree as ET  # noqa: N817 - stdlib convention; parses only openpyxl's own output

    col_style: dict[int, str] = {}
    for col in ET.fromstring(xml).iter(f"{_NS}col"):  # noqa: S314 - our own template, not an upload
        for j in range(int(col.get("min") or 0), int(col.get("max") or 0) + 1):
            col_style[j] = col.get("style") or ""
    fmts = _formats(spec)
    n = len(spec.columns)
    head, rest = xml.split('<dimension ref="', 1)
    dim, rest = rest.split('"', 1)
    rows, tail = rest.split("</sheetData>", 1)
    assert dim == f"A1:{get_column_letter(n)}1", dim  # the header row alone
    out = _SheetPart(
        part, head + '<dimension ref="', '"' + rows, "</sheetData>" + tail,
        tuple(get_column_letter(j) for j in range(1, n + 1)),
        tuple(f' s="{col_style[j]}"' if fmts[j - 1] and col_style.get(j) else "" for j in range(1, n + 1)),
        get_column_letter(n))
    if any(f and not col_style.get(j) for j, f in enumerate(fmts, start=1)):
        raise AssertionError(f"{spec.name}: a formatted column without a default style")
    return out


def _text(v: str) -> str:
    """An inline string as openpyxl writes it (ElementTree escaping; xml:space when padded), after the one
    writer rule (``neutralise_cell_text``) that ``_build`` applies too."""
    v = neutralise_cell_text(v)
    if len(v) > 32767 or _ILLEGAL.search(v) or (len(v) > 1 and v[0] == "=") or v in ERROR_CODES:
        raise _Unusual(v[:40])
    esc = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    stripped = v.strip()
    if stripped and stripped != v:
        return f'<is><t xml:space="preserve">{esc}</t></is>'
    return f"<is><t>{esc}</t></is>"


def _cell(ref: str, style: str, v: Any) -> str:
    """One ``<c>`` exactly as openpyxl's ``etree_write_cell`` writes the value the old writer set."""
    t = type(v)
    if t is str:
        return f'<c r="{ref}"{style} t="inlineStr">{_text(v)}</c>'
    if t is float or t is int:
        if v != v or v in (float("inf"), float("-inf")):
            raise _Unusual(repr(v))
        return f'<c r="{ref}"{style} t="n"><v>{v:.16g}</v></c>'
    if t is date and style and v > date(1900, 2, 28):  # the serial, styled with the column's format
        return f'<c r="{ref}"{style} t="n"><v>{(v - _EPOCH).days}</v></c>'
    raise _Unusual(repr(v))


def _sheet_xml(sp: _SheetPart, rows: Iterable[Sequence[Any]]) -> str:
    out: list[str] = []
    last = 1
    for r, values in enumerate(rows, start=2):
        cells = [_cell(f"{sp.letters[j]}{r}", sp.styles[j], v)
                 for j, v in enumerate(values) if v is not None and v != ""]
        if cells:
            out.append(f'<row r="{r}">{"".join(cells)}</row>')
            last = r
    return f"{sp.before_dimension}A1:{sp.last_col}{last}{sp.before_rows}{''.join(out)}{sp.after_rows}"


def _cover_xml(sk: _Skeleton, cover: dict[str, str]) -> str:
    values = [cover.get(f.key) or None for f in COVER]

    def fill(m: re.Match[str]) -> str:
        v = values[int(m.group(1)) - 1]
        if v is None:
            return m.group(0)
        if type(v) is not str:
            raise _Unusual(repr(v))
        return f'<c r="B{m.group(1)}" s="{m.group(2)}" t="inlineStr">{_text(v)}</c>'

    return _COVER_CELL.sub(fill, sk.cover_xml)


def _default_saved_at(month: str) -> datetime:
    """When a ledger is taken to have been saved unless told: as its month closes (the 1st of the next)."""
    try:
        y, m = int(month[:4]), int(month[5:7])
        return datetime(y + m // 12, m % 12 + 1, 1)
    except (ValueError, IndexError):
        return datetime(1980, 1, 1)


def _zip(parts: Iterable[tuple[str, bytes]], when: datetime) -> bytes:
    buf = io.BytesIO()
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16  # as zipfile gives openpyxl's entries
            z.writestr(info, data)
    return buf.getvalue()


def write_ledger_workbook(draft: LedgerDraft, catalogue: Catalogue | None = None, *,
                          saved_at: datetime | None = None) -> bytes:
    """A filled workbook exactly as a clerk would produce it from the template (quantities in tonnes).

    Every part but the cover, the four data sheets and the document dates is the blank template's as
    openpyxl wrote it (rendered once per process and catalogue: comments, validations, code lists,
    styles, instructions); the filled sheets are rendered as openpyxl renders them, so the file equals
    ``write_ledger_workbook_openpyxl``'s part for part, at a fraction of the cost (the demo writes
    thousands). Deterministic: the document and zip dates are ``saved_at`` (default: the 1st of the month
    after the ledger's), so the same draft gives the same bytes. A value it does not render itself (e.g.
    text starting with ``=``) makes openpyxl build the file."""
    cat = catalogue or Catalogue.default()
    cover, rows = _ledger_rows(draft)
    when = saved_at or _default_saved_at(draft.month)
    sk = _skeleton(cat)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        own = {sk.cover_part: _cover_xml(sk, cover).encode()}
        for name, sp in sk.sheets.items():
            own[sp.part] = _sheet_xml(sp, rows[name]).encode()
    except _Unusual:
        return _pinned(_build(cat, cover, rows), when)
    own["docProps/core.xml"] = _CORE_DATES.sub(rf"\g<1>{stamp}\g<2>",
                                               dict(sk.parts)["docProps/core.xml"].decode()).encode()
    return _zip(((name, own.get(name, data)) for name, data in sk.parts), when)


def _pinned(content: bytes, when: datetime) -> bytes:
    """An openpyxl-written file with its document and zip dates set to ``when`` (openpyxl stamps now)."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _zip(((n, _CORE_DATES.sub(rf"\g<1>{stamp}\g<2>", d.decode()).encode() if n == "docProps/core.xml" else d)
                 for n, d in parts), when)


# --- the annotated error workbook ---------------------------------------------------------------
ANNOTATE_MAX_BYTES = 4 * 1024 * 1024
"""Above this upload size the annotated answer is the 错误清单 sheet alone: openpyxl holds a whole
workbook in memory (about 4 KB per row), which a 20 MB upload would turn into gigabytes."""
ANNOTATE_MAX_CELLS = 300_000
"""The same for an upload whose ledger sheets hold more cells than this (issue 17: a 3.1 MB file cost 225 s
and 4.8 GB): openpyxl's cost follows the cells, not the compressed size."""
_KEEP = frozenset({SHEET_COVER, *(s.name for s in DATA_SHEETS), *KNOWN_EXTRA_SHEETS})
_SHEET_EL = re.compile(r"<(?:[\w.-]+:)?sheet\b[^>]*?/>|<(?:[\w.-]+:)?sheet\b[^>]*?>.*?</(?:[\w.-]+:)?sheet>", re.S)
_SHEET_NAME = re.compile(r"\bname\s*=\s*[\"']([^\"']*)[\"']")
_LOCAL_NAME = re.compile(r"<(?:[\w.-]+:)?definedName\b[^>]*\blocalSheetId\b[^>]*?(?:/>|>.*?</(?:[\w.-]+:)?definedName>)", re.S)


def _ledger_sheets_only(data: bytes) -> bytes | None:
    """The xlsx with every sheet that is not the ledger's left out of ``workbook.xml`` (so openpyxl never
    loads an uploader's extra sheets), or None when the ledger sheets hold over ``ANNOTATE_MAX_CELLS``."""
    import html

    from imports.safety import _chunks, sheet_parts

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        keep = [(n, m) for n, m in sheet_parts(zf) if n.strip() in _KEEP]
        cells = 0
        for _n, member in keep:
            for part in _chunks(zf, member):
                cells += part.count(b"<c") + part.count(b":c ")
                if cells > ANNOTATE_MAX_CELLS:
                    return None
        wbx = zf.read("xl/workbook.xml").decode("utf-8")

        def drop(m: re.Match[str]) -> str:
            name = _SHEET_NAME.search(m.group(0))
            return m.group(0) if name is not None and html.unescape(name.group(1)).strip() in _KEEP else ""

        wbx = _LOCAL_NAME.sub("", _SHEET_EL.sub(drop, wbx))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for i in zf.infolist():
                if i.filename == "xl/workbook.xml":
                    dst.writestr(i.filename, wbx)
                elif not i.filename.lower().startswith("xl/worksheets/") or i.filename in {m for _, m in keep} \
                        or "/_rels/" in i.filename:
                    dst.writestr(i, zf.read(i))
        return out.getvalue()


def _as_xlsx(data: bytes) -> Workbook | None:
    """The upload's ledger sheets as an openpyxl workbook: loaded directly when xlsx, rebuilt from calamine
    otherwise; None when they are too big to annotate cell by cell."""
    if data.startswith(b"PK"):
        try:
            trimmed = _ledger_sheets_only(data)
        except (KeyError, zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError):
            trimmed = b""
        if trimmed is None:
            return None
        try:
            return load_workbook(io.BytesIO(trimmed))
        except Exception:  # noqa: BLE001, S110 - ods or anything openpyxl cannot load: rebuild the values
            pass
    from python_calamine import CalamineWorkbook

    src = CalamineWorkbook.from_filelike(io.BytesIO(data))
    names = [n for n in src.sheet_names if n.strip() in _KEEP]
    sheets = [src.get_sheet_by_name(n) for n in names]
    if sum(s.total_height * s.total_width for s in sheets) > ANNOTATE_MAX_CELLS:
        return None
    wb = Workbook()
    wb.remove(wb.active)
    for name, sh in zip(names, sheets, strict=True):
        ws = wb.create_sheet(name[:31])
        for row in sh.to_python(skip_empty_area=False):
            ws.append([None if v == "" else neutralise_cell_text(v) for v in row])
    return wb


def annotate_workbook(data: bytes, problems: list[Problem], warnings: list[Problem] | None = None) -> bytes:
    """The uploaded workbook with every faulty cell filled red (warnings yellow) and commented with its
    message, plus a first sheet ``错误清单`` listing every problem (also those without a cell)."""
    loaded = None if len(data) > ANNOTATE_MAX_BYTES else _as_xlsx(data)
    if loaded is None:
        wb = Workbook()
        wb.remove(wb.active)
    else:
        wb = loaded
    everything = [*problems, *(warnings or [])]
    _mark_cells(wb, everything)
    _problem_list(wb, everything)
    wb.active = 0
    return workbook_bytes(wb)


def _mark_cells(wb: Workbook, problems: list[Problem]) -> None:
    """Each faulty cell filled (red for an error, yellow for warnings only), its messages in a comment."""
    by_name = {n.strip(): n for n in wb.sheetnames}
    notes: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        if p.sheet and p.sheet in by_name and p.row:
            notes.setdefault((by_name[p.sheet], f"{p.column or 'A'}{p.row}"), []).append(p)
    for (sheet, ref), ps in notes.items():
        cell = wb[sheet][ref]
        cell.fill = _RED if any(p.severity == "error" for p in ps) else _YELLOW
        text = neutralise_cell_text("\n".join(f"[{p.code}] {p.message}" for p in ps))
        cell.comment = Comment(text[:30000], "nofei", width=300, height=120)


def _problem_list(wb: Workbook, problems: list[Problem]) -> None:
    """The first sheet 错误清单: one row per problem (also those without a cell), every value neutralised."""
    ws = wb.create_sheet("错误清单", 0)
    ws.append(["级别", "代码", "工作表", "行", "列", "表头", "值", "说明", "message"])
    for c in ws[1]:
        c.font = _HEAD_FONT
        c.fill = _HEAD_FILL
    for p in problems:
        ws.append([neutralise_cell_text(v) for v in (
            "错误" if p.severity == "error" else "提示", p.code, p.sheet, p.row, p.column, p.header,
            None if p.value is None else str(p.value), p.message, p.message_en)])
    for letter, w in zip("ABCDEFGHI", (6, 20, 10, 6, 5, 16, 18, 60, 60), strict=True):
        ws.column_dimensions[letter].width = w
    ws.freeze_panes = "A2"
