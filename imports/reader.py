"""``read_monthly_ledger``: a workbook's bytes → a ``LedgerDraft``, or every error pinned to its cell.

python-calamine reads .xlsx, .xls and .ods (``to_python()`` per sheet); sheets are found by name and
columns by header text (``imports.spec``). A clean xlsx data sheet (one type per column) is read column-wise
by fastexcel instead (the same Rust calamine, handing back Arrow columns: no Python object per cell until a
column is needed, no rows→columns transposition), which keeps a 100,000-row sheet's import within 2× of
calamine's own read (issue 3, bench B1); anything unusual takes calamine's cell path (``_fast_columns``).
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import date
from operator import attrgetter
from typing import Any

from python_calamine import CalamineWorkbook, PasswordError

from imports import coerce as C  # noqa: N812
from imports.safety import ReadLimits, _too_large, _unsupported, sniff
from imports.spec import (
    COVER,
    DATA_SHEETS,
    KNOWN_EXTRA_SHEETS,
    OUT,
    STOCK,
    TREAT,
    Col,
    CoverField,
    SheetSpec,
    norm_header,
)
from nofei.catalogue import Catalogue, CodeCheck
from nofei.domain.ledger import (
    SHEET_COVER,
    LedgerDraft,
    StockLine,
    TreatmentLine,
    balance_problems,
)
from nofei.domain.transfer_columns import TransferBlock, TransferColumns, TransferSink, summarised
from nofei.domain.units import is_valid_credit_code, normalise_credit_code
from nofei.errors import LedgerRejected
from nofei.problems import Problem, SourceRef

MAX_PROBLEMS = 1000


def col_letter(j: int) -> str:
    """0-based column index → Excel letter (0 → A, 26 → AA)."""
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


class _Book:
    """The opened workbook and the problems found so far."""

    def __init__(self, data: bytes, kind: str, limits: ReadLimits) -> None:
        self.data = data
        self.kind = kind
        self.limits = limits
        try:
            self.wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
            names = list(self.wb.sheet_names)
        except PasswordError as e:
            raise _unsupported("encrypted", "文件设置了密码，请取消密码后重新上传", "the file is password-protected") from e
        except Exception as e:  # calamine raises several error types for broken files
            raise _unsupported("corrupt_file", "文件已损坏或无法读取", f"the workbook cannot be read ({type(e).__name__})") from e
        if len(names) > limits.max_sheets:
            raise _too_large("too_many_sheets", f"工作表过多（最多 {limits.max_sheets} 个）",
                             f"{len(names)} sheets, over the limit of {limits.max_sheets}")
        self.names = {n.strip(): n for n in names}
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def rows(self, name: str) -> list[list[Any]]:
        try:
            sheet = self.wb.get_sheet_by_name(self.names[name])
        except PasswordError as e:
            raise _unsupported("encrypted", "文件设置了密码", "the file is password-protected") from e
        except Exception as e:  # noqa: BLE001 - calamine's error types vary by format
            raise _unsupported("corrupt_file", f"工作表“{name}”无法读取", f"sheet {name} cannot be read ({type(e).__name__})") from e
        if sheet.total_height > self.limits.max_rows_per_sheet + 1:
            raise _too_large("too_many_rows", f"工作表“{name}”行数过多（最多 {self.limits.max_rows_per_sheet} 行）",
                             f"sheet {name} has more than {self.limits.max_rows_per_sheet} rows")
        try:
            return sheet.to_python(skip_empty_area=False)
        except Exception as e:  # noqa: BLE001
            raise _unsupported("corrupt_file", f"工作表“{name}”无法读取", f"sheet {name} cannot be read ({type(e).__name__})") from e


STREAM_CHUNK = 12_500
"""Rows per chunk handed to a ``TransferSink`` (B1: the first chunk reaches the database ~50 ms after the
sheet is parsed; more, smaller chunks only add per-chunk overhead)."""


def read_monthly_ledger(data: bytes, *, filename: str, catalogue: Catalogue, limits: ReadLimits | None = None,
                        today: date | None = None,
                        on_cover: Callable[[LedgerDraft], TransferSink | None] | None = None,
                        prescanned: bool = False) -> LedgerDraft:
    """Read and validate a monthly ledger workbook (ledger-workbook.md).

    Raises ``TooLarge``/``UnsupportedFile`` for unsafe or unreadable files and ``LedgerRejected`` with
    every error (cell errors and the balance check together); warnings go to ``draft.warnings``.

    ``on_cover`` is called with the draft once a faultless cover is read; if it returns a sink, the 转出/转入
    rows are checked in chunks of ``STREAM_CHUNK`` and every chunk is handed to it while no problem has been
    found so far, so the caller can store them while the rest is read. The draft, errors and warnings are the
    same with or without a sink (past the 1,000-problem cap the first found are kept, and chunking changes
    which those are); a caller that gets an exception must discard what it stored.

    ``prescanned``: the caller runs the sheet pre-scan itself, concurrently (the gate, with this reader in a
    bounded worker); never for a file read in an unbounded process.
    """
    limits = limits or ReadLimits()
    today = today or date.today()
    kind = sniff(data, limits, filename, prescan=not prescanned)
    book = _Book(data, kind, limits)
    draft = _read_cover(book, today)
    if draft.month:  # the year decides which edition of the 名录 checks the codes
        catalogue = catalogue.for_year(int(draft.month[:4]))
    sink = on_cover(draft) if on_cover is not None and not book.problems else None
    tainted: set[str] = set()
    blocks: list[TransferBlock] = []
    for spec in DATA_SHEETS:
        if spec.name in book.names:
            _read_sheet(book, spec, draft, catalogue, tainted, blocks, sink)
        elif spec.required:
            book.problems.append(Problem(code="missing_sheet", message=f"缺少工作表“{spec.name}”",
                                         message_en=f"sheet {spec.name} is missing", sheet=spec.name))
    draft.transfers = TransferColumns(blocks)  # type: ignore[assignment]  # a Sequence[TransferLine]
    _other_sheets(book)
    if draft.month:
        bal = balance_problems(_without(draft, tainted), limits.balance_tolerance_kg) if tainted else \
            balance_problems(summarised(draft), limits.balance_tolerance_kg)
        book.problems.extend(bal)
    if book.problems:
        raise _rejected(book)
    draft.warnings.extend(sorted(book.warnings, key=_where))  # workbook order, however the sheet was chunked
    return draft


def _other_sheets(book: _Book) -> None:
    """A sheet that is not the ledger's: a warning, or an error while a data sheet is absent (a renamed sheet
    would lose its rows)."""
    extras = [n for n in book.names if n not in (SHEET_COVER, *(s.name for s in DATA_SHEETS))
              and n not in KNOWN_EXTRA_SHEETS]
    missing = [s.name for s in DATA_SHEETS if s.name not in book.names and not s.required]
    for n in extras:
        if missing:
            book.problems.append(Problem(
                code="missing_sheet", message=f"缺少工作表“{'”“'.join(missing)}”；工作表“{n}”不属于台账（是否被改名？）",
                message_en=f"sheet(s) {', '.join(missing)} missing while sheet {n} is unknown (renamed?)",
                sheet=missing[0], value=n))
        else:
            book.warnings.append(Problem(code="extra_sheet", message=f"工作表“{n}”不属于台账，已忽略",
                                         message_en=f"sheet {n} is not part of the ledger and was ignored",
                                         sheet=n, severity="warning"))


def _rejected(book: _Book) -> LedgerRejected:
    """Every problem in workbook order (at most ``MAX_PROBLEMS``, then a note), with the warnings."""
    problems = sorted(_formula_pass(book), key=_where)
    if len(problems) >= MAX_PROBLEMS:
        problems = problems[:MAX_PROBLEMS] + [Problem(code="too_many_errors", message=f"错误过多，仅列出前 {MAX_PROBLEMS} 条",
                                                      message_en=f"only the first {MAX_PROBLEMS} errors are listed")]
    exc = LedgerRejected(f"台账有 {len(problems)} 处错误，未保存 (ledger rejected: {len(problems)} errors)",
                         problems=problems)
    exc.warnings = book.warnings
    return exc


_SHEET_ORDER = {name: i for i, name in enumerate((SHEET_COVER, *(s.name for s in DATA_SHEETS)))}


def _where(p: Problem) -> tuple[int, int, int, str]:
    """Workbook order: sheet, row, column (so a clerk can fix them top to bottom)."""
    col = p.column or ""
    return (_SHEET_ORDER.get(p.sheet or "", -1), p.row or 0, len(col), col)


def _without(draft: LedgerDraft, codes: set[str]) -> LedgerDraft:
    """The draft without lines of codes that have a faulty row: their balance cannot be judged yet."""
    return LedgerDraft(draft.credit_code, draft.unit_name, draft.month,
                       stocks=[s for s in draft.stocks if s.code not in codes],
                       treatments=[t for t in draft.treatments if t.code not in codes],
                       transfers=[t for t in draft.transfers if t.code not in codes])


# --- cover ------------------------------------------------------------------------------------
def _read_cover(book: _Book, today: date) -> LedgerDraft:
    draft = LedgerDraft(credit_code="", unit_name="", month="")
    if SHEET_COVER not in book.names:
        book.problems.append(Problem(code="missing_sheet", message=f"缺少工作表“{SHEET_COVER}”",
                                     message_en=f"sheet {SHEET_COVER} is missing", sheet=SHEET_COVER))
        return draft
    found = _cover_fields(book.rows(SHEET_COVER))
    for f in COVER:
        if f.key not in found:
            if f.required:
                book.problems.append(Problem(code="missing_value", message=f"封面缺少“{f.label}”",
                                             message_en=f"the cover has no {f.label}", sheet=SHEET_COVER,
                                             column="A", header=f.label))
            continue
        rownum, v = found[f.key]
        ref = SourceRef(SHEET_COVER, rownum, "B", f.label)
        draft.cover_refs[f.label] = ref
        text = _cover_text(book, f, ref, v)
        if text is not None:
            _cover_value(book, draft, f, ref, v, text, today)
    return draft


def _cover_fields(rows: list[list[Any]]) -> dict[str, tuple[int, Any]]:
    """Field key → (row number, the value right of its label), the first label found in the first 200 rows."""
    labels = {norm_header(f.label): f for f in COVER}
    found: dict[str, tuple[int, Any]] = {}
    for i, r in enumerate(rows[:200]):
        if not r:
            continue
        f = labels.get(norm_header(r[0]))
        if f is not None and f.key not in found:
            found[f.key] = (i + 1, r[1] if len(r) > 1 else "")
    return found


def _cover_text(book: _Book, f: CoverField, ref: SourceRef, v: Any) -> str | None:
    """The field's text, or None after a problem (too long, a control character, empty but required)."""
    text = C.to_text(v)
    if len(text) > min(book.limits.max_cell_chars, 200):
        book.problems.append(Problem.at(ref, "too_long", f"{f.label}过长", f"{f.label} is too long", value=text[:50]))
        return None
    bad = C.control_char(text)
    if bad is not None:
        book.problems.append(Problem.at(ref, "control_character", f"{f.label}含有不允许的控制字符 {bad}",
                                        f"{f.label} contains the control character {bad}", value=text[:50]))
        return None
    if not text:
        if f.required:
            book.problems.append(Problem.at(ref, "missing_value", f"{f.label}不能为空", f"{f.label} is required"))
        return None
    return text


