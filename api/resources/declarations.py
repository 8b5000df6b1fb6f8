"""HJ 1259 tiers, declaration tables (C.1/C.2/C.3) and the declaration calendar (issue 14)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps
from imports import XLSX_MIME
from ledgers import declarations as svc
from nofei.access import Actor
from nofei.domain.calendar import today_cst
from nofei.domain.declarations import TIERS
from nofei.errors import NotFound

blp = Blueprint("declarations", __name__, url_prefix="/api/v1",
                description="HJ 1259 tiers (管理类别), declarations (申报报告) and their calendar")

T = {"description": "tonnes, exact (a decimal string with three places)"}


def _t() -> fields.Decimal:
    return fields.Decimal(as_string=True, metadata={**T, "type": "string", "format": "decimal"})


class YearArgs(Schema):
    year = fields.Integer(load_default=lambda: today_cst().year, validate=validate.Range(min=2000, max=2100))


class TierYear(Schema):
    year = fields.Integer()
    generated_t = fields.String(metadata=T)
    months = fields.Integer(metadata={"description": "months with a current ledger holding HW rows"})
    own_methods = fields.List(fields.String())


class TierFigures(Schema):
    annual_t = fields.String(metadata={"description": "the annual amount (HJ 1259 4.2.3): max of the years used"})
    basis = fields.String(metadata={"description": "last_three_years | operating_years | current_year | none"})
    rule = fields.String(allow_none=True, metadata={
        "description": "licence | own_facility | amount_key | amount_simplified | amount_registration"})
    years = fields.List(fields.Nested(TierYear))
    own_methods = fields.List(fields.String(), metadata={"description": "own 利用处置 methods of HW codes"})
    licences = fields.List(fields.String(), metadata={"description": "HW permits (经营许可证) valid in the year"})
    thresholds_t = fields.Dict()
    computed = fields.Dict(allow_none=True, metadata={"description": "the rule's {tier, tier_zh, reason}"})
    override = fields.Dict(allow_none=True, metadata={"description": "the regulator's {tier, reason, by, at}"})


class TierOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    year = fields.Integer()
    tier = fields.String(metadata={"description": "key (重点监管) | simplified (简化管理) | registration (登记管理)"})
    tier_zh = fields.String()
    reason = fields.String(metadata={"description": "the rule and figures that decided it"})
    figures = fields.Nested(TierFigures)


class TierOverrideIn(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    tier = fields.String(required=True, validate=validate.OneOf(TIERS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class TierClearArgs(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))


class DeclarationArgs(Schema):
    period = fields.String(required=True, validate=validate.Length(min=4, max=7),
                           metadata={"description": "2025-03 (C.1), 2025-Q1 (C.2) or 2025 (C.3)"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


class OwnOut(Schema):
    method = fields.String()
    qty_t = _t()


class EntrustedOut(Schema):
    receiver = fields.String(metadata={"description": "the receiver's credit code"})
    receiver_name = fields.String()
    province = fields.String(allow_none=True)
    licence = fields.String(allow_none=True, metadata={"description": "许可证编号 (None: see gaps)"})
    method = fields.String(allow_none=True)
    qty_t = _t()


class GapOut(Schema):
    field = fields.String(metadata={"description": "the row's field, e.g. form or entrusted[0].licence"})
    column = fields.String(metadata={"description": "the official column"})
    reason = fields.String()


class DeclarationRowOut(Schema):
    code = fields.String()
    name = fields.String()
    category = fields.String()
    hazard = fields.String()
    generated_t = _t()
    own = fields.List(fields.Nested(OwnOut))
    entrusted = fields.List(fields.Nested(EntrustedOut))
    stock_open_t = _t()
    stock_close_t = _t()
    gaps = fields.List(fields.Nested(GapOut))


class TraceOut(Schema):
    code = fields.String()
    field = fields.String()
    ledger_id = fields.Integer()
    month = fields.String()
    version = fields.Integer()
    sheet = fields.String()
    row = fields.Integer(allow_none=True)
    qty_t = fields.Decimal(as_string=True, allow_none=True, metadata={**T, "type": "string", "format": "decimal"})


class TotalsOut(Schema):
    generated_t = _t()
    own_t = _t()
    entrusted_t = _t()
    stock_open_t = _t()
    stock_close_t = _t()


class LedgerRef(Schema):
    month = fields.String()
    ledger_id = fields.Integer()
    version = fields.Integer()


class DeclarationOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    district_name = fields.String()
    period = fields.String()
    period_kind = fields.String(metadata={"description": "month | quarter | year"})
    period_label = fields.String()
    table = fields.String(metadata={"description": "C.1 | C.2 | C.3"})
    title = fields.String()
    deadline = fields.Date()
    months = fields.List(fields.String())
    ledgers = fields.List(fields.Nested(LedgerRef), metadata={"description": "the current versions used"})
    missing_months = fields.List(fields.String())
    complete = fields.Boolean()
    tier = fields.String(allow_none=True)
    tier_zh = fields.String(allow_none=True)
    rows = fields.List(fields.Nested(DeclarationRowOut), metadata={"description": "one item per waste code"})
    identity = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "{code: {harmful_components, form}} from the optional 产生贮存 columns 有害成分名称 and 形态 "
                       "(null: not given, see the row's gaps)"})
    totals = fields.Nested(TotalsOut)
    trace = fields.List(fields.Nested(TraceOut), metadata={"description": "the ledger row behind every figure"})
    generated_at = fields.String()


class DueOut(Schema):
    period = fields.String()
    label = fields.String()
    table = fields.String()
    kind = fields.String()
    deadline = fields.Date()
    status = fields.String(metadata={"description": "not_due | open | ready | late | late_ready"})
    status_zh = fields.String()
    late = fields.Boolean()
    missing_months = fields.List(fields.String())


class UnitCalendar(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    year = fields.Integer()
    tier = fields.String()
    tier_zh = fields.String()
    reason = fields.String()
    items = fields.List(fields.Nested(DueOut))
    next = fields.List(fields.Nested(DueOut), metadata={"description": "the next (at most 3) not yet due or open"})
    late = fields.List(fields.Nested(DueOut))
    late_count = fields.Integer()


class CalendarOut(UnitCalendar):
    today = fields.Date()


class StatusArgs(YearArgs):
    district = fields.String(load_default=None, validate=validate.Length(max=32))


class DistrictStatus(Schema):
    district = fields.String()
    district_name = fields.String()
    units = fields.List(fields.Nested(UnitCalendar))
    late_units = fields.Integer()
    late = fields.Integer()


class StatusOut(Schema):
    year = fields.Integer()
    today = fields.Date()
    region = fields.String()
    region_name = fields.String()
    districts = fields.List(fields.Nested(DistrictStatus))
    late_units = fields.Integer()
    units = fields.Integer()


def declaration(*, uow_factory: Any, actor: Actor, code: str, period_text: str) -> dict[str, Any]:
    """The table with the unit's tier of the period's year in its unit block (used by API, pages and CLI)."""
    from reports.declarations import build_declaration, period_arg

    period = period_arg(period_text)
    with uow_factory() as uow:
        tier = tier_or_none(uow, actor, code, period.year)
        return build_declaration(uow=uow, actor=actor, credit_code=code, period=period, tier=tier)


def tier_or_none(uow: Any, actor: Actor, code: str, year: int) -> dict[str, Any] | None:
    """The unit's tier of ``year``, or None for a unit without hazardous waste (other errors propagate)."""
    try:
        return svc.unit_tier(uow=uow, actor=actor, credit_code=code, year=year)
    except NotFound as e:
        if e.code != "no_hazardous_waste":
            raise
        return None


