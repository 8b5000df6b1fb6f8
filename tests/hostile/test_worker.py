"""The bounded parse worker (``imports.worker`` / ``imports.gate``): a hang, an abort, a panic or a memory
blow-up costs one call a NofeiError within the limit, and the worker is replaced; the .xls files that kill
calamine (a one-byte change of the committed fixture each) are proved hostile in a bare, memory-limited
child first, then answered through the gate."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from imports import ReadLimits, gate
from imports.worker import ParseBounds, ParsePool
from nofei.catalogue import Catalogue
from nofei.errors import InputRejected, TooLarge
from tests.hostile import corpus as H

CAT = Catalogue.default()
BARE = "import io,sys; from python_calamine import CalamineWorkbook as W; wb=W.from_filelike(io.BytesIO(sys.stdin.buffer.read()))\n" \
       "[wb.get_sheet_by_name(n).to_python() for n in wb.sheet_names]"


@pytest.fixture(scope="module")
def pool():
    p = ParsePool(1)
    yield p
    p.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_a_task_runs_in_another_process_and_the_worker_is_reused(pool):
    import os

    a = pool.run("probe", ("pid",), ParseBounds())
    b = pool.run("probe", ("pid",), ParseBounds())
    assert a == b != os.getpid()


@pytest.mark.parametrize(("what", "exc", "code"), [("abort", InputRejected, "unreadable_file"),
                                                  ("panic", InputRejected, "unreadable_file"),
                                                  ("memory", TooLarge, "parse_memory_exceeded")])
def test_a_crash_panic_or_blow_up_is_an_error_and_the_next_task_works(pool, what, exc, code):
    before = pool.run("probe", ("pid",), ParseBounds())
    with pytest.raises(exc) as ei:
        pool.run("probe", (what,), ParseBounds(memory_bytes=1 << 30, seconds=20))
    assert ei.value.code == code
    after = pool.run("probe", ("pid",), ParseBounds())
    if what == "abort":  # the dead worker was replaced
        assert after != before and not _alive(before)
    else:  # a caught panic or MemoryError leaves the worker usable
        assert after == before


def test_a_hang_is_cut_at_the_wall_clock_limit_and_the_worker_killed(pool):
    before = pool.run("probe", ("pid",), ParseBounds())
    t = time.monotonic()
    with pytest.raises(TooLarge) as ei:
        pool.run("probe", ("hang",), ParseBounds(seconds=0.5))
    assert ei.value.code == "parse_timeout" and time.monotonic() - t < 3
    assert not _alive(before)
    assert pool.run("probe", ("pid",), ParseBounds()) != before


@pytest.mark.parametrize(("offset", "byte", "symptom"), [(H.XLS_ABORT_OFFSET, H.XLS_ABORT_BYTE, "memory allocation of"),
                                                         (H.XLS_PANIC_OFFSET, H.XLS_PANIC_BYTE, "PanicException")])
def test_the_one_byte_xls_changes_kill_bare_calamine_but_not_the_gate(offset, byte, symptom):
    data = H.xls_changed(offset, byte)
    bare = subprocess.run(["prlimit", f"--as={1 << 30}", "--", sys.executable, "-c", BARE], input=data,
                          capture_output=True, timeout=60, check=False)
    assert bare.returncode != 0 and symptom in bare.stderr.decode(errors="replace")
    t = time.monotonic()
    with pytest.raises(InputRejected) as ei:
        gate.read_ledger(data, filename="x.xls", catalogue=CAT, limits=ReadLimits(parse_memory_bytes=1 << 30))
    assert ei.value.code == "unreadable_file" and time.monotonic() - t < 20
    good = gate.read_ledger((H.FIXTURES / "ledger_2025-03.xls").read_bytes(), filename="x.xls", catalogue=CAT)
    assert good.month == "2025-03"


def test_the_gate_streams_blocks_to_the_sink_and_gives_the_same_draft():
    from imports import read_monthly_ledger

    data = H.good()
    got = []

    class Sink:
        def put(self, block):
            got.append(block)

    covers = []

    def on_cover(d):
        covers.append(d.credit_code)
        return Sink()

    a = gate.read_ledger(data, filename="x.xlsx", catalogue=CAT, on_cover=on_cover)
    b = read_monthly_ledger(data, filename="x.xlsx", catalogue=CAT)
    assert covers == [b.credit_code] and got
    assert list(a.transfers) == list(b.transfers) and a.stocks == b.stocks and a.warnings == b.warnings
    assert [t for blk in got for t in blk.lines()] == [t for t in b.transfers]


def test_the_gate_keeps_the_readers_errors():
    from nofei.errors import LedgerRejected
    from tests.imports.ledger_builders import balanced_sheets, workbook

    s = balanced_sheets()
    s["转出"][1][2] = "XX-000"
    with pytest.raises(LedgerRejected) as ei:
        gate.read_ledger(workbook(s), filename="x.xlsx", catalogue=CAT)
    assert any(p.code == "unknown_code" for p in ei.value.problems)


def test_annotation_loads_only_the_ledger_sheets_and_is_bounded():
    import io

    from openpyxl import load_workbook

    from nofei.problems import Problem

    data = H.extra_sheet(20_000)  # 1.2 M cells in 附表 (3.4 MB)
    t = time.monotonic()
    body = gate.annotate(data, [Problem(code="x", message="m", message_en="m", sheet="转出", row=2, column="C")])
    assert time.monotonic() - t < 15
    wb = load_workbook(io.BytesIO(body))
    assert "附表" not in wb.sheetnames and "转出" in wb.sheetnames and wb.sheetnames[0] == "错误清单"


# --- the ledger's pre-scan runs beside the parse (B1) ------------------------------------------------------
def test_no_block_reaches_the_sink_before_the_concurrent_prescan_has_passed(monkeypatch):
    events: list[str] = []
    real = gate.sniff

    def slow_sniff(*a, **k):
        time.sleep(0.5)  # the worker has read the cover and checked its chunks by then
        kind = real(*a, **k)
        events.append("prescan passed")
        return kind

    class Sink:
        def put(self, block):
            events.append("put")

    def on_cover(d):
        events.append("cover")
        return Sink()

    monkeypatch.setattr(gate, "sniff", slow_sniff)
    draft = gate.read_ledger(H.good(), filename="x.xlsx", catalogue=CAT, on_cover=on_cover)
    assert draft.transfers and "put" in events
    assert events.index("prescan passed") < events.index("put")


def test_a_concurrent_prescan_refusal_answers_its_own_413_and_nothing_is_put(monkeypatch):
    from imports.safety import _too_large

    def refuse(*a, **k):
        time.sleep(0.3)
        raise _too_large("too_many_rows", "行数过多", "too many rows")

    puts: list[object] = []

    class Sink:
        def put(self, block):
            puts.append(block)

    monkeypatch.setattr(gate, "sniff", refuse)
    with pytest.raises(TooLarge) as ei:
        gate.read_ledger(H.good(), filename="x.xlsx", catalogue=CAT, on_cover=lambda d: Sink())
    assert ei.value.code == "too_many_rows" and puts == []


def test_the_prescan_refusal_wins_over_the_workers_own_failure():
    """calamine aborts on XFD1048576 in the worker (a 422 if it answered first); the pre-scan's 413 is the answer."""
    with pytest.raises(TooLarge) as ei:
        gate.read_ledger(H.with_cell("XFD1048576"), filename="x.xlsx", catalogue=CAT)
    assert ei.value.code == "too_many_rows" and ei.value.problems[0].sheet == "转出"