def _cover_value(book: _Book, draft: LedgerDraft, f: CoverField, ref: SourceRef, v: Any, text: str, today: date) -> None:
    """Set the draft's field: the credit code normalised and checked, the month parsed and not in the future."""
    if f.key == "credit_code":
        cc = normalise_credit_code(text)
        if not is_valid_credit_code(cc):
            book.problems.append(Problem.at(ref, "bad_credit_code", f"统一社会信用代码“{text}”校验不通过（GB 32100-2015）",
                                            "unified social credit code fails the GB 32100-2015 check", value=text))
        draft.credit_code = cc
    elif f.key == "month":
        m = C.parse_month(v)
        if m is None:
            book.problems.append(Problem.at(ref, "bad_month", f"填报月份“{text}”格式不正确（应为 YYYY-MM）",
                                            "the month must be YYYY-MM", value=text))
        elif m > f"{today.year:04d}-{today.month:02d}":
            book.problems.append(Problem.at(ref, "future_month", f"填报月份 {m} 是将来的月份", f"month {m} is in the future",
                                            value=m))
        else:
            draft.month = m
    else:
        setattr(draft, f.key, text)


# --- data sheets -------------------------------------------------------------------------------
def _header_map(book: _Book, spec: SheetSpec, header: Sequence[Any]) -> dict[str, tuple[int, str]]:
    wanted = spec.by_header()
    colmap: dict[str, tuple[int, str]] = {}
    for j, h in enumerate(header):
        nh = norm_header(h)
        if not nh:
            continue
        col = wanted.get(nh)
        letter = col_letter(j)
        if col is None:
            book.warnings.append(Problem(code="extra_column", message=f"未知列“{C.to_text(h)}”已忽略",
                                         message_en=f"unknown column {C.to_text(h)!r} ignored", sheet=spec.name, row=1,
                                         column=letter, header=C.to_text(h), severity="warning"))
        elif col.key in colmap:
            book.warnings.append(Problem(code="duplicate_column", message=f"列“{col.header}”重复，仅读取第一列",
                                         message_en=f"column {col.header} appears twice; the first is read",
                                         sheet=spec.name, row=1, column=letter, header=col.header, severity="warning"))
        else:
            colmap[col.key] = (j, letter)
    for col in spec.columns:
        if col.required and col.key not in colmap:
            book.problems.append(Problem(code="missing_column", message=f"工作表“{spec.name}”缺少列“{col.header}”",
                                         message_en=f"sheet {spec.name} has no column {col.header}", sheet=spec.name,
                                         row=1, header=col.header))
    return colmap


