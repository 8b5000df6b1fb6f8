"""The audit trail (审计日志): query it and verify its hash chain."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from api import deps
from api.schemas import ErrorSchema, PageArgs, page_schema
from ledgers import audit_trail
from nofei.domain.calendar import CST

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Audit trail and its hash chain")



class Moment(fields.String):
    """A date (``2025-03-01``) or an ISO datetime; without an offset it is read in China Standard Time.

    Deserialises to ``(aware datetime, is_date)`` so that ``to=2025-03-31`` can include the whole day."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("description", "YYYY-MM-DD or ISO 8601 datetime (default offset +08:00)")
        super().__init__(validate=validate.Length(max=40), **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> tuple[datetime, bool]:  # type: ignore[override]
        s = super()._deserialize(value, attr, data, **kw).strip()
        try:
            if len(s) == 10:
                return datetime.combine(date.fromisoformat(s), time(0), CST), True
            dt = datetime.fromisoformat(s)
        except ValueError as e:
            raise ValidationError("not a date (YYYY-MM-DD) or an ISO 8601 datetime") from e
        return (dt if dt.tzinfo else dt.replace(tzinfo=CST)), False


class AuditQuery(PageArgs):
    object = fields.String(validate=validate.Length(min=1, max=200),
                           metadata={"description": "exact object (`unit:…`, `manifest:…`), or a prefix ending in `*`"})
    actor = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "actor label as recorded, e.g. `admin:ops`"})
    from_ = Moment(data_key="from", metadata={"description": "from this moment on (inclusive)"})
    to = Moment(metadata={"description": "up to this moment (inclusive; a date includes the whole day)"})


class AuditEntrySchema(Schema):
    seq = fields.Integer()
    time = fields.DateTime()
    actor = fields.String()
    role = fields.String()
    action = fields.String()
    object = fields.String()
    district = fields.String(allow_none=True)
    request_id = fields.String()
    detail = fields.Dict()
    prev_digest = fields.String()
    digest = fields.String(metadata={"description": "SHA-256 over prev_digest and the entry"})


class ChainCheckSchema(Schema):
    ok = fields.Boolean(required=True)
    entries = fields.Integer(required=True, metadata={"description": "entries checked (up to the first break)"})
    broken_at = fields.Integer(allow_none=True, required=True, metadata={"description": "seq of the first broken link"})
    reason = fields.String(required=True)


@blp.route("")
@blp.arguments(AuditQuery, location="query")
@blp.response(200, page_schema(AuditEntrySchema, "AuditPage"))
@blp.alt_response(403, schema=ErrorSchema, description="enterprises do not read the audit trail")
def list_audit(args: dict[str, Any]):
    """Audit entries in chain order: admins and city (630100) regulators all, a district regulator
    the entries recorded against its district."""
    t_from = args["from_"][0] if "from_" in args else None
    t_to = None
    if "to" in args:
        moment, is_date = args["to"]
        t_to = moment + (timedelta(days=1) if is_date else timedelta(microseconds=1))
    with deps.uow() as uow:
        items, total = audit_trail.list_entries(
            uow=uow, actor=deps.actor(), object=args.get("object"), actor_label=args.get("actor"),
            time_from=t_from, time_to=t_to, page=args["page"], per_page=args["per_page"])
    return deps.page(items, total, args["page"], args["per_page"])


@blp.route("/verify")
@blp.response(200, ChainCheckSchema)
@blp.alt_response(403, schema=ErrorSchema, description="enterprises do not read the audit trail")
def verify_audit():
    """Recompute the hash chain: ``ok``, or the first broken link (``broken_at`` = its seq) and why."""
    with deps.uow() as uow:
        return audit_trail.verify_chain(uow=uow, actor=deps.actor())