def test_abort_kills_a_busy_worker_at_once_and_it_is_replaced(pool):
    import threading

    from imports.worker import Abort

    before = pool.run("probe", ("pid",), ParseBounds())
    abort = Abort()
    threading.Timer(0.3, abort.fire).start()
    t = time.monotonic()
    with pytest.raises(InputRejected) as ei:
        pool.run("probe", ("hang",), ParseBounds(seconds=30), abort=abort)
    assert ei.value.code == "unreadable_file" and time.monotonic() - t < 5
    assert not _alive(before)
    assert pool.run("probe", ("pid",), ParseBounds()) != before


# --- malformed .xls (issue 17 item 2): never anything but a NofeiError with a specific code ----------------
XLS_CODES = {"corrupt_file", "not_a_spreadsheet", "empty_file", "unreadable_file", "ledger_rejected"}


def _xls_variants() -> list[tuple[str, bytes]]:
    import random

    size = len((H.FIXTURES / "ledger_2025-03.xls").read_bytes())
    rnd = random.Random(17)
    return [(f"cut{n}", H.xls_truncated(n)) for n in range(0, size, 256)] + \
        [(f"flip{o}", H.xls_flipped(o)) for o in sorted(rnd.sample(range(size), 120))] + \
        [("abort", H.xls_changed(H.XLS_ABORT_OFFSET, H.XLS_ABORT_BYTE)),
         ("panic", H.xls_changed(H.XLS_PANIC_OFFSET, H.XLS_PANIC_BYTE))]


def test_every_truncated_or_flipped_xls_is_a_specific_refusal_or_a_draft():
    from nofei.errors import NofeiError

    codes: dict[str, str] = {}
    for name, data in _xls_variants():
        try:
            gate.read_ledger(data, filename="x.xls", catalogue=CAT, limits=ReadLimits(parse_memory_bytes=1 << 30))
            codes[name] = "ok"
        except NofeiError as e:
            assert e.code in XLS_CODES, (name, e.code, str(e))
            assert e.problems and e.problems[0].message, name
            codes[name] = e.code
    assert codes["cut0"] == "empty_file" and codes["abort"] == codes["panic"] == "unreadable_file"
    assert {"corrupt_file", "not_a_spreadsheet"} <= set(codes.values())  # the sweep reaches both refusals