def _read_sheet(book: _Book, spec: SheetSpec, draft: LedgerDraft, catalogue: Catalogue, tainted: set[str],
                blocks: list[TransferBlock], sink: TransferSink | None = None) -> None:
    header, columns, rownums = _sheet_columns(book, spec.name)
    if not header:
        if spec.required:
            book.problems.append(Problem(code="missing_column", message=f"工作表“{spec.name}”没有表头",
                                         message_en=f"sheet {spec.name} has no header row", sheet=spec.name, row=1))
        return
    colmap = _header_map(book, spec, header)
    for c in spec.columns:  # header cells, so later checks (ledgers) can name a column letter
        if c.key in colmap:
            draft.cover_refs[f"{spec.name}/{c.header}"] = SourceRef(spec.name, 1, colmap[c.key][1], c.header)
    n = len(rownums)
    if n == 0:
        return
    ctx = C.SheetCtx(spec.name, rownums, book.problems, book.warnings, book.limits.max_cell_chars, MAX_PROBLEMS)

    def col(key: str, a: int = 0, b: int = n) -> tuple[Col, str | None, Sequence[Any] | None]:
        """The column ``key`` (rows a..b of it), as Python values."""
        c = next(c for c in spec.columns if c.key == key)
        if key in colmap:
            j, letter = colmap[key]
            v = columns[j]
            return c, letter, v[a:b]
        return c, None, None

    if spec is STOCK:
        _stock(ctx, col, n, draft, catalogue, tainted)
    elif spec is TREAT:
        _treat(ctx, col, n, draft, catalogue, tainted)
    else:
        _transfers(book, ctx, col, n, (draft, catalogue, tainted, "out" if spec is OUT else "in"), blocks, sink)


