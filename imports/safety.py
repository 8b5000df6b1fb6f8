"""File-safety checks made before any parser sees an upload (issue 3, "Hostile files").

Everything here works on the raw bytes and the zip directory only, in bounded memory: the upload
size, the uncompressed total and per-member compression ratio (zip bombs), XML DTD/entity
declarations, macro-enabled and encrypted files, truncated archives and non-spreadsheets.
"""

from __future__ import annotations

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
        )


def _unsupported(code: str, zh: str, en: str) -> UnsupportedFile:
    return UnsupportedFile(f"{zh} ({en})", code=code, problems=[Problem(code=code, message=zh, message_en=en)])


def _too_large(code: str, zh: str, en: str) -> TooLarge:
    return TooLarge(f"{zh} ({en})", code=code, problems=[Problem(code=code, message=zh, message_en=en)])


def sniff(data: bytes, limits: ReadLimits, filename: str = "") -> FileKind:
    """Decide what the bytes are and refuse anything unsafe; the file's name is not trusted."""
    if len(data) > limits.max_upload_bytes:
        raise _too_large("file_too_large", f"文件超过 {limits.max_upload_bytes // (1024 * 1024)} MB 上限",
                         f"file is over the {limits.max_upload_bytes} byte limit")
    if data.startswith(_OLE_MAGIC):
        return _check_ole(data)
    if data.startswith(_ZIP_MAGIC):
        return _check_zip(data, limits)
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
    names = {i.filename for i in infos}
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
    lower = {n.lower() for n in names}
    if "mimetype" in names:
        mt = zf.read("mimetype")[:100]
        if mt.strip() != b"application/vnd.oasis.opendocument.spreadsheet":
            raise _unsupported("not_a_spreadsheet", "不是电子表格文件", f"OpenDocument of type {mt[:60]!r}")
        kind: FileKind = "ods"
    elif "xl/workbook.xml" in lower:
        kind = "xlsx"
    elif "xl/workbook.bin" in lower:
        raise _unsupported("not_a_spreadsheet", "不支持 .xlsb 格式，请另存为 .xlsx", "xlsb is not accepted")
    else:
        raise _unsupported("not_a_spreadsheet", "不是电子表格文件（压缩包）", "a zip file that is not a spreadsheet")
    if any(n.endswith("vbaproject.bin") for n in lower):
        raise _unsupported("macro_enabled", "文件包含宏，请另存为不含宏的 .xlsx", "the file contains macros (vbaProject.bin)")
    if kind == "xlsx" and "[content_types].xml" in lower:
        ct = _read_member(zf, next(n for n in names if n.lower() == "[content_types].xml"), 1 << 20)
        if b"macroEnabled" in ct or b"vbaProject" in ct:
            raise _unsupported("macro_enabled", "文件包含宏，请另存为不含宏的 .xlsx", "macro-enabled content type")
    if kind == "ods" and any(n.lower().startswith("basic/") for n in names):
        raise _unsupported("macro_enabled", "文件包含宏", "the file contains Basic macros")
    for i in infos:
        n = i.filename.lower()
        if n.endswith((".xml", ".rels", ".vml")):
            _check_prolog(zf, i)
    return kind


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
