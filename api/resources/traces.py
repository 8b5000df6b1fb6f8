"""Traces: from a manifest or a unit, forward to final fates and backward to producers (JSON hops + node-link).

Each shows only what the caller may read (``ledgers.trace_view``): see README, "Security notes"."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps
from ledgers import trace as svc

blp = Blueprint("traces", __name__, url_prefix="/api/v1", description="Trace waste forward and backward")


class TraceHop(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    waste_code = fields.String()
    depth = fields.Integer()
    mass_t = fields.Float(metadata={"description": "mass of the traced waste on this edge (proportional share)"})
    share = fields.Float(metadata={"description": "fraction of the traced start mass"})
    edge_t = fields.Float(metadata={"description": "all the year's flow on this edge"})
    manifest_count = fields.Integer()
    example_manifest = fields.String(allow_none=True)
    manifest = fields.String()


class TraceEnd(Schema):
    unit = fields.String(allow_none=True, metadata={"description": "null: units the caller may not read, merged"})
    name = fields.String(metadata={"description": "其他单位（不可见） on the merged entry of units the caller may not read"})
    fate = fields.String(metadata={"description": "U/D/S/X, or hidden (beyond what the caller may read)"})
    mass_t = fields.Float()
    share = fields.Float()


class HopsOmitted(Schema):
    count = fields.Integer(metadata={"description": "hops left out of the list by max_hops"})
    mass_t = fields.Float(metadata={"description": "traced mass on the hops left out"})


class TraceCode(Schema):
    waste_code = fields.String()
    start_t = fields.Float()
    hops = fields.List(fields.Nested(TraceHop), metadata={"description": "at most max_hops, heaviest first"})
    hops_omitted = fields.Nested(HopsOmitted)
    fates = fields.Dict(keys=fields.String(), values=fields.Float(),
                        metadata={"description": "U/D/S/X, t; plus hidden (t that went on beyond the units the "
                                                 "caller may read) for callers who do not see every unit"})
    terminals = fields.List(fields.Nested(TraceEnd))
    producers = fields.List(fields.Nested(TraceEnd))
    closed_loop = fields.Boolean()
    awaiting_ledger = fields.List(fields.String(), metadata={
        "description": "forward: receivers that confirmed the waste but have not reported a ledger of the code "
                       "in the year yet; their part is X in the flow model until they do"})


class NodeLink(Schema):
    directed = fields.Boolean()
    multigraph = fields.Boolean()
    graph = fields.Dict()
    nodes = fields.List(fields.Dict())
    links = fields.List(fields.Dict())


class ManifestTraceOut(Schema):
    number = fields.String()
    year = fields.Integer()
    status = fields.String()
    shipper = fields.String()
    receiver = fields.String()
    manifest_hops = fields.List(fields.Nested(TraceHop))
    forward = fields.List(fields.Nested(TraceCode))
    backward = fields.List(fields.Nested(TraceCode))
    graph = fields.Nested(NodeLink)


class MaxHops(Schema):
    max_hops = fields.Integer(load_default=svc.MAX_HOPS, validate=validate.Range(min=1, max=svc.MAX_HOPS_LIMIT),
                              metadata={"description": "hops listed per waste code and direction, heaviest first "
                                                       f"(default {svc.MAX_HOPS}); the rest is in hops_omitted"})


class UnitTraceQuery(MaxHops):
    direction = fields.String(load_default="forward", validate=validate.OneOf(["forward", "backward"]))
    year = fields.Integer(required=True, validate=validate.Range(min=1990, max=2100))
    waste_code = fields.String(validate=validate.Length(max=32))


class UnitTraceOut(Schema):
    unit = fields.String()
    year = fields.Integer()
    direction = fields.String()
    traces = fields.List(fields.Nested(TraceCode))
    graph = fields.Nested(NodeLink)


@blp.route("/manifests/<string(length=14):number>/trace", methods=["GET"])
@blp.arguments(MaxHops, location="query")
@blp.response(200, ManifestTraceOut)
def manifest_trace(args, number: str):
    """Where this manifest's waste went (forward, with the flow model's proportional shares at collectors, to
    U/D/S/X) and where it came from (backward, to producers)."""
    with deps.uow() as uow:
        return svc.trace_manifest(uow=uow, actor=deps.actor(), number=number, max_hops=args["max_hops"])


@blp.route("/units/<string:credit_code>/trace", methods=["GET"])
@blp.arguments(UnitTraceQuery, location="query")
@blp.response(200, UnitTraceOut)
def unit_trace(args, credit_code: str):
    """From a unit, per waste code of the year: forward to final fates or backward to producers."""
    with deps.uow() as uow:
        return svc.trace_unit(uow=uow, actor=deps.actor(), credit_code=credit_code, direction=args["direction"],
                              year=args["year"], waste_code=args.get("waste_code"), max_hops=args["max_hops"])
