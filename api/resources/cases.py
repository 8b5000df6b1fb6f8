"""Cases (案件): every anomaly worked to an end — assigned, notified, answered, closed or waived (issue 13)."""

from __future__ import annotations

from datetime import date

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps
from api.resources.anomalies import AnomalyLedgerRowOut
from api.schemas import PageArgs
from ledgers import anomalies
from ledgers import cases as svc
from nofei.domain import cases as C  # noqa: N812

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases",
                description="Cases (案件): anomalies with an owner, a thread and an end")


class CaseQuery(PageArgs):
    year = fields.Integer(required=True, validate=validate.Range(min=1990, max=2100))
    region = fields.String(validate=validate.Length(max=32), metadata={"description": "district or park"})
    kind = fields.String(validate=validate.OneOf(anomalies.KINDS))
    status = fields.String(validate=validate.OneOf(C.STATUSES))
    unit = fields.String(validate=validate.Length(max=40), metadata={"description": "a unit named in the case"})
    assignee = fields.String(validate=validate.Length(max=200))
    opened_from = fields.Date(metadata={"description": "opened on or after this day (China Standard Time)"})
    opened_to = fields.Date(metadata={"description": "opened on or before this day (China Standard Time)"})


class CaseUnitOut(Schema):
    credit_code = fields.String()
    name = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    district_name = fields.String(allow_none=True)


class CaseEventOut(Schema):
    id = fields.Integer()
    time = fields.DateTime()
    actor = fields.String()
    role = fields.String(metadata={"description": "admin | regulator | enterprise | system"})
    action = fields.String(validate=validate.OneOf(C.ACTIONS + C.SYSTEM_ACTIONS))
    action_zh = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    to_status_zh = fields.String()
    text = fields.String()
    link = fields.String(allow_none=True)
    detail = fields.Dict()


class CaseOut(Schema):
    id = fields.Integer()
    key = fields.String(metadata={"description": "the anomaly's stable identity: kind and the object it is about"})
    kind = fields.String(validate=validate.OneOf(anomalies.KINDS))
    kind_zh = fields.String()
    year = fields.Integer()
    status = fields.String(validate=validate.OneOf(C.STATUSES))
    status_zh = fields.String()
    resolution = fields.String(allow_none=True, metadata={"description": "resolved | waived, when closed"})
    resolution_zh = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    due = fields.Date(allow_none=True)
    holds = fields.Boolean(metadata={"description": "the anomaly is in the latest computation"})
    opened_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    title = fields.String()
    message = fields.String()
    mass_kg = fields.Integer()
    mass_t = fields.Float()
    units = fields.List(fields.Nested(CaseUnitOut))
    districts = fields.List(fields.String())
    waste_code = fields.String(allow_none=True)
    manifests = fields.List(fields.String())
    ledger_rows = fields.List(fields.Nested(AnomalyLedgerRowOut))
    detail = fields.Dict()
    actions = fields.List(fields.String(), metadata={"description": "what the caller may do now"})
    events = fields.List(fields.Nested(CaseEventOut))


class CaseCounts(Schema):
    open = fields.Integer()
    notified = fields.Integer()
    responded = fields.Integer()
    closed = fields.Integer()


class CasePage(Schema):
    year = fields.Integer()
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    counts = fields.Nested(CaseCounts, metadata={"description": "cases per status under the filters but status"})
    items = fields.List(fields.Nested(CaseOut))


class CaseEventIn(Schema):
    action = fields.String(required=True, validate=validate.OneOf(C.ACTIONS), metadata={"description": (
        "note (any party); assign, notify, close, waive, reopen (the district's regulator or an admin); respond "
        "(the enterprise named in the case, or an admin)")})
    text = fields.String(load_default="", validate=validate.Length(max=svc.MAX_TEXT),
                         metadata={"description": "required for note, respond and waive"})
    assignee = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "for assign"})
    due = fields.Date(validate=validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31)),
                      metadata={"description": "the day the enterprise must answer by"})
    link = fields.String(validate=validate.Regexp(r"^(ledger:\d{1,18}|manifest:\d{14})$"), metadata={
        "description": "the ledger version (ledger:<id>) or manifest (manifest:<number>) that answers the case"})


@blp.route("", methods=["GET"])
@blp.arguments(CaseQuery, location="query")
@blp.response(200, CasePage)
def list_cases(args):
    """The cases of a year the caller may see (regulators: a unit in their district; enterprises: cases naming
    their units), brought up to date with the anomalies first; open ones first, newest first, paged."""
    q = svc.CaseQuery(**{k: v for k, v in args.items() if v is not None})
    with deps.uow() as uow:
        return svc.list_cases(uow=uow, actor=deps.actor(), query=q)


@blp.route("/<int:case_id>", methods=["GET"])
@blp.response(200, CaseOut)
def get_case(case_id: int):
    """One case with its evidence and thread; 404 also when the caller may not see it."""
    with deps.uow() as uow:
        return svc.get_case(uow=uow, actor=deps.actor(), case_id=case_id)


@blp.route("/<int:case_id>/events", methods=["POST"])
@blp.arguments(CaseEventIn)
@blp.response(201, CaseOut)
@blp.alt_response(403, description="not the caller's step to take")
@blp.alt_response(409, description="the case's status does not allow the step")
def add_event(data, case_id: int):
    """Record a step on a case; audited. 404 if the caller may not see the case, 403 if the step is not the
    caller's, 409 if the status does not allow it (e.g. respond on a closed case), 422 for bad fields."""
    step = svc.CaseStep(action=data["action"], text=data.get("text", ""), assignee=data.get("assignee"),
                        due=data.get("due"), link=data.get("link"))
    with deps.uow() as uow:
        return svc.add_event(uow=uow, actor=deps.actor(), case_id=case_id, step=step)