def xlsx_response(d: dict[str, Any]) -> Response:
    from reports.declarations_xlsx import write_declaration_xlsx

    resp = Response(write_declaration_xlsx(d), mimetype=XLSX_MIME)
    name = f"{d['title']}-{d['unit']}-{d['period']}.xlsx"
    resp.headers["Content-Disposition"] = (f"attachment; filename=\"declaration-{d['unit']}-{d['period']}.xlsx\"; "
                                           f"filename*=UTF-8''{quote(name)}")
    return resp


@blp.route("/units/<string:code>/tier", methods=["GET"])
@blp.arguments(YearArgs, location="query")
@blp.response(200, TierOut)
@blp.alt_response(404, description="unknown or not visible unit, or no hazardous waste (code no_hazardous_waste)")
def get_tier(args: dict[str, Any], code: str):
    """The HJ 1259 tier of a unit for a year: the rule (4.2.1, 4.2.3) on the ledgers of the three years
    before, or a regulator's adjustment (4.2.2), with the reason and the figures."""
    with deps.uow() as uow:
        return svc.unit_tier(uow=uow, actor=deps.actor(), credit_code=code, year=args["year"])


@blp.route("/units/<string:code>/tier", methods=["PUT"])
@blp.arguments(TierOverrideIn)
@blp.response(200, TierOut)
@blp.alt_response(403, description="enterprises may not adjust a tier")
def put_tier(data: dict[str, Any], code: str):
    """Adjust a unit's tier for a year (regulators of its district, admins), with a reason; audited."""
    with deps.uow() as uow:
        return svc.override_tier(uow=uow, actor=deps.actor(), credit_code=code, **data)


