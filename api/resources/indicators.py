"""Indicators, lineage, fates, flows and unit balances (issue 4). Reads only."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from nofei.catalogue import CITY, STREAMS
from nofei.flows.indicators import INDICATOR_KEYS, INDICATORS
from reports import flows as flows_uc
from reports import indicators as uc

_KEY_DOC = "; ".join(f"{d.key} {d.name}{' ★' if d.national else ''} ({d.scope})" for d in INDICATORS)

blp = Blueprint("indicators", __name__, url_prefix="/api/v1",
                description="无废城市 indicators, their lineage, fate attribution, flows and balances")

_YEAR = validate.Range(min=1990, max=2100)


class RegionArgs(Schema):
    year = fields.Integer(required=True, validate=_YEAR)
    region = fields.String(load_default=CITY, validate=validate.Length(min=1, max=32),
                           metadata={"enum": schemas.REGIONS, "description": "district code (630100 = city) or park code"})


class StreamArgs(RegionArgs):
    stream = fields.String(required=True, validate=validate.OneOf(STREAMS))


class BalanceArgs(Schema):
    year = fields.Integer(required=True, validate=_YEAR)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=40),
                         metadata={"description": "credit code of the unit"})


class SideFigureOut(Schema):
    generated_t = fields.Float()
    utilised_t = fields.Float()
    disposed_t = fields.Float()
    value = fields.Float(allow_none=True, metadata={"description": "the same formula over these producers"})


class IndicatorOut(Schema):
    key = fields.String(metadata={
        "description": "one of: " + _KEY_DOC + ". ★ = a national 必选 indicator of the 无废城市 system; national = "
                       "defined by the national system (2019 definitions, official-check.md §1); local = Xining's "
                       "plan or a figure of this project", "enum": list(INDICATOR_KEYS)})
    national = fields.Boolean(metadata={"description": "true for a national ★ (必选) indicator"})
    scope = fields.String(validate=validate.OneOf(("national", "local")),
                          metadata={"description": "national: a definition of the national indicator system; "
                                                   "local: Xining's plan or this project"})
    beside = fields.Dict(keys=fields.String(), values=fields.Nested(SideFigureOut), allow_none=True, metadata={
        "description": "figures reported beside this one, not inside it: for the two industrial hazardous-waste "
                       "rates, social_source = hazardous waste of social-source producers (汽修, laboratories)"})
    name = fields.String()
    value = fields.Float(allow_none=True, metadata={"description": "null when the denominator is 0 (see note)"})
    unit = fields.String()
    numerator = fields.Float(allow_none=True)
    denominator = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    meets_target = fields.Boolean(allow_none=True)
    units_count = fields.Integer()
    ledgers_count = fields.Integer()
    note = fields.String(allow_none=True)


class IndicatorsOut(Schema):
    year = fields.Integer()
    region = fields.String()
    indicators = fields.List(fields.Nested(IndicatorOut))


class LedgerRefOut(Schema):
    ledger_id = fields.Integer()
    unit = fields.String()
    month = fields.String()
    version = fields.Integer()
    is_current = fields.Boolean()
    sha256 = fields.String()
    filename = fields.String()
    uploaded_at = fields.String(allow_none=True)


class LineageUnitOut(Schema):
    credit_code = fields.String()
    name = fields.String()
    district = fields.String()
    park = fields.String(allow_none=True)
    roles = fields.List(fields.String())
    producer = fields.Boolean(metadata={"description": "true: contributes to numerator/denominator"})
    numerator = fields.Float()
    denominator = fields.Float(allow_none=True)
    handled_t = fields.Float(metadata={"description": "tonnes of the region's waste that passed this unit"})
    realised_t = fields.Dict(keys=fields.String(), values=fields.Float(),
                             metadata={"description": "of which ended here in U / D / S, or left to X"})
    ledgers = fields.List(fields.Nested(LedgerRefOut))
    ledgers_hidden = fields.Integer()


class LineageOut(IndicatorOut):
    year = fields.Integer()
    region = fields.String()
    formula = fields.String()
    streams = fields.List(fields.String())
    units = fields.List(fields.Nested(LineageUnitOut))


class FateRowOut(Schema):
    stream = fields.String()
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    park = fields.String(allow_none=True)
    code = fields.String()
    generated_t = fields.Float()
    drawn_t = fields.Float()
    attributed_t = fields.Float()
    utilised_t = fields.Float()
    disposed_t = fields.Float()
    stored_t = fields.Float()
    unresolved_t = fields.Float()
    utilised_prior_t = fields.Float()
    disposed_prior_t = fields.Float()
    shares = fields.Dict(keys=fields.String(), values=fields.Float())


class FateOut(Schema):
    year = fields.Integer()
    stream = fields.String()
    region = fields.String()
    method = fields.String(metadata={"description": "exact (Fractions, acyclic) or levels (float solve)"})
    totals = fields.Dict(keys=fields.String(), values=fields.Float())
    producers = fields.List(fields.Nested(FateRowOut))
    unresolved_transfers = fields.List(fields.Dict())
    loops = fields.List(fields.List(fields.Dict()))


class FlowsOut(Schema):
    year = fields.Integer()
    stream = fields.String()
    region = fields.String()
    directed = fields.Boolean()
    nodes = fields.List(fields.Dict())
    links = fields.List(fields.Dict())
    sankey = fields.Dict()
    loops = fields.List(fields.List(fields.String()))


class BalanceMonthOut(Schema):
    month = fields.String()
    ledger_id = fields.Integer(allow_none=True)
    version = fields.Integer(allow_none=True)
    open = fields.Float()
    generated = fields.Float()
    received = fields.Float()
    utilised = fields.Float()
    disposed = fields.Float()
    transferred = fields.Float()
    close = fields.Float()
    residual = fields.Float()


class BalanceCodeOut(Schema):
    code = fields.String()
    stream = fields.String(allow_none=True)
    year_open = fields.Float()
    year_close = fields.Float()
    stored = fields.Float()
    drawn = fields.Float()
    months = fields.List(fields.Nested(BalanceMonthOut))


class BalanceOut(Schema):
    year = fields.Integer()
    unit = fields.String()
    name = fields.String()
    district = fields.String()
    codes = fields.List(fields.Nested(BalanceCodeOut))


@blp.route("/indicators", methods=["GET"])
@blp.arguments(RegionArgs, location="query")
@blp.response(200, IndicatorsOut)
@blp.alt_response(403, description="region not visible to the caller")
def get_indicators(args):
    """The indicators of indicators.md §3 for a year and region (city for everyone; districts and parks for
    admins and their regulators); ``national`` marks the ★ indicators, ``scope`` national or local ones."""
    with deps.uow() as uow:
        return uc.compute_indicators(uow=uow, actor=deps.actor(), year=args["year"], region=args["region"])


@blp.route("/indicators/<string:key>/lineage", methods=["GET"])
@blp.arguments(RegionArgs, location="query")
@blp.response(200, LineageOut)
@blp.alt_response(403, description="enterprises, or a region not visible to the caller")
@blp.alt_response(404, description="unknown indicator key")
def get_lineage(args, key: str):
    """Units and ledger versions behind one figure, with each unit's contribution."""
    with deps.uow() as uow:
        return uc.indicator_lineage(uow=uow, actor=deps.actor(), key=key, year=args["year"], region=args["region"])


