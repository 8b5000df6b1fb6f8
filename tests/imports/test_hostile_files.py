"""Hostile and broken uploads are refused before or while parsing, with TooLarge (413) or
UnsupportedFile (415) and a stable code, without reading more than the limits allow."""

from __future__ import annotations

import io
import zipfile

import pytest

from imports import ReadLimits, read_monthly_ledger
from nofei.catalogue import Catalogue
from nofei.errors import TooLarge, UnsupportedFile
from tests.imports.ledger_builders import balanced_sheets, workbook

CAT = Catalogue.default()


def read(data: bytes, limits: ReadLimits | None = None):
    return read_monthly_ledger(data, filename="x.xlsx", catalogue=CAT, limits=limits)


def rezip(data: bytes, *, add: dict[str, bytes] | None = None, replace: dict[str, bytes] | None = None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = (replace or {}).get(item.filename, src.read(item.filename))
            dst.writestr(item.filename, body)
        for name, body in (add or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


GOOD = workbook(balanced_sheets())


def refused(exc, data, code, limits=None):
    with pytest.raises(exc) as ei:
        read(data, limits)
    assert ei.value.code == code
    return ei.value


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf\xe5\xba\x9f\xe7\x89\xa9,\xe6\x95\xb0\xe9\x87\x8f\n1,2\n",  # CSV
                                  b"<html><body>not excel</body></html>", b"%PDF-1.7\n", bytes(range(256)) * 10])
def test_non_spreadsheets_renamed_to_xlsx(data):
    refused(UnsupportedFile, data, "not_a_spreadsheet")


def test_empty_file():
    refused(UnsupportedFile, b"", "empty_file")


def test_a_zip_that_is_not_a_workbook():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    refused(UnsupportedFile, buf.getvalue(), "not_a_spreadsheet")


def test_truncated_file():
    refused(UnsupportedFile, GOOD[: len(GOOD) // 2], "corrupt_file")


def test_upload_over_the_byte_limit():
    e = refused(TooLarge, GOOD, "file_too_large", ReadLimits(max_upload_bytes=1000))
    assert e.problems and e.problems[0].message_en


def test_zip_bomb_by_ratio_is_refused_from_the_directory():
    bomb = rezip(GOOD, add={"xl/media/zeros.bin": b"\0" * (30 * 1024 * 1024)})
    assert len(bomb) < 200_000
    refused(TooLarge, bomb, "compression_ratio")


def test_zip_bomb_by_total_uncompressed_size():
    refused(TooLarge, GOOD, "uncompressed_too_large", ReadLimits(max_uncompressed_bytes=10_000))


def test_xml_entity_declarations_are_refused():
    src = zipfile.ZipFile(io.BytesIO(GOOD))
    sheet = src.read("xl/worksheets/sheet1.xml")
    evil = b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n' + sheet
    refused(UnsupportedFile, rezip(GOOD, replace={"xl/worksheets/sheet1.xml": evil}), "xml_entities")


def test_macro_enabled_workbooks_are_refused():
    refused(UnsupportedFile, rezip(GOOD, add={"xl/vbaProject.bin": b"\0" * 100}), "macro_enabled")
    src = zipfile.ZipFile(io.BytesIO(GOOD))
    ct = src.read("[Content_Types].xml").replace(
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        b"application/vnd.ms-excel.sheet.macroEnabled.main+xml")
    refused(UnsupportedFile, rezip(GOOD, replace={"[Content_Types].xml": ct}), "macro_enabled")


def test_encrypted_office_file_is_refused():
    # An encrypted .xlsx is an OLE compound file with EncryptionInfo/EncryptedPackage streams.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 1000
    refused(UnsupportedFile, ole, "encrypted")


def test_ole_file_without_a_workbook_is_refused():
    doc = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "WordDocument".encode("utf-16-le") + b"\0" * 1000
    refused(UnsupportedFile, doc, "not_a_spreadsheet")


def test_xlsb_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.bin", b"\0" * 10)
    refused(UnsupportedFile, buf.getvalue(), "not_a_spreadsheet")


def test_too_many_sheets():
    s = balanced_sheets()
    for i in range(6):
        s[f"附表{i}"] = [["x"]]
    refused(TooLarge, workbook(s), "too_many_sheets", ReadLimits(max_sheets=8))


def test_too_many_rows():
    s = balanced_sheets()
    s["转出"] += [s["转出"][1]] * 20
    refused(TooLarge, workbook(s), "too_many_rows", ReadLimits(max_rows_per_sheet=10))


def test_corrupt_sheet_xml_inside_a_valid_zip():
    refused(UnsupportedFile, rezip(GOOD, replace={"xl/worksheets/sheet2.xml": b"<worksheet><sheetData><row"}),
            "corrupt_file")