def _sheet_columns(book: _Book, name: str) -> tuple[Sequence[Any], list[Sequence[Any]], Sequence[int]]:
    """(header, columns, row numbers) of a data sheet: fastexcel's columns when they say the same as calamine's
    cells, else calamine's rows transposed."""
    fast = _fast_columns(book, name)
    if fast is not None:
        return fast
    rows = book.rows(name)
    columns, rownums = _columns(rows[1:])
    return (rows[0] if rows else []), columns, rownums


def _transfers(book: _Book, ctx: C.SheetCtx, col: Any, n: int, what: tuple[LedgerDraft, Catalogue, set[str], str],
               blocks: list[TransferBlock], sink: TransferSink | None) -> None:
    """A 转出/转入 sheet's blocks: one, or with a sink chunks of ``STREAM_CHUNK`` rows handed over while no
    problem has been found."""
    if sink is None or n <= STREAM_CHUNK:
        blocks.append(_transfer(ctx, col, n, *what))
        if sink is not None and not book.problems:
            sink.put(blocks[-1])
        return
    for a in range(0, n, STREAM_CHUNK):  # row-local checks: a chunk at a time gives the same problems
        b = min(n, a + STREAM_CHUNK)
        part = C.SheetCtx(ctx.sheet, ctx.rownums[a:b], book.problems, book.warnings, book.limits.max_cell_chars,
                          MAX_PROBLEMS, cache=ctx.cache)

        def chunk_col(key: str, a: int = a, b: int = b) -> tuple[Col, str | None, Sequence[Any] | None]:
            return col(key, a, b)

        blocks.append(_transfer(part, chunk_col, b - a, *what))
        if not book.problems:
            sink.put(blocks[-1])


