"""The producer's drafts: a manifest being written, kept without a number (one is allocated on 提交联单)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from nofei.access import Actor
from nofei.errors import NotFound
from nofei.storage import manifests as repo
from nofei.storage.tables import ManifestDraftRow
from nofei.storage.uow import UnitOfWork

from .commands import NewManifest
from .common import as_aware, now, view
from .lifecycle import create_row
from .queries import own_shipper
from .results import Draft, Manifest

DRAFT_FIELDS = ("receiver", "carrier", "planned_date", "lines")


def _draft(uow: UnitOfWork, actor: Actor, draft_id: int) -> ManifestDraftRow:
    d = repo.draft(uow.session, draft_id)
    if d is not None:
        if actor.can_submit_for(repo.unit_by_id(uow.session, d.shipper_id).credit_code):
            return d
    raise NotFound("草稿不存在 (no such draft)", code="unknown_draft")


def save_draft(*, uow: UnitOfWork, actor: Actor, data: Mapping[str, Any], draft_id: int | None = None) -> Draft:
    """Keep a manifest being written without numbering it (a number is allocated on 提交联单); the form's
    fields are kept as typed, checked only when it is submitted."""
    with uow:
        shipper = own_shipper(uow, actor, data.get("shipper"))
        clean = {k: data.get(k) for k in DRAFT_FIELDS}
        pd = clean.get("planned_date")
        if isinstance(pd, date):
            clean["planned_date"] = pd.isoformat()
        clean["shipper"] = shipper.credit_code
        if draft_id is not None:
            row = _draft(uow, actor, draft_id)
            row.data, row.updated_at, row.shipper_id = clean, now(), shipper.id or 0
        else:
            row = ManifestDraftRow(shipper_id=shipper.id or 0, data=clean, created_by=actor.label, updated_at=now())
        repo.add(uow.session, row, flush=True)
        uow.audit(actor, "manifest.draft", f"manifest_draft:{row.id}", detail={"receiver": clean.get("receiver")},
                  district=shipper.district)
        out = Draft(row.id or 0, shipper.credit_code, clean, as_aware(row.updated_at))
        uow.commit()
        return out


def get_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int) -> Draft:
    with uow:
        row = _draft(uow, actor, draft_id)
        shipper = repo.unit_by_id(uow.session, row.shipper_id).credit_code
        return Draft(row.id or 0, shipper, dict(row.data), as_aware(row.updated_at))


def list_drafts(*, uow: UnitOfWork, actor: Actor) -> list[Draft]:
    """The drafts of the caller's units (admins: all)."""
    with uow:
        return [Draft(d.id or 0, cc, dict(d.data), as_aware(d.updated_at))
                for d, cc in repo.drafts_of(uow.session, None if actor.is_admin else actor.units)]


def submit_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int, cmd: NewManifest | None = None) -> Manifest:
    """提交联单 from a draft (its saved fields, or ``cmd`` when given): numbered, ``submitted``, draft removed."""
    with uow:
        row = _draft(uow, actor, draft_id)
        m = create_row(uow, actor, cmd if cmd is not None else NewManifest.from_mapping(row.data))
        repo.delete(uow.session, row)
        out = view(uow, m)
        uow.commit()
        return out


def delete_draft(*, uow: UnitOfWork, actor: Actor, draft_id: int) -> None:
    with uow:
        row = _draft(uow, actor, draft_id)
        repo.delete(uow.session, row)
        uow.audit(actor, "manifest.draft_delete", f"manifest_draft:{draft_id}")
        uow.commit()
