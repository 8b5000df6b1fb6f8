"""What the parse worker runs (``imports.worker``): each task gets its arguments plus ``send``/``recv``
to talk to the caller while it works. Only this fixed table can be asked for."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import date
from typing import Any

from nofei.catalogue import Catalogue
from nofei.domain.ledger import LedgerDraft
from nofei.domain.transfer_columns import TransferBlock, TransferColumns
from nofei.problems import Problem

_catalogues: dict[Any, Catalogue] = {}


def catalogue_ref(cat: Catalogue) -> tuple[Any, ...]:
    """How a catalogue travels to a worker: the package's default by name, anything else pickled (once per
    distinct catalogue: the worker keeps the last few)."""
    if cat is Catalogue.default(c1_class=cat.c1_class) or cat == Catalogue.default(c1_class=cat.c1_class):
        return ("default", cat.c1_class)
    body = pickle.dumps(cat, protocol=pickle.HIGHEST_PROTOCOL)
    import hashlib

    return ("pickled", hashlib.sha256(body).hexdigest(), body)


def _catalogue(ref: tuple[Any, ...]) -> Catalogue:
    if ref[0] == "default":
        return Catalogue.default(c1_class=ref[1])
    cat = _catalogues.get(ref[1])
    if cat is None:
        if len(_catalogues) > 4:
            _catalogues.clear()
        cat = _catalogues[ref[1]] = pickle.loads(ref[2])  # noqa: S301 - our own process sent it
    return cat


def ledger(data: bytes, filename: str, cat: tuple[Any, ...], limits: Any, today: date, streaming: bool,
           prescanned: bool = False, *, send: Callable[[Any], None], recv: Callable[[], Any]) -> LedgerDraft:
    """``read_monthly_ledger``; with ``streaming`` the cover goes to the caller first (it answers whether
    it opened a sink) and every block the reader hands to the sink follows it; the draft comes back with
    only the blocks not yet sent. ``prescanned``: the caller runs the sheet pre-scan meanwhile."""
    from imports.reader import read_monthly_ledger

    sent: set[int] = set()

    class _Sink:
        def put(self, block: TransferBlock) -> None:
            sent.add(id(block))
            send(("block", block))

    def on_cover(cover: LedgerDraft) -> _Sink | None:
        send(("cover", cover))
        reply = recv()
        return _Sink() if reply == ("sink", True) else None

    draft = read_monthly_ledger(data, filename=filename, catalogue=_catalogue(cat), limits=limits, today=today,
                                on_cover=on_cover if streaming else None, prescanned=prescanned)
    blocks = getattr(draft.transfers, "blocks", None)
    if blocks is not None:
        draft.transfers = TransferColumns([b for b in blocks if id(b) not in sent])  # type: ignore[assignment]
    return draft


def annotate(data: bytes, problems: list[Problem], warnings: list[Problem] | None, *,
             send: Callable[[Any], None], recv: Callable[[], Any]) -> bytes:
    from imports.writer import annotate_workbook

    return annotate_workbook(data, problems, warnings)


def manifests(data: bytes, limits: Any, *, send: Callable[[Any], None], recv: Callable[[], Any]) -> list[dict[str, Any]]:
    from imports.manifest_reader import read_manifest_workbook

    return read_manifest_workbook(data, limits)


def units(data: bytes, limits: Any, *, send: Callable[[Any], None], recv: Callable[[], Any]) -> list[dict[str, Any]]:
    from imports.units_reader import read_units_workbook

    return read_units_workbook(data, limits)


def _probe(what: str, *, send: Callable[[Any], None], recv: Callable[[], Any]) -> Any:
    """For the worker's own tests: misbehave on purpose (hang, abort, panic, allocate)."""
    import os
    import time

    if what == "pid":
        return os.getpid()
    if what == "hang":
        time.sleep(3600)
    if what == "abort":
        os.abort()
    if what == "memory":
        return len(bytearray(1 << 40))
    if what == "panic":
        class PanicException(BaseException):  # pyo3's is a BaseException too
            pass
        raise PanicException("boom")
    return what


def _warm(*, send: Callable[[Any], None], recv: Callable[[], Any]) -> None:
    """Import the parsers and build the default catalogue before the first file arrives."""
    import fastexcel  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import python_calamine  # noqa: F401

    import imports.reader  # noqa: F401
    import imports.writer  # noqa: F401

    Catalogue.default()


TASKS: dict[str, Callable[..., Any]] = {"ledger": ledger, "annotate": annotate, "manifests": manifests,
                                        "units": units, "probe": _probe, "warm": _warm}