def _columns(body: list[list[Any]]) -> tuple[list[Sequence[Any]], Sequence[int]]:
    """calamine's rows (after the header) → the columns of the non-blank rows, and their row numbers."""
    flags = list(map(any, body))  # C-level; a row of zeros is falsy, so those get the careful look
    if all(flags):
        keep = list(range(len(body)))
    else:
        keep = [i for i, (f, r) in enumerate(zip(flags, body, strict=True))
                if f or any(v != "" and v is not None for v in r)]
    n = len(keep)
    if n == 0:
        return [], []
    data = body if n == len(body) else [body[i] for i in keep]
    rownums: Sequence[int] = range(2, n + 2) if n == len(body) else [i + 2 for i in keep]
    return list(zip(*data, strict=True)), rownums


_FIRST_ROW = re.compile(rb'<row\b[^>]*?\br="(\d+)"[^>]*>(.*?)</row>', re.S)
_NUMBERISH = re.compile(r"^[\s\d.,+\-eE]*$")
FAST_MIN_ROWS = 0  # the column path serves every clean xlsx sheet (so the whole test suite exercises it)


def _header_on_row_one(data: bytes, sheet: str) -> bool:
    """True when the first row of the sheet's XML holding a value is row 1 (fastexcel starts at the first
    row with a value; the contract's header is row 1). Reads only the start of the sheet."""
    path = _sheet_path(data, sheet)
    if path is None:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open(path) as f:
            head = f.read(256 * 1024)
    except (KeyError, zipfile.BadZipFile, OSError, RuntimeError):
        return False
    for m in _FIRST_ROW.finditer(head):
        if b"<v>" in m.group(2) or b"<is>" in m.group(2):
            return m.group(1) == b"1"
    return False


def _fast_columns(book: _Book, name: str) -> tuple[list[Any], list[Sequence[Any]], Sequence[int]] | None:
    """The sheet read column-wise by fastexcel (Rust calamine → Arrow), or None to take calamine's cell path.

    Taken only when it gives exactly what ``to_python()`` would: an xlsx sheet whose header is row 1
    from column A with distinct text headers, and every column of one type (``dtype_coercion="strict"``
    over all rows) among text, number and midnight dates. Anything else (mixed text and numbers, booleans,
    times, ...) falls back, so the tolerant cell-wise coercion keeps every rule of the contract."""
    if book.kind != "xlsx" or not _header_on_row_one(book.data, name):
        return None
    loaded = _fast_sheet(book, name)
    if loaded is None:
        return None
    names, cols = loaded
    cols, rownums = _nonblank_rows(cols)
    out: list[Sequence[Any]] = []
    for a in cols:
        a = _as_dates(a)
        if a is None:
            return None  # a time of day: calamine gives a datetime
        out.append(_ArrowColumn(a))
    return names, out, rownums