@blp.route("/units/<string:code>/tier", methods=["DELETE"])
@blp.arguments(TierClearArgs, location="query")
@blp.response(204)
def delete_tier(args: dict[str, Any], code: str):
    """Withdraw the adjustment of a unit's tier for a year: the rule applies again; audited."""
    with deps.uow() as uow:
        svc.clear_tier_override(uow=uow, actor=deps.actor(), credit_code=code, year=args["year"])


@blp.route("/units/<string:code>/declarations", methods=["GET"])
@blp.arguments(DeclarationArgs, location="query")
@blp.response(200, DeclarationOut, description="format=json")
@blp.alt_response(200, description="format=xlsx: the table laid out like HJ 1259 表 C.1/C.2/C.3",
                  content_type=XLSX_MIME, success=True)
@blp.alt_response(422, description="bad period")
def get_declaration(args: dict[str, Any], code: str):
    """The HJ 1259 declaration table (C.1 month, C.2 quarter, C.3 year) of a unit from the current versions of
    the period's ledgers, every figure traced to its ledger rows, every gap named with its reason."""
    d = declaration(uow_factory=deps.uow, actor=deps.actor(), code=code, period_text=args["period"])
    if args["format"] == "xlsx":
        return xlsx_response(d)
    return d


@blp.route("/units/<string:code>/declarations/calendar", methods=["GET"])
@blp.arguments(YearArgs, location="query")
@blp.response(200, CalendarOut)
def get_calendar(args: dict[str, Any], code: str):
    """The declarations a unit owes for a year by its tier, their deadlines (HJ 1259 7.2) and their status."""
    with deps.uow() as uow:
        return svc.unit_calendar(uow=uow, actor=deps.actor(), credit_code=code, year=args["year"])


@blp.route("/declarations/status", methods=["GET"])
@blp.arguments(StatusArgs, location="query")
@blp.response(200, StatusOut)
@blp.alt_response(403, description="a district the caller may not see")
def get_status(args: dict[str, Any]):
    """Per district, every hazardous-waste unit's declarations of the year and who is late (regulators: their
    district; enterprises: their own units)."""
    with deps.uow() as uow:
        return svc.declaration_status(uow=uow, actor=deps.actor(), year=args["year"], district=args.get("district"))


