"""Text rules at the edges: which characters a stored text may hold, and what a spreadsheet cell may show.

Two rules, one place, so that every edge (JSON bodies, query strings, form fields, workbook cells) and
every writer (xlsx, csv) applies the same ones:

* :func:`refused_char` — the first character an incoming text may not contain: NUL and the other C0
  controls, DEL, the C1 controls, lone surrogates and the XML non-characters U+FFFE/U+FFFF. Tab, line
  feed and carriage return are allowed only where the field is multi-line. These are the characters
  XML 1.0 (hence xlsx) cannot hold, that PostgreSQL refuses (NUL) or that no clerk types.
* :func:`neutralise_cell_text` — what a writer puts in a text cell: characters a workbook cannot hold
  replaced by U+FFFD (so that old stored data never makes an export fail), and text a spreadsheet would
  evaluate (``=…``, ``+…``, ``-…``, ``@…``, an error literal such as ``#N/A``) prefixed with ``'``.
"""

from __future__ import annotations

import re
from typing import Any

_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_REFUSED_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FORMULA_PREFIXES = ("=", "+", "-", "@")
ERROR_LITERALS = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
MAX_CELL_CHARS = 32767  # Excel's limit for one cell

HALFWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
"""Full-width ASCII forms (U+FF01–U+FF5E) and the ideographic space to their ASCII counterparts: what a clerk's
Chinese input method types for letters, digits and spaces."""


def to_halfwidth(text: str) -> str:
    """``text`` with full-width ASCII forms and the ideographic space made ASCII (one table for every reader)."""
    return text.translate(HALFWIDTH)


def refused_char(s: str, *, multiline: bool = False) -> int | None:
    """Index of the first character ``s`` may not contain, or None. ``multiline`` allows tab, LF and CR."""
    m = (_REFUSED if multiline else _REFUSED_SINGLE_LINE).search(s)
    return m.start() if m else None


def describe_char(ch: str) -> str:
    """``U+0003`` — how a refusal names the character (the character itself may be invisible)."""
    return f"U+{ord(ch):04X}"


def neutralise_cell_text(value: Any) -> Any:
    """A value as a spreadsheet writer must store it: text made inert and printable, anything else as is."""
    if not isinstance(value, str):
        return value
    s = _XML_ILLEGAL.sub("\ufffd", value)
    if s.startswith(FORMULA_PREFIXES) or s in ERROR_LITERALS:
        s = "'" + s
    return s[:MAX_CELL_CHARS]