def _fast_sheet(book: _Book, name: str) -> tuple[list[str], list[Any]] | None:
    """(header names, Arrow columns) of the sheet by fastexcel, or None when its columns are not plain."""
    import fastexcel

    # an empty optional column is read as text: not worth a log line per upload
    logging.getLogger("fastexcel.types.dtype").setLevel(logging.ERROR)
    try:
        sheet = fastexcel.read_excel(book.data).load_sheet(book.names[name], schema_sample_rows=None,
                                                             dtype_coercion="strict")
        infos = sheet.available_columns()
    except Exception:  # noqa: BLE001 - mixed column types, odd files: calamine's path decides
        return None
    if sheet.height > book.limits.max_rows_per_sheet:
        raise _too_large("too_many_rows", f"工作表“{name}”行数过多（最多 {book.limits.max_rows_per_sheet} 行）",
                         f"sheet {name} has more than {book.limits.max_rows_per_sheet} rows")
    names = [c.name for c in infos]
    if not _plain_columns(infos, names):
        return None
    try:
        rb = sheet.to_arrow()
    except Exception:  # noqa: BLE001
        return None
    return names, list(rb.columns)


def _plain_columns(infos: Sequence[Any], names: list[str]) -> bool:
    """From column A without gaps, each header a distinct text of its own (not fastexcel's ``x_1`` for a
    duplicate, not a number), each column text, number or date."""
    if [c.absolute_index for c in infos] != list(range(len(infos))) or len(set(names)) != len(names):
        return False
    for c in infos:
        base = re.sub(r"_\d+$", "", c.name)
        if c.column_name_from != "looked_up" or (base != c.name and base in names) or _NUMBERISH.match(c.name) \
                or c.name != c.name.strip() or c.dtype not in ("string", "float", "datetime", "date"):
            return False
    return True


def _nonblank_rows(cols: list[Any]) -> tuple[list[Any], Sequence[int]]:
    """The columns without their blank rows (nothing in any column), and the row numbers of those kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nonblank = None
    for a in cols:
        m = pc.is_valid(a) if a.type != pa.string() else pc.fill_null(pc.not_equal(a, ""), False)
        nonblank = m if nonblank is None else pc.or_(nonblank, m)
    total = len(cols[0]) if cols else 0
    if nonblank is not None and total and pc.sum(nonblank).as_py() != total:
        idx = [i for i, f in enumerate(nonblank.to_pylist()) if f]
        return [a.take(pa.array(idx, pa.int64())) for a in cols], [i + 2 for i in idx]
    return cols, range(2, total + 2)


def _as_dates(a: Any) -> Any:
    """A timestamp column as dates when every value is at midnight (None when one is not); others as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_timestamp(a.type):
        return a
    d = pc.cast(a, pa.date32())
    if pc.all(pc.equal(pc.cast(pc.cast(d, pa.timestamp("ms")), a.type), a)).as_py() not in (True, None):
        return None
    return d


class _ArrowColumn(Sequence[Any]):
    """An Arrow column whose Python values are made a slice at a time, when a chunk asks for them, so the
    first chunk of a big sheet reaches a ``TransferSink`` before the other rows are converted (B1)."""

    def __init__(self, a: Any) -> None:
        self._a = a

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self._a))
            if step == 1:
                return _py_values(self._a.slice(start, max(0, stop - start)))
        return _py_values(self._a)[i]  # a single cell or a stepped slice: not on the reader's path


