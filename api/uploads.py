"""One monthly ledger upload, read and stored in one transaction: the path the API, the web page, the CLI
(``nofei import``) and the demo loader share.

The reader (``imports``) and the use case (``ledgers``) never import each other; this is where they meet.
Once the reader has a faultless cover, ``ledgers.ledger.open_upload_stream`` begins the version and a writer
thread stores the 转出/转入 rows chunk by chunk while the reader checks the rest, so the database's work
overlaps the reader's (issue 3, B1: a 100,000-row upload within 2× python-calamine's bare read). The reader
runs in a bounded worker process (``imports.gate``, issue 17) that sends the checked chunks back as it goes.
A rejected file rolls the whole transaction back: nothing of it is stored, as before.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from imports import ReadLimits, gate
from ledgers import ledger as uc
from nofei.access import Actor
from nofei.domain.ledger import LedgerDraft
from nofei.storage.uow import UnitOfWork


def import_workbook(*, uow: UnitOfWork, actor: Actor, data: bytes, filename: str, content_type: str = "",
                    limits: ReadLimits | None = None, today: date | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    """Read ``data`` and submit it as the next version of its (unit, month); the receipt, or the reader's
    and the use case's exceptions (``LedgerRejected`` 422, ``PermissionDenied`` 403, ``TooLarge`` 413, …)."""
    with uow:
        uow.rollback()  # end the catalogue read's transaction: a file that never opens a stream holds no lock
        if dry_run:
            draft = gate.read_ledger(data, filename=filename, catalogue=uow.catalogue, limits=limits, today=today)
            return uc.submit_monthly_ledger(uow=uow, actor=actor, draft=draft, content=data, filename=filename,
                                            content_type=content_type, dry_run=True)
        stream: uc.UploadStream | None = None

        def open_stream(cover: LedgerDraft) -> uc.UploadStream | None:
            nonlocal stream
            stream = uc.open_upload_stream(uow=uow, actor=actor, cover=cover, content=data, filename=filename,
                                           content_type=content_type)
            return stream

        try:
            draft = gate.read_ledger(data, filename=filename, catalogue=uow.catalogue, limits=limits, today=today,
                                        on_cover=open_stream)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
        return uc.submit_monthly_ledger(uow=uow, actor=actor, draft=draft, content=data, filename=filename,
                                        content_type=content_type, stream=stream)