@blp.route("/fate", methods=["GET"])
@blp.arguments(StreamArgs, location="query")
@blp.response(200, FateOut)
@blp.alt_response(403, description="region not visible to the caller")
def get_fate(args):
    """Per producer and code: attributed tonnes and their fates U/D/S/X (enterprises: own units only)."""
    with deps.uow() as uow:
        return uc.fate_table(uow=uow, actor=deps.actor(), year=args["year"], stream=args["stream"],
                             region=args["region"])


@blp.route("/flows", methods=["GET"])
@blp.arguments(StreamArgs, location="query")
@blp.response(200, FlowsOut)
@blp.alt_response(403, description="enterprises, or a region not visible to the caller")
def get_flows(args):
    """Node-link JSON of the yearly graph and a balanced Sankey by district and unit role."""
    with deps.uow() as uow:
        return flows_uc.flows(uow=uow, actor=deps.actor(), year=args["year"], stream=args["stream"],
                              region=args["region"])


@blp.route("/balance", methods=["GET"])
@blp.arguments(BalanceArgs, location="query")
@blp.response(200, BalanceOut)
@blp.alt_response(404, description="unknown unit, or not visible to the caller")
def get_balance(args):
    """Per code and month of a unit: open, generated, received, utilised, disposed, transferred, close, residual."""
    with deps.uow() as uow:
        return uc.unit_balance(uow=uow, actor=deps.actor(), year=args["year"], unit=args["unit"])