def _py_values(a: Any) -> list[Any]:
    """Arrow values as calamine's ``to_python`` gives them: text ("" for empty), float, ``date``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_date32(a.type) and a.null_count == 0:
        # a month has at most 31 distinct days: build each ``date`` once and share it (B1: a 100,000-row
        # date column 81 → 3 ms; ``to_pylist`` makes one object per row)
        de = a.dictionary_encode()
        days = de.dictionary.to_pylist()
        return list(map(days.__getitem__, de.indices.to_pylist()))
    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        return pc.fill_null(a, "").to_pylist()
    if a.null_count == 0:
        return a.to_pylist()
    return ["" if v is None else v for v in a.to_pylist()]


def _codes(ctx: C.SheetCtx, col: Any, n: int, catalogue: Catalogue) -> list[CodeCheck | None]:
    c, letter, vals = col("code")
    return C.code_col(ctx, c, letter, vals, n, catalogue, {})


def _qty(ctx: C.SheetCtx, col: Any, n: int, key: str, factors: list[int], positive: bool) -> list[int]:
    c, letter, vals = col(key)
    return C.qty_col(ctx, c, letter, vals, factors, positive=positive)


def _factors(ctx: C.SheetCtx, col: Any, n: int) -> list[int]:
    c, letter, vals = col("measure")
    return C.measure_col(ctx, c, letter, vals, n)


def _text(ctx: C.SheetCtx, col: Any, n: int, key: str, limit: int = 500) -> list[str]:
    c, letter, vals = col(key)
    return C.text_col(ctx, c, letter, vals, n, limit)


def _taint(ctx: C.SheetCtx, codes: list[CodeCheck | None], tainted: set[str]) -> None:
    for i in ctx.bad_rows:
        chk = codes[i]
        if chk is not None and chk.code:
            tainted.add(chk.code)


def _stock(ctx: C.SheetCtx, col: Any, n: int, draft: LedgerDraft, catalogue: Catalogue, tainted: set[str]) -> None:
    codes = _codes(ctx, col, n, catalogue)
    names = _text(ctx, col, n, "name")
    f = _factors(ctx, col, n)
    opens = _qty(ctx, col, n, "open", f, False)
    gens = _qty(ctx, col, n, "generated", f, False)
    closes = _qty(ctx, col, n, "close", f, False)
    notes = _text(ctx, col, n, "note")
    forms = _text(ctx, col, n, "form", 20)
    harmful = _text(ctx, col, n, "harmful")
    close_letter = col("close")[1]
    _taint(ctx, codes, tainted)
    bad = ctx.bad_rows
    sheet = ctx.sheet
    for i in range(n):
        chk = codes[i]
        if i in bad or chk is None:
            continue
        draft.stocks.append(StockLine(chk.code or "", chk.stream or "general_industrial", opens[i], gens[i], closes[i],
                                      names[i] or chk.name_zh or "", notes[i], SourceRef(sheet, ctx.rownums[i]),
                                      close_letter, forms[i], harmful[i]))


def _treat(ctx: C.SheetCtx, col: Any, n: int, draft: LedgerDraft, catalogue: Catalogue, tainted: set[str]) -> None:
    codes = _codes(ctx, col, n, catalogue)
    c, letter, vals = col("method")
    methods = C.method_col(ctx, c, letter, vals, n, catalogue)
    f = _factors(ctx, col, n)
    qtys = _qty(ctx, col, n, "qty", f, True)
    products = _text(ctx, col, n, "product")
    notes = _text(ctx, col, n, "note")
    _taint(ctx, codes, tainted)
    bad = ctx.bad_rows
    for i in range(n):
        chk = codes[i]
        if i in bad or chk is None:
            continue
        draft.treatments.append(TreatmentLine(chk.code or "", chk.stream or "general_industrial", methods[i] or "",
                                              qtys[i], products[i], notes[i], SourceRef(ctx.sheet, ctx.rownums[i])))


def _transfer(ctx: C.SheetCtx, col: Any, n: int, draft: LedgerDraft, catalogue: Catalogue, tainted: set[str],
              direction: str) -> TransferBlock:
    c, letter, vals = col("day")
    days = C.date_col(ctx, c, letter, vals, n, draft.month or None)
    codes = _codes(ctx, col, n, catalogue)
    mc, mletter, mvals = col("manifest")
    manifests = C.manifest_col(ctx, mc, mletter, mvals, n)
    C.check_manifests(ctx, mc, mletter, manifests, codes, mvals, catalogue)
    f = _factors(ctx, col, n)
    qtys = _qty(ctx, col, n, "qty", f, True)
    c, letter, vals = col("counterpart")
    parties = C.credit_col(ctx, c, letter, vals, n)
    names = _text(ctx, col, n, "counterpart_name", 200)
    notes = _text(ctx, col, n, "note")
    if direction == "out":
        c, letter, vals = col("carrier")
        carriers = C.credit_col(ctx, c, letter, vals, n)
        c, letter, vals = col("planned_method")
        planned = C.method_col(ctx, c, letter, vals, n, catalogue)
    else:
        carriers = planned = [None] * n
    _taint(ctx, codes, tainted)
    # ``all(codes)``: C-level (a CodeCheck is always truthy), where ``None in codes`` calls the dataclass
    # ``__eq__`` once per row
    complete = all(codes)
    if complete:
        code_texts, streams = list(map(attrgetter("code"), codes)), list(map(attrgetter("stream"), codes))
    else:
        code_texts, streams = [k.code if k else "" for k in codes], [k.stream if k else "" for k in codes]
    cols: list[list[Any]] = [list(ctx.rownums), days, code_texts, streams, qtys, parties, names, manifests, carriers,
                             planned, notes]
    if ctx.bad_rows or not complete:
        good = [i for i in range(n) if i not in ctx.bad_rows and codes[i] is not None]
        cols = [[c_[i] for i in good] for c_ in cols]
    return TransferBlock(direction, ctx.sheet, *cols)


# --- formulas without a cached value (xlsx only, looked up only when a cell came back empty) -------
_SHEET_TAG = re.compile(r'<sheet\b[^>]*?\bname="([^"]*)"[^>]*?\br:id="([^"]*)"', re.S)
_SHEET_TAG2 = re.compile(r'<sheet\b[^>]*?\br:id="([^"]*)"[^>]*?\bname="([^"]*)"', re.S)
_REL = re.compile(r'<Relationship\b[^>]*?\bId="([^"]*)"[^>]*?\bTarget="([^"]*)"|<Relationship\b[^>]*?\bTarget="([^"]*)"[^>]*?\bId="([^"]*)"', re.S)
_FORMULA_NO_VALUE = re.compile(rb'<c\b[^>]*?\br="([A-Z]+[0-9]+)"[^>]*>\s*<f\b[^>]*?(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>')


def formula_cells_without_value(data: bytes, sheet: str) -> set[str]:
    """Cell references (``D7``) of formulas with no cached value in an xlsx sheet; calamine reads them as empty."""
    path = _sheet_path(data, sheet)
    if path is None:
        return set()
    try:
        xml = zipfile.ZipFile(io.BytesIO(data)).read(path)
    except (KeyError, zipfile.BadZipFile, OSError):
        return set()
    if b"<f" not in xml:
        return set()
    return {m.group(1).decode() for m in _FORMULA_NO_VALUE.finditer(xml)}


def _sheet_path(data: bytes, sheet: str) -> str | None:
    """The zip member of an xlsx sheet named ``sheet`` (workbook.xml → its relationship target)."""
    import html

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        wbx = zf.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = zf.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except (KeyError, zipfile.BadZipFile, OSError):
        return None
    rid = None
    for m in _SHEET_TAG.finditer(wbx):
        if html.unescape(m.group(1)).strip() == sheet:
            rid = m.group(2)
    if rid is None:
        for m in _SHEET_TAG2.finditer(wbx):
            if html.unescape(m.group(2)).strip() == sheet:
                rid = m.group(1)
    target = None
    for m in _REL.finditer(rels):
        i, t = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        if i == rid:
            target = t
    if target is None:
        return None
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def _formula_pass(book: _Book) -> list[Problem]:
    """Turn ``missing_value`` at a formula cell into ``formula_without_value`` (xlsx)."""
    if book.kind != "xlsx":
        return book.problems
    sheets = {p.sheet for p in book.problems if p.code == "missing_value" and p.row and p.column}
    if not sheets:
        return book.problems
    refs = {s: formula_cells_without_value(book.data, s) for s in sheets if s}
    out = []
    for p in book.problems:
        if p.code == "missing_value" and p.sheet in refs and f"{p.column}{p.row}" in refs[p.sheet]:
            p = Problem(code="formula_without_value", message=f"{p.header}是公式但没有计算结果，请在 Excel/WPS 中重新计算并保存",
                        message_en=f"{p.header} is a formula without a cached value; recalculate and save",
                        sheet=p.sheet, row=p.row, column=p.column, header=p.header)
        out.append(p)
    return out
