"""File-safety checks made before any parser sees an upload (issue 3, "Hostile files").

Everything here works on the raw bytes and the zip directory only, in bounded memory: the upload
size, the uncompressed total and per-member compression ratio (zip bombs), XML DTD/entity
declarations, macro-enabled and encrypted files, truncated archives and non-spreadsheets.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Literal

from nofei.errors import TooLarge, UnsupportedFile
from nofei.problems import Problem

FileKind = Literal["xlsx", "xls", "ods"]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_PROLOG_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Limits on an upload; built from the settings in ``api/config.py`` with :meth:`from_settings`."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_uncompressed_bytes: int = 200 * 1024 * 1024
    max_compression_ratio: int = 100
    max_sheets: int = 20
    max_rows_per_sheet: int = 200_000
    max_cell_chars: int = 2_000
    balance_tolerance_kg: int = 1
    max_columns: int = 64
    """Widest sheet accepted (the contract's widest sheet has 10 columns): a cell beyond is refused before
    any parser runs, since calamine allocates rows × columns for the sheet."""
    parse_memory_bytes: int = 2 * 1024 ** 3
    """Address-space limit (RLIMIT_AS) of the worker process that parses an upload (``imports.worker``)."""
    parse_seconds: float = 60.0
    """Wall-clock limit per file in the worker (a slower file is answered 413 and the worker replaced)."""
    parse_workers: int = 2
    """Worker processes (0: parse in the calling process, for trusted files only)."""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> ReadLimits:
        d = cls()
        return cls(
            max_upload_bytes=int(settings.get("MAX_UPLOAD_BYTES", d.max_upload_bytes)),
            max_uncompressed_bytes=int(settings.get("MAX_UNCOMPRESSED_BYTES", d.max_uncompressed_bytes)),
            max_compression_ratio=int(settings.get("MAX_COMPRESSION_RATIO", d.max_compression_ratio)),
            max_sheets=int(settings.get("MAX_SHEETS", d.max_sheets)),
            max_rows_per_sheet=int(settings.get("MAX_ROWS_PER_SHEET", d.max_rows_per_sheet)),
            max_cell_chars=int(settings.get("MAX_CELL_CHARS", d.max_cell_chars)),
            balance_tolerance_kg=int(settings.get("BALANCE_TOLERANCE_KG", d.balance_tolerance_kg)),
            max_columns=int(settings.get("MAX_COLUMNS", d.max_columns)),
            parse_memory_bytes=int(settings.get("PARSE_MEMORY_BYTES", d.parse_memory_bytes)),
            parse_seconds=float(settings.get("PARSE_SECONDS", d.parse_seconds)),
            parse_workers=int(settings.get("PARSE_WORKERS", d.parse_workers)),
        )


def _unsupported(code: str, zh: str, en: str) -> UnsupportedFile:
    return UnsupportedFile(f"{zh} ({en})", code=code, problems=[Problem(code=code, message=zh, message_en=en)])


def _too_large(code: str, zh: str, en: str) -> TooLarge:
    return TooLarge(f"{zh} ({en})", code=code, problems=[Problem(code=code, message=zh, message_en=en)])


def sniff(data: bytes, limits: ReadLimits, filename: str = "", *, prescan: bool = True) -> FileKind:
    """Decide what the bytes are and refuse anything unsafe; the file's name is not trusted. ``prescan=False``
    skips the sheet pre-scan: only for a bounded worker whose caller runs it concurrently (``imports.gate``)."""
    if len(data) > limits.max_upload_bytes:
        raise _too_large("file_too_large", f"文件超过 {limits.max_upload_bytes // (1024 * 1024)} MB 上限",
                         f"file is over the {limits.max_upload_bytes} byte limit")
    if data.startswith(_OLE_MAGIC):
        return _check_ole(data)
    if data.startswith(_ZIP_MAGIC):
        kind = _check_zip(data, limits)
        if prescan:
            (prescan_xlsx if kind == "xlsx" else prescan_ods)(data, limits)
        return kind
    if not data:
        raise _unsupported("empty_file", "文件为空", "the file is empty")
    raise _unsupported("not_a_spreadsheet", "不是 Excel/WPS/ODS 表格文件（请上传 .xlsx、.xls 或 .ods）",
                       "not a spreadsheet (.xlsx, .xls or .ods expected)")


def _check_ole(data: bytes) -> FileKind:
    """An OLE compound file is a legacy .xls, or an encrypted OOXML package (EncryptionInfo stream)."""
    if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
        raise _unsupported("encrypted", "文件设置了密码，请取消密码后重新上传", "the file is password-protected")
    if "_VBA_PROJECT".encode("utf-16-le") in data:
        raise _unsupported("macro_enabled", "文件包含宏，请另存为不含宏的 .xlsx", "the file contains macros")
    if "Workbook".encode("utf-16-le") not in data and "Book".encode("utf-16-le") not in data:
        raise _unsupported("not_a_spreadsheet", "不是 Excel 表格文件", "an OLE file without a workbook stream")
    return "xls"


def _check_zip(data: bytes, limits: ReadLimits) -> FileKind:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise _unsupported("corrupt_file", "文件已损坏或不完整，无法打开", f"the file is corrupt or truncated ({e})") from e
    _check_sizes(infos, limits)
    names = {i.filename for i in infos}
    kind = _zip_kind(zf, names)
    _check_macros(zf, names, kind)
    for i in infos:
        if i.filename.lower().endswith((".xml", ".rels", ".vml")):
            _check_prolog(zf, i)
    return kind


def _check_sizes(infos: list[zipfile.ZipInfo], limits: ReadLimits) -> None:
    """Encrypted members, a member's compression ratio and the uncompressed total (zip bombs)."""
    total = 0
    for i in infos:
        total += i.file_size
        if i.flag_bits & 0x1:
            raise _unsupported("encrypted", "文件已加密", "an encrypted zip member")
        if i.file_size > 1_000_000 and i.file_size > limits.max_compression_ratio * max(i.compress_size, 1):
            raise _too_large("compression_ratio", "文件压缩比异常（疑似压缩炸弹）",
                             f"member {i.filename} expands {i.file_size // max(i.compress_size, 1)}×")
    if total > limits.max_uncompressed_bytes:
        raise _too_large("uncompressed_too_large", "文件解压后过大", f"uncompressed size {total} bytes is over the limit")


def _zip_kind(zf: zipfile.ZipFile, names: set[str]) -> FileKind:
    """An OpenDocument spreadsheet (by its ``mimetype``) or an xlsx (by its workbook part); anything else refused."""
    lower = {n.lower() for n in names}
    if "mimetype" in names:
        mt = zf.read("mimetype")[:100]
        if mt.strip() != b"application/vnd.oasis.opendocument.spreadsheet":
            raise _unsupported("not_a_spreadsheet", "不是电子表格文件", f"OpenDocument of type {mt[:60]!r}")
        return "ods"
    if "xl/workbook.xml" in lower:
        return "xlsx"
    if "xl/workbook.bin" in lower:
        raise _unsupported("not_a_spreadsheet", "不支持 .xlsb 格式，请另存为 .xlsx", "xlsb is not accepted")
    raise _unsupported("not_a_spreadsheet", "不是电子表格文件（压缩包）", "a zip file that is not a spreadsheet")


def _check_macros(zf: zipfile.ZipFile, names: set[str], kind: FileKind) -> None:
    """A VBA project, a macro-enabled content type or relationship (however spelled), or ODS Basic macros."""
    lower = {n.lower() for n in names}
    if any(n.endswith("vbaproject.bin") for n in lower):
        raise _unsupported("macro_enabled", "文件包含宏，请另存为不含宏的 .xlsx", "the file contains macros (vbaProject.bin)")
    if kind == "ods":
        if any(n.lower().startswith("basic/") for n in names):
            raise _unsupported("macro_enabled", "文件包含宏", "the file contains Basic macros")
        return
    for part in ("[content_types].xml", "xl/_rels/workbook.xml.rels"):
        if part in lower:
            text = _xml_text(_read_member(zf, next(n for n in names if n.lower() == part), 1 << 20)).lower()
            if "macroenabled" in text or "vbaproject" in text:
                raise _unsupported("macro_enabled", "文件包含宏，请另存为不含宏的 .xlsx", f"macro-enabled ({part})")


def _xml_text(raw: bytes) -> str:
    """An XML part's text with character and entity references resolved, so ``&#x6d;acroEnabled`` or a
    UTF-16 part cannot hide a content type from a byte match."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4]:
        enc = "utf-16-be" if raw.startswith(b"\xfe\xff") or raw[:1] == b"\x00" else "utf-16-le"
        text = raw.decode(enc, "replace").lstrip("\ufeff")
    else:
        text = raw.decode("utf-8", "replace")
    return html.unescape(text)


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with zf.open(name) as f:
        return f.read(limit)


def _check_prolog(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse a DTD or entity declaration (billion laughs, external entities). Both can only appear
    before the root element, so only the prolog is read (at most 1 MiB), never the whole member."""
    buf = b""
    try:
        with zf.open(info) as f:
            while len(buf) < _PROLOG_LIMIT:
                chunk = f.read(16384)
                if not chunk:
                    break
                buf += chunk
                m = _ROOT_START.search(buf)
                if m:
                    buf = buf[: m.start()]
                    break
            else:
                raise _unsupported("xml_entities", "文件结构异常", f"{info.filename}: no root element in the first MiB")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise _unsupported("corrupt_file", "文件已损坏或不完整，无法打开", f"{info.filename}: {e}") from e
    if b"<!DOCTYPE" in buf or b"<!ENTITY" in buf or b"<!doctype" in buf:
        raise _unsupported("xml_entities", "文件包含不允许的 XML 实体声明", f"{info.filename} declares a DTD or entities")


# --- sheet pre-scan (issue 17): cell references and dimensions beyond the limits, before any parser ------
_P = rb"(?:[A-Za-z_][\w.-]*:)?"  # an optional namespace prefix: calamine matches local names
_Q = rb"\s*=\s*[\"']"
_DIMENSION = re.compile(rb"<" + _P + rb"dimension\b[^>]*?\sref" + _Q + rb"\s*([^\"']*)")
_ROW_OR_CELL = re.compile(rb"<(/?)" + _P + rb"(row|c)(?=[\s/>])([^>]*?)(/?)>")
_R_ATTR = re.compile(rb"(?<![\w:.-])r" + _Q + rb"\s*\$?([A-Za-z]{0,7})\$?0*(\d{0,12})")
_A1 = re.compile(r"\$?([A-Za-z]{1,7})\$?0*(\d{1,12})\s*$")
_SHEET_ENTRY = re.compile(r"<(?:[\w.-]+:)?sheet\b([^>]*)>")
_ATTR = re.compile(r"([\w:.-]+)\s*=\s*[\"']([^\"']*)[\"']")
_PREFIXED = re.compile(rb":(?:c|row)[\s/>]")
_SCAN_CHUNK = 1 << 20
_TAIL = 256  # a tag cut by a chunk boundary is looked at again with the next chunk


def column_number(letters: str) -> int:
    """Excel column letters → 1-based number (A → 1, XFD → 16384)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _letters(n: int) -> str:
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def sheet_parts(zf: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, zip member) of every worksheet of an xlsx: the workbook's sheets through its
    relationships, plus any ``xl/worksheets/*.xml`` they do not name (named by their path)."""
    names = {i.filename for i in zf.infolist()}
    by_lower = {n.lower(): n for n in names}
    wbx = _part_text(zf, by_lower, "xl/workbook.xml")
    targets = _rel_targets(_part_text(zf, by_lower, "xl/_rels/workbook.xml.rels"))
    out: list[tuple[str, str]] = []
    for m in _SHEET_ENTRY.finditer(wbx):
        a = dict(_ATTR.findall(m.group(1)))
        rid = next((v for k, v in a.items() if k.endswith(":id")), None)
        member = by_lower.get(targets.get(rid or "", "").lower().replace("/./", "/"))
        if member is not None:
            out.append((a.get("name", member).strip(), member))
    seen = {m for _, m in out}
    out.extend((n, n) for n in sorted(names)
               if n.lower().startswith("xl/worksheets/") and n.lower().endswith(".xml") and n not in seen)
    return out


def _part_text(zf: zipfile.ZipFile, by_lower: dict[str, str], part: str) -> str:
    """A small XML part's text (at most 8 MiB read), "" when the package has none."""
    return _xml_text(_read_member(zf, by_lower[part], 8 << 20)) if part in by_lower else ""


def _rel_targets(rels: str) -> dict[str, str]:
    """Relationship id → the zip member it targets (relative to ``xl/`` unless absolute)."""
    targets: dict[str, str] = {}
    for m in re.finditer(r"<(?:[\w.-]+:)?Relationship\b([^>]*)>", rels):
        a = dict(_ATTR.findall(m.group(1)))
        if "Id" in a and "Target" in a:
            t = a["Target"].replace("\\", "/")
            targets[a["Id"]] = t.lstrip("/") if t.startswith("/") else "xl/" + t
    return targets


def prescan_xlsx(data: bytes, limits: ReadLimits) -> None:
    """Refuse a sheet whose ``<dimension ref>`` or any cell lies beyond ``max_rows_per_sheet`` (+ the
    header row) or ``max_columns``, reading each sheet's XML as a stream (bounded memory, no parser):
    calamine reserves the dimension and allocates the sheet's whole rectangle, so a 1.5 KB file naming
    XFD1048576 would otherwise ask for 512 GiB.

    The usual writer's ``<c r="B7"`` is judged by two C-level regexes that match only cells beyond the
    limits; a sheet with anything else (prefixed elements, cells without ``r``, other quoting) is walked
    tag by tag, placing cells as calamine does."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        parts = sheet_parts(zf)
        for sheet, member in parts:
            if not _prescan_fast(zf, sheet, member, limits):
                _prescan_walk(zf, sheet, member, limits)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        raise _unsupported("corrupt_file", "文件已损坏或不完整，无法打开", f"the file is corrupt ({e})") from e


_WHAT_EN = {"单元格": "cell", "范围": "the dimension ending at", "行": "the row of"}


def _beyond(sheet: str, col: int, row: int, limits: ReadLimits, what: str) -> None:
    ref = f"{_letters(col)}{row}"
    what_en = _WHAT_EN[what]
    if row > limits.max_rows_per_sheet + 1:  # + the header row
        code, zh, en = "too_many_rows", f"工作表“{sheet}”的{what} {ref} 超出行数上限（最多 {limits.max_rows_per_sheet} 行）", \
            f"sheet {sheet}: {what_en} {ref} is beyond the row limit ({limits.max_rows_per_sheet} rows)"
    elif col > limits.max_columns:
        code, zh, en = "too_many_columns", f"工作表“{sheet}”的{what} {ref} 超出列数上限（最多 {limits.max_columns} 列）", \
            f"sheet {sheet}: {what_en} {ref} is beyond the column limit ({limits.max_columns} columns)"
    else:
        return
    raise TooLarge(f"{zh} ({en})", code=code, problems=[
        Problem(code=code, message=zh, message_en=en, sheet=sheet, row=row, column=_letters(col)[:10])])


def _chunks(zf: zipfile.ZipFile, member: str) -> Any:
    """The member's bytes a MiB at a time, each piece ending before a tag the next chunk completes."""
    buf = b""
    with zf.open(member) as f:
        while True:
            chunk = f.read(_SCAN_CHUNK)
            if not chunk:
                if buf:
                    yield buf
                return
            text = buf + chunk
            cut = text.rfind(b"<", max(0, len(text) - _TAIL))
            if cut <= 0:
                cut = len(text)
            yield text[:cut]
            buf = text[cut:]


def _check_dimension(part: bytes, sheet: str, limits: ReadLimits) -> bool:
    """Check ``<dimension ref>`` (calamine reserves its area); True once it or the sheet data is seen."""
    i = part.find(b"dimension")
    if i < 0:
        return b"sheetData" in part
    m = _DIMENSION.search(part, max(0, i - 64))
    if m is not None:
        a1 = _A1.match(m.group(1).decode("latin-1").split(":")[-1].strip())
        if a1:
            _beyond(sheet, column_number(a1.group(1)), int(a1.group(2)), limits, "范围")
    return True


def _candidates(limits: ReadLimits) -> re.Pattern[bytes]:
    """One C-level pass finds every cell tag worth a look: an odd one (not ``<c r="B7"``: the walk decides)
    or a canonical one whose column or row may be beyond the limits (two letters and more; a row with as
    many digits as the limit and a first digit as high, or more digits). Legit ledgers have almost none."""
    top = str(limits.max_rows_per_sheet + 1)
    rows = rf"[A-Z]{{1,3}}0*(?:[{top[0]}-9]\d{{{len(top) - 1}}}|[1-9]\d{{{len(top)},}})"
    cols = "[A-Z]{2}" + (f"|[{chr(64 + limits.max_columns + 1)}-Z]" if limits.max_columns < 26 else "")
    return re.compile(rf'<c(?: r="(?:{cols}|{rows})|[\t\n\r/>]| (?!r="[A-Z]))'.encode())


_CANONICAL = re.compile(rb'<c r="([A-Z]{1,7})(\d{1,12})"')


def _prescan_fast(zf: zipfile.ZipFile, sheet: str, member: str, limits: ReadLimits) -> bool:
    """The common case; False when the sheet needs the tag walk."""
    cand = _candidates(limits)
    dim = False
    for part in _chunks(zf, member):
        if not dim:
            dim = _check_dimension(part, sheet, limits)
        if _PREFIXED.search(part) is not None:
            return False
        m = cand.search(part)
        while m is not None:
            c = _CANONICAL.match(part, m.start())
            if c is None:
                return False
            _beyond(sheet, column_number(c.group(1).decode()), int(c.group(2)), limits, "单元格")
            m = cand.search(part, c.end())
    return True


def _prescan_walk(zf: zipfile.ZipFile, sheet: str, member: str, limits: ReadLimits) -> None:
    """Every ``row`` and ``c`` tag in order: a cell without ``r`` is the one after the previous cell, a
    row without ``r`` the one after the previous row (calamine's rule)."""
    row = col = 0
    dim = False
    for part in _chunks(zf, member):
        if not dim:
            dim = _check_dimension(part, sheet, limits)
        for close, tag, attrs, _empty in _ROW_OR_CELL.findall(part):
            if close:
                continue
            m = _R_ATTR.search(attrs)
            if tag == b"row":
                row = int(m.group(2)) if m is not None and m.group(2) else row + 1
                col = 0
                if row > limits.max_rows_per_sheet + 1:
                    _beyond(sheet, 1, row, limits, "行")
                continue
            if m is not None and m.group(1) and m.group(2):
                col, r = column_number(m.group(1).decode()), int(m.group(2))
            else:
                col, r = col + 1, max(row, 1)
            _beyond(sheet, col, r, limits, "单元格")


# --- the same for OpenDocument (content.xml): repeated rows and cells beyond the limits -----------------------
_ODS_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(table|table-row|table-cell|covered-table-cell)(?=[\s/>])([^>]*?)(/?)>"
                      rb"(?=(\s*</(?:[\w.-]+:)?(?:covered-)?table-cell\s*>)?)")  # a cell closed at once: empty
