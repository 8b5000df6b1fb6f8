"""Anomalies for regulators: overdue receipts, discrepancies, storage over a year, missing 联单编号,
permits, three-way reconciliation, unresolved mass."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from ledgers import anomalies as svc
from ledgers import cases

blp = Blueprint("anomalies", __name__, url_prefix="/api/v1/anomalies", description="Anomalies (异常) for regulators")


class AnomalyQuery(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=1990, max=2100))
    region = fields.String(validate=validate.Length(max=32), metadata={"description": "district or park; default all"})
    kind = fields.String(validate=validate.OneOf(svc.KINDS))
    as_of = schemas.AwareDateTime(metadata={"description": "judge 'overdue' as of this time (default now)"})


class AnomalyLedgerRowOut(Schema):
    entry_id = fields.Integer()
    ledger_id = fields.Integer()
    version = fields.Integer()
    unit = fields.String(allow_none=True)
    month = fields.String()
    sheet = fields.String()
    row = fields.Integer(allow_none=True)


class AnomalyOut(Schema):
    kind = fields.String()
    title = fields.String()
    message = fields.String()
    units = fields.List(fields.String())
    manifests = fields.List(fields.String())
    manifest_count = fields.Integer()
    ledger_rows = fields.List(fields.Nested(AnomalyLedgerRowOut))
    ledger_row_count = fields.Integer()
    waste_code = fields.String(allow_none=True)
    mass_kg = fields.Integer()
    mass_t = fields.Float()
    detail = fields.Dict()
    case_id = fields.Integer(allow_none=True, metadata={"description": "the case that works this anomaly"})
    status = fields.String(allow_none=True, metadata={"description": "the case's status: open | notified | "
                                                                       "responded | closed"})


class AnomalyKindSummary(Schema):
    count = fields.Integer()
    mass_kg = fields.Integer()
    mass_t = fields.Float()


class AnomalyList(Schema):
    year = fields.Integer()
    region = fields.String(allow_none=True)
    total = fields.Integer()
    summary = fields.Dict(keys=fields.String(), values=fields.Nested(AnomalyKindSummary))
    items = fields.List(fields.Nested(AnomalyOut))


@blp.route("", methods=["GET"])
@blp.arguments(AnomalyQuery, location="query")
@blp.response(200, AnomalyList)
def list_(args):
    """Every anomaly of the year the caller may see (regulators: a unit in their district), largest mass first
    within each kind. Each names units, manifests, ledger rows and the mass at stake."""
    with deps.uow() as uow:
        items = svc.list_anomalies(uow=uow, actor=deps.actor(), year=args["year"], region=args.get("region"),
                                   kind=args.get("kind"), as_of=args.get("as_of"))
        cases.sync_cases(uow=uow, year=args["year"])  # cases follow the findings of now, never a what-if as_of
        cases.annotate_anomalies(uow=uow, year=args["year"], items=items)
    return {"year": args["year"], "region": args.get("region"), "total": len(items), "summary": svc.summary(items),
            "items": items}
