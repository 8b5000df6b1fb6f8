"""File answers: the media type and extension from the bytes, the file name sanitised (RFC 6266 / 5987).

The uploader's file name and content type are the client's words: a CR/LF in either used to make every
download of that version a 500 (a header may not hold a line break), and an ``.html`` name or a
``text/html`` type would have been served back as such. What is sent is decided by the bytes.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Response

from imports import XLSX_MIME

MEDIA_TYPES = {"xlsx": XLSX_MIME, "xls": "application/vnd.ms-excel",
               "ods": "application/vnd.oasis.opendocument.spreadsheet", "bin": "application/octet-stream"}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\"\\/:*?<>|;\ud800-\udfff]")
_NOT_ASCII_NAME = re.compile(r"[^A-Za-z0-9._-]")


def file_kind(content: bytes) -> str:
    """xlsx, xls or ods by the file's signature (what the upload was sniffed as), else bin."""
    if content.startswith(_OLE):
        return "xls"
    if content.startswith(b"PK\x03\x04"):
        return "ods" if content[30:30 + len(_ODS)] == _ODS else "xlsx"
    return "bin"


def content_disposition(filename: str, fallback: str, disposition: str = "attachment") -> str:
    """``attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded name>``, both sanitised."""
    name = _UNSAFE.sub("_", filename).strip(" .") or fallback
    ascii_name = _NOT_ASCII_NAME.sub("_", fallback) or "download"
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


def original_file(content: bytes, filename: str, ledger_id: int) -> Response:
    """The stored original of a ledger version: type and extension from its bytes, the name sanitised."""
    kind = file_kind(content)
    stem = (filename or "").rsplit(".", 1)[0] if "." in (filename or "") else (filename or "")
    resp = Response(content, mimetype=MEDIA_TYPES[kind])
    resp.headers["Content-Disposition"] = content_disposition(f"{stem or f'ledger-{ledger_id}'}.{kind}",
                                                              f"ledger-{ledger_id}.{kind}")
    return resp