_ODS_NAME = re.compile(rb"(?<![\w.-])(?:[\w.-]+:)?name" + _Q + rb"([^\"']*)")
_ODS_VALUE = re.compile(rb"(?<![\w.-])(?:[\w.-]+:)?value-type" + _Q)
_ODS_REPEAT = {b"table-row": re.compile(rb"(?<![\w.-])(?:[\w.-]+:)?number-rows-repeated" + _Q + rb"\s*\+?(\d+)"),
               b"cell": re.compile(rb"(?<![\w.-])(?:[\w.-]+:)?number-columns-repeated" + _Q + rb"\s*\+?(\d+)")}
_HUGE = 10 ** 12


def _repeat(attrs: bytes, what: bytes) -> int:
    """A repeat count (1 without one); more than 12 digits counts as "huge" (no int() of a megabyte of digits)."""
    m = _ODS_REPEAT[what].search(attrs)
    if m is None:
        return 1
    digits = m.group(1).lstrip(b"0") or b"0"
    return _HUGE if len(digits) > 12 else max(int(digits), 1)


def prescan_ods(data: bytes, limits: ReadLimits) -> None:
    """Refuse an OpenDocument sheet whose cells holding something reach beyond ``max_rows_per_sheet`` (+ the
    header row) or ``max_columns``, counting ``number-rows-repeated`` and ``number-columns-repeated`` as
    calamine expands them, on a stream of ``content.xml`` (bounded memory, no parser): a 2 KB file repeating one
    cell a billion times would otherwise be materialised. Empty repeated cells and rows are only counted past
    (every office suite pads a sheet with them to its last row and column)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        if "content.xml" in zf.namelist():
            _OdsScan(limits).feed(_chunks(zf, "content.xml"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        raise _unsupported("corrupt_file", "文件已损坏或不完整，无法打开", f"the file is corrupt ({e})") from e


class _OdsScan:
    """Where the walk is: the sheet, the row about to start, the next cell's column (both 1-based)."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.sheet = ""
        self.row = 1
        self.rows = 1  # repeats of the current row
        self.col = 1

    def feed(self, parts: Any) -> None:
        for part in parts:
            for close, tag, attrs, empty, closed in _ODS_TAG.findall(part):
                self._tag(close == b"/", tag, attrs, empty == b"/" or bool(closed))

    def _tag(self, close: bool, tag: bytes, attrs: bytes, empty: bool) -> None:
        if tag == b"table":
            if not close:
                m = _ODS_NAME.search(attrs)
                self.sheet = html.unescape(m.group(1).decode("utf-8", "replace")).strip() if m else ""
                self.row, self.rows, self.col = 1, 1, 1
        elif tag == b"table-row":
            if close:
                self.row += self.rows
            else:
                self.rows, self.col = _repeat(attrs, b"table-row"), 1
                if empty:
                    self.row += self.rows
        elif not close:  # a cell: something in it if it has a value type or any content
            n = _repeat(attrs, b"cell")
            if not empty or _ODS_VALUE.search(attrs) is not None:
                _beyond(self.sheet, min(self.col + n - 1, _HUGE), self.row + self.rows - 1, self.limits, "单元格")
            self.col += n
