"""The one gate every spreadsheet upload passes (issue 17): ledgers (upload, check, pages, CLI), the
annotated workbook, the manifest import and the units import. The bytes go to a bounded worker process
(``imports.worker``: memory and wall-clock limits, killed and replaced when it dies or hangs), where the
safety checks and the sheet pre-scan (``imports.safety``) run before any parser.

A ledger's safety checks and sheet pre-scan run here, in a thread, while the worker already parses (B1:
the pre-scan of a 100,000-row sheet costs ≈ 0.2 s, which no longer comes before the parse). The worker's
memory and time limits bound the parse meanwhile; no checked chunk reaches the caller's sink before the
pre-scan has passed, and a refusal kills the worker and answers exactly what the pre-scan would have answered
had it run first (so a refused file changes nothing: the caller's transaction is rolled back).

``ReadLimits.parse_workers = 0`` reads in this process instead (no isolation: for trusted files only, e.g.
benchmarks comparing the two).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from imports import tasks
from imports.safety import ReadLimits, _too_large, sniff
from imports.worker import Abort, ParseBounds, failure, pool
from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft
from nofei.domain.transfer_columns import TransferBlock, TransferColumns, TransferSink
from nofei.problems import Problem


def _bounds(limits: ReadLimits) -> ParseBounds:
    return ParseBounds(memory_bytes=limits.parse_memory_bytes, seconds=limits.parse_seconds,
                       workers=limits.parse_workers)


def _check_size(data: bytes, limits: ReadLimits) -> None:
    """Refused here, before a copy of the bytes travels to a worker."""
    if len(data) > limits.max_upload_bytes:
        raise _too_large("file_too_large", f"文件超过 {limits.max_upload_bytes // (1024 * 1024)} MB 上限",
                         f"file is over the {limits.max_upload_bytes} byte limit")


def _run(task: str, args: tuple[Any, ...], limits: ReadLimits,
         on_message: Callable[[Any], Any] | None = None, abort: Abort | None = None) -> Any:
    if limits.parse_workers <= 0:
        replies: list[Any] = [None]

        def send(m: Any) -> None:
            replies[0] = on_message(m) if on_message is not None else None

        return tasks.TASKS[task](*args, send=send, recv=lambda: replies[0])
    return pool(limits.parse_workers).run(task, args, _bounds(limits), on_message, abort)


class _Prescan:
    """``imports.safety.sniff`` (zip checks + sheet pre-scan: pure Python in bounded memory, no parser) in a
    thread of this process; a refusal fires ``abort``, which kills the worker parsing the same file."""

    def __init__(self, data: bytes, limits: ReadLimits, filename: str, abort: Abort) -> None:
        self.error: BaseException | None = None
        self._abort = abort
        self._thread = threading.Thread(target=self._scan, args=(data, limits, filename), daemon=True,
                                        name="nofei-prescan")
        self._thread.start()

    def _scan(self, data: bytes, limits: ReadLimits, filename: str) -> None:
        try:
            sniff(data, limits, filename)
        except BaseException as e:  # noqa: BLE001 - answered as the worker would answer it
            self.error = failure(e, limits.parse_memory_bytes)
            self._abort.fire()

    def passed(self) -> None:
        """Wait for the pre-scan; raise its refusal."""
        self._thread.join()
        if self.error is not None:
            raise self.error


def warm(limits: ReadLimits) -> None:
    """Start the workers now (``nofei serve``), so the first upload finds one ready."""
    if limits.parse_workers > 0:
        p = pool(limits.parse_workers)
        for _ in range(p.size):
            p.warm()


def read_ledger(data: bytes, *, filename: str, catalogue: Catalogue, limits: ReadLimits | None = None,
                today: date | None = None,
                on_cover: Callable[[LedgerDraft], TransferSink | None] | None = None) -> LedgerDraft:
    """``imports.read_monthly_ledger`` in a worker, same contract: ``on_cover`` is called here with the
    cover, and the blocks the reader hands to the sink arrive here as the worker checks them."""
    limits = limits or ReadLimits()
    today = today or date.today()
    _check_size(data, limits)
    received: list[TransferBlock] = []
    sink: TransferSink | None = None
    concurrent = limits.parse_workers > 0
    abort = Abort()
    prescan = _Prescan(data, limits, filename, abort) if concurrent else None

    def on_message(msg: Any) -> Any:
        nonlocal sink
        if msg[0] == "cover":
            sink = on_cover(msg[1]) if on_cover is not None else None
            return ("sink", sink is not None)
        if msg[0] == "block":
            if prescan is not None:
                prescan.passed()  # nothing is stored before the pre-scan has passed
            received.append(msg[1])
            if sink is not None:
                sink.put(msg[1])
            return None
        raise ValueError(f"unexpected message {msg[0]!r}")

    args = (data, filename, tasks.catalogue_ref(catalogue), limits, today, on_cover is not None, concurrent)
    try:
        draft: LedgerDraft = _run("ledger", args, limits, on_message, abort)
    finally:
        if prescan is not None:
            prescan.passed()  # its refusal comes first, as when it ran before the parse
    if received:
        rest = getattr(draft.transfers, "blocks", [])
        draft.transfers = TransferColumns([*received, *rest])  # type: ignore[assignment]
    return draft


def annotate(data: bytes, problems: list[Problem], warnings: list[Problem] | None = None,
             limits: ReadLimits | None = None) -> bytes:
    """``imports.annotate_workbook`` in a worker (openpyxl on an untrusted file)."""
    limits = limits or ReadLimits()
    _check_size(data, limits)
    result: bytes = _run("annotate", (data, list(problems), list(warnings or [])), limits)
    return result


def read_manifests(data: bytes, limits: ReadLimits | None = None) -> list[dict[str, Any]]:
    """The manifest import workbook (``imports.manifest_reader``) in a worker."""
    limits = limits or ReadLimits()
    _check_size(data, limits)
    result: list[dict[str, Any]] = _run("manifests", (data, limits), limits)
    return result


def read_units(data: bytes, limits: ReadLimits | None = None) -> list[dict[str, Any]]:
    """The units workbook (``imports.units_reader``) in a worker."""
    limits = limits or ReadLimits()
    _check_size(data, limits)
    result: list[dict[str, Any]] = _run("units", (data, limits), limits)
    return result
