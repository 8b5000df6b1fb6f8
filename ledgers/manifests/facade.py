"""The manifest use cases under their mapping names, for callers that speak mappings: the HTML pages and their
templates, the demo city, the CLI and the service tests. Each reads its mapping into the typed command, calls
the typed use case and gives the result's ``as_dict`` — no rule lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from nofei.access import Actor
from nofei.storage.manifests import ManifestFilter
from nofei.storage.uow import UnitOfWork

from . import drafts, lifecycle, queries
from .commands import Correction, NewManifest, Receipt, Rejection, Shipment


def create_manifest(*, uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    return lifecycle.create(uow=uow, actor=actor, cmd=NewManifest.from_mapping(data)).as_dict()


def ship_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: Mapping[str, Any],
                  entered_at: datetime | None = None) -> dict[str, Any]:
    return lifecycle.ship(uow=uow, actor=actor, number=number, cmd=Shipment.from_mapping(data),
                          entered_at=entered_at).as_dict()


def receive_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: Mapping[str, Any],
                     entered_at: datetime | None = None) -> dict[str, Any]:
    return lifecycle.receive(uow=uow, actor=actor, number=number, cmd=Receipt.from_mapping(data),
                             entered_at=entered_at).as_dict()


def reject_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: Mapping[str, Any],
                    entered_at: datetime | None = None) -> dict[str, Any]:
    return lifecycle.reject(uow=uow, actor=actor, number=number, cmd=Rejection.from_mapping(data),
                            entered_at=entered_at).as_dict()


def correct_manifest(*, uow: UnitOfWork, actor: Actor, number: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return lifecycle.correct(uow=uow, actor=actor, number=number, cmd=Correction.from_mapping(data)).as_dict()


def import_manifests(*, uow: UnitOfWork, actor: Actor, items: list[dict[str, Any]]) -> dict[str, Any]:
    """``items`` as the workbook reader gives them: each a manifest mapping with its cell ``_refs``."""
    cmds = [(NewManifest.from_mapping(i), dict(i.get("_refs") or {})) for i in items]
    return lifecycle.import_manifests(uow=uow, actor=actor, items=cmds).as_dict()


def get_manifest(*, uow: UnitOfWork, actor: Actor, number: str) -> dict[str, Any]:
    return queries.get(uow=uow, actor=actor, number=number).as_dict()


def list_manifests(*, uow: UnitOfWork, actor: Actor, status: str | None = None, unit: str | None = None,
                   code: str | None = None, date_from: date | None = None, date_to: date | None = None,
                   region: str | None = None, page: int = 1, per_page: int = 50, party: str | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
    got = queries.search(uow=uow, actor=actor, filters=ManifestFilter(status, unit, code, date_from, date_to, region,
                                                                      party), page=page, per_page=per_page)
    return [m.as_dict() for m in got.items], got.total


def export_rows(*, uow: UnitOfWork, actor: Actor, limit: int = 200_000, **filters: Any) -> list[dict[str, Any]]:
    return list(queries.export_rows(uow=uow, actor=actor, filters=ManifestFilter(**filters), limit=limit))


def save_draft(*, uow: UnitOfWork, actor: Actor, data: Mapping[str, Any], draft_id: int | None = None
               ) -> dict[str, Any]:
    return drafts.save_draft(uow=uow, actor=actor, data=data, draft_id=draft_id).as_dict()


def get_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int) -> dict[str, Any]:
    return drafts.get_draft(uow=uow, actor=actor, draft_id=draft_id).as_dict()


def list_drafts(*, uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    return [d.as_dict() for d in drafts.list_drafts(uow=uow, actor=actor)]


def submit_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int, data: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    cmd = None if data is None else NewManifest.from_mapping(data)
    return drafts.submit_draft(uow=uow, actor=actor, draft_id=draft_id, cmd=cmd).as_dict()


def last_manifest(*, uow: UnitOfWork, actor: Actor, shipper: str | None = None, receiver: str | None = None
                  ) -> dict[str, Any] | None:
    m = queries.last_manifest(uow=uow, actor=actor, shipper=shipper, receiver=receiver)
    return None if m is None else m.as_dict()


def receivers_for(*, uow: UnitOfWork, code: str | None, q: str | None = None, on: date | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
    return [r.as_dict() for r in queries.receivers_for(uow=uow, code=code, q=q, on=on, limit=limit)]


def carriers(*, uow: UnitOfWork) -> list[dict[str, Any]]:
    return [c.as_dict() for c in queries.carriers(uow=uow)]
