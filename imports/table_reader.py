"""The first sheet of a tabular workbook (manifest import, units import) as rows, behind the same safety
checks and pre-scan as the ledger reader (issue 17: one gate for every spreadsheet). Runs in the parse
worker (``imports.gate``)."""

from __future__ import annotations

import io
from typing import Any

from imports.safety import FileKind, ReadLimits, _too_large, _unsupported, sniff


def first_sheet_rows(data: bytes, limits: ReadLimits, *, max_rows: int, kinds: tuple[FileKind, ...] = ("xlsx",),
                     skip_empty_area: bool = True) -> tuple[str, list[list[Any]]]:
    """(sheet name, calamine rows) of the first sheet; ``UnsupportedFile`` for a kind not in ``kinds``,
    ``TooLarge`` past ``max_rows`` data rows (checked on the sheet's XML before it is parsed)."""
    from python_calamine import CalamineWorkbook

    kind = sniff(data, _with_rows(limits, max_rows), "")
    if kind not in kinds:
        raise _unsupported("not_a_spreadsheet", "请上传 .xlsx 文件", f"a .{kind} file; {'/'.join(kinds)} expected")
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = wb.sheet_names[0]
        ws = wb.get_sheet_by_name(sheet)
        if ws.total_height > max_rows + 1:
            raise _too_large("too_many_rows", f"最多 {max_rows} 行", f"at most {max_rows} rows")
        rows = ws.to_python(skip_empty_area=skip_empty_area)
    except (IndexError, ValueError, TypeError, OSError, RuntimeError) as e:
        raise _unsupported("corrupt_file", "无法读取工作簿", f"unreadable workbook: {type(e).__name__}") from e
    except Exception as e:  # noqa: BLE001 - calamine's error types vary by format
        if type(e).__module__.startswith("nofei"):
            raise
        raise _unsupported("corrupt_file", "无法读取工作簿", f"unreadable workbook: {type(e).__name__}") from e
    return sheet, rows


def _with_rows(limits: ReadLimits, max_rows: int) -> ReadLimits:
    from dataclasses import replace

    return replace(limits, max_rows_per_sheet=min(limits.max_rows_per_sheet, max_rows))
