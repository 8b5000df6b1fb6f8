"""Hostile files, generated (issue 17): each from a good workbook or the committed .xls fixture by a
small, named change, so the corpus needs no committed binaries."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.imports.ledger_builders import balanced_sheets, workbook

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OUT_SHEET = "xl/worksheets/sheet4.xml"  # 转出 in the builders' workbook

XLS_ABORT_OFFSET, XLS_ABORT_BYTE = 3735, 0x7F
"""The high byte of the first sheet's DIMENSIONS rwMac: calamine reserves 170 GB and Rust aborts."""
XLS_PANIC_OFFSET, XLS_PANIC_BYTE = 2624, 0xFF
"""A byte of a BOUNDSHEET record: calamine panics (``range start index … out of range``)."""


def good() -> bytes:
    return workbook(balanced_sheets())


def rezip(data: bytes, change: Callable[[str, bytes], bytes | None], add: dict[str, bytes] | None = None) -> bytes:
    """The zip with each member passed through ``change(name, body)`` (None drops it), plus ``add``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = change(item.filename, src.read(item.filename))
            if body is not None:
                dst.writestr(item.filename, body)
        for name, body in (add or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


def with_sheet_xml(edit: Callable[[bytes], bytes], member: str = OUT_SHEET, data: bytes | None = None) -> bytes:
    return rezip(data or good(), lambda n, b: edit(b) if n == member else b)


def with_cell(ref: str, member: str = OUT_SHEET) -> bytes:
    """One more cell, at ``ref`` (e.g. XFD1048576), in its own row at the end of the sheet."""
    row = "".join(ch for ch in ref if ch.isdigit())
    return with_sheet_xml(lambda x: x.replace(b"</sheetData>", f'<row r="{row}"><c r="{ref}"><v>1</v></c></row>'
                                               f"</sheetData>".encode()), member)


def with_dimension(ref: str) -> bytes:
    def edit(x: bytes) -> bytes:
        import re

        x = re.sub(rb"<dimension [^>]*/>", b"", x)
        return x.replace(b"<sheetViews>", f'<dimension ref="{ref}"/><sheetViews>'.encode(), 1)
    return with_sheet_xml(edit)


def cells_without_r(n: int) -> bytes:
    """A row of ``n`` cells without ``r`` attributes: calamine places them one after another."""
    return with_sheet_xml(lambda x: x.replace(b"</sheetData>", b'<row r="9">' + b"<c><v>1</v></c>" * n
                                              + b"</row></sheetData>"))


def prefixed_cell(ref: str) -> bytes:
    """The cell written with a namespace prefix (calamine matches local names)."""
    ns = b' xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    row = "".join(ch for ch in ref if ch.isdigit())
    return with_sheet_xml(lambda x: x.replace(b"</sheetData>", f'<x:row r="{row}"{ns.decode()}><x:c r="{ref}">'
                                              f"<x:v>1</x:v></x:c></x:row></sheetData>".encode()))


def macro_by_char_refs() -> bytes:
    """The main part's content type says macroEnabled with XML character references (``&#x6d;``)."""
    def edit(name: str, body: bytes) -> bytes:
        if name != "[Content_Types].xml":
            return body
        return body.replace(b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                            b"application/vnd.ms-excel.sheet.&#x6d;&#97;croEnabled.main+xml")
    return rezip(good(), edit)


def xls_changed(offset: int, byte: int) -> bytes:
    data = bytearray((FIXTURES / "ledger_2025-03.xls").read_bytes())
    data[offset] = byte
    return bytes(data)


def extra_sheet(rows: int, cols: int = 60) -> bytes:
    """The good workbook plus a sheet 附表 of ``rows`` × ``cols`` numbers (openpyxl used to load it all
    to annotate the upload)."""
    row_xml = "".join(f'<c r="{{c}}{{r}}"><v>{j}</v></c>'.replace("{c}", _letters(j + 1)) for j in range(cols))
    body = "".join(f'<row r="{r}">' + row_xml.replace("{r}", str(r)) + "</row>" for r in range(1, rows + 1))
    sheet = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             f"{body}</sheetData></worksheet>").encode()

    def edit(name: str, b: bytes) -> bytes:
        if name == "xl/workbook.xml":
            return b.replace(b"</sheets>", b'<sheet name="\xe9\x99\x84\xe8\xa1\xa8" sheetId="99" r:id="rId99"/></sheets>')
        if name == "xl/_rels/workbook.xml.rels":
            return b.replace(b"</Relationships>", b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/'
                             b'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet99.xml"/>'
                             b"</Relationships>")
        if name == "[Content_Types].xml":
            return b.replace(b"</Types>", b'<Override PartName="/xl/worksheets/sheet99.xml" ContentType="application/'
                             b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
        return b
    return rezip(good(), edit, add={"xl/worksheets/sheet99.xml": sheet})


def _letters(n: int) -> str:
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def manifest_import_with_cell(ref: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["分组", "接收单位统一社会信用代码", "计划转移日期", "废物代码", "数量（吨）"])
    buf = io.BytesIO()
    wb.save(buf)
    row = "".join(ch for ch in ref if ch.isdigit())
    return rezip(buf.getvalue(), lambda n, b: b.replace(b"</sheetData>", f'<row r="{row}"><c r="{ref}"><v>1</v></c>'
                                                          f"</row></sheetData>".encode())
                 if n == "xl/worksheets/sheet1.xml" else b)


def xls_truncated(n: int) -> bytes:
    """The committed .xls cut after ``n`` bytes (an interrupted download)."""
    return (FIXTURES / "ledger_2025-03.xls").read_bytes()[:n]


def xls_flipped(offset: int) -> bytes:
    """The committed .xls with every bit of one byte flipped."""
    data = bytearray((FIXTURES / "ledger_2025-03.xls").read_bytes())
    data[offset] ^= 0xFF
    return bytes(data)


ODS_CELL = ('<table:table-cell office:value-type="float" office:value="1" calcext:value-type="float">'
            "<text:p>1</text:p></table:table-cell>")
ODS_PAD_CELLS = '<table:table-cell table:number-columns-repeated="16382"/>'
"""The empty cells LibreOffice pads each cover row with (to column XFD): counted past, never refused."""
ODS_PAD_ROWS = 'table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="16384"/>'
"""The empty rows LibreOffice pads the cover with (to row 1048576)."""


def ods_changed(old: str, new: str) -> bytes:
    """The committed .ods with the first ``old`` of its content.xml replaced by ``new``."""
    src = (FIXTURES / "ledger_2025-03.ods").read_bytes()

    def edit(name: str, body: bytes) -> bytes:
        if name != "content.xml":
            return body
        assert old.encode() in body
        return body.replace(old.encode(), new.encode(), 1)
    return rezip(src, edit)


def ods_cell_repeated(columns: int | str) -> bytes:
    """A 1 in the cover's third column, repeated ``columns`` times (a 15 KB file naming 16 million cells)."""
    return ods_changed(ODS_PAD_CELLS, ODS_CELL.replace("<table:table-cell ", f'<table:table-cell '
                                                         f'table:number-columns-repeated="{columns}" ', 1))


def ods_row_repeated(rows: int) -> bytes:
    """The cover's padding rows, from row 6, holding a 1 in column A, repeated ``rows`` times."""
    return ods_changed(ODS_PAD_ROWS, f'table:number-rows-repeated="{rows}">{ODS_CELL}')