class PlanArgs(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2001, max=2100),
                          metadata={"description": "the plan's year; pre-filled from the year before"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


class PlanOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    district_name = fields.String()
    year = fields.Integer()
    based_on = fields.String(metadata={"description": "the year whose ledgers fill the plan"})
    tier = fields.String()
    tier_zh = fields.String()
    tables = fields.Dict(keys=fields.String(), values=fields.List(fields.Dict()), metadata={
        "description": "{A.3|A.4|A.5|A.7: [rows]} as the tier requires (HJ 1259 5.3); quantities are decimal strings"})
    missing_months = fields.List(fields.String())
    ledgers = fields.List(fields.Nested(LedgerRef))
    not_held = fields.List(fields.String(), metadata={"description": "parts of the plan nofei cannot fill"})


def management_plan(*, uow_factory: Any, actor: Actor, code: str, year: int) -> dict[str, Any]:
    """The pre-filled plan of ``year`` with the unit's tier of that year (API, pages, CLI); Decimal quantities."""
    from reports.plans import build_plan

    with uow_factory() as uow:
        return build_plan(uow=uow, actor=actor, credit_code=code, year=year,
                          tier=tier_or_none(uow, actor, code, year))


def plan_json(plan: dict[str, Any]) -> dict[str, Any]:
    """Exact decimals travel as strings, like the declarations."""
    tables = {k: [{f: (str(v) if f.endswith("_t") and v is not None else v) for f, v in r.items()} for r in rows]
              for k, rows in plan["tables"].items()}
    return {**plan, "tables": tables}


def plan_response(plan: dict[str, Any]) -> Response:
    from reports.plans import write_plan_xlsx

    resp = Response(write_plan_xlsx(plan), mimetype=XLSX_MIME)
    name = f"危险废物管理计划-{plan['unit']}-{plan['year']}.xlsx"
    resp.headers["Content-Disposition"] = (f"attachment; filename=\"plan-{plan['unit']}-{plan['year']}.xlsx\"; "
                                           f"filename*=UTF-8''{quote(name)}")
    return resp


@blp.route("/units/<string:code>/management-plan", methods=["GET"])
@blp.arguments(PlanArgs, location="query")
@blp.response(200, PlanOut, description="format=json")
@blp.alt_response(200, description="format=xlsx: one sheet per table (表A.3, 表A.4, 表A.5, 表A.7)",
                  content_type=XLSX_MIME, success=True)
def get_plan(args: dict[str, Any], code: str):
    """危险废物管理计划 pre-fill (HJ 1259 附录 A: A.3 产生, A.4 贮存, A.5 自行利用/处置, A.7 转移) of a year from the
    previous year's ledgers, the tables the unit's tier requires."""
    plan = management_plan(uow_factory=deps.uow, actor=deps.actor(), code=code, year=args["year"])
    return plan_response(plan) if args["format"] == "xlsx" else plan_json(plan)


class LicensedArgs(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]))


class LicensedRowOut(Schema):
    code = fields.String()
    name = fields.String()
    category = fields.String()
    received_t = _t()
    senders = fields.Integer()
    generated_t = _t()
    stock_open_t = _t()
    stock_close_t = _t()
    utilised = fields.List(fields.Nested(OwnOut))
    disposed = fields.List(fields.Nested(OwnOut))
    utilised_t = _t()
    disposed_t = _t()
    sent_on_t = _t()


class LicensedPermitOut(Schema):
    number = fields.String()
    waste_codes = fields.List(fields.String())
    methods = fields.List(fields.String())
    capacity_t = _t()
    used_t = _t()
    use_pct = fields.Decimal(as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"})
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)


class LicensedOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    district_name = fields.String()
    year = fields.Integer()
    deadline = fields.Date()
    title = fields.String()
    rows = fields.List(fields.Nested(LicensedRowOut))
    permits = fields.List(fields.Nested(LicensedPermitOut))
    uncovered = fields.List(fields.Dict(), metadata={"description": "treatment rows no valid permit covers"})
    missing_months = fields.List(fields.String())
    totals = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("/units/<string:code>/licensed-report", methods=["GET"])
@blp.arguments(LicensedArgs, location="query")
@blp.response(200, LicensedOut, description="format=json")
@blp.alt_response(200, description="format=xlsx", content_type=XLSX_MIME, success=True)
@blp.alt_response(404, description="unknown or not visible unit, or no permit valid in the year (not_licensed)")
def get_licensed_report(args: dict[str, Any], code: str):
    """持证单位经营情况年报: received, stored, utilised and disposed per code and method against the permits'
    yearly capacity, from the year's ledgers (due by 31 March of the next year)."""
    from reports.licensed import build_licensed_report, write_licensed_xlsx

    with deps.uow() as uow:
        rep = build_licensed_report(uow=uow, actor=deps.actor(), credit_code=code, year=args["year"])
    if args["format"] == "xlsx":
        resp = Response(write_licensed_xlsx(rep), mimetype=XLSX_MIME)
        resp.headers["Content-Disposition"] = f"attachment; filename=\"licensed-{rep['unit']}-{rep['year']}.xlsx\""
        return resp
    rep["totals"] = {k: str(v) for k, v in rep["totals"].items()}
    return rep
