"""The annual 无废城市 report: JSON, an Excel workbook, or a self-contained HTML page."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from imports import XLSX_MIME
from ledgers.anomalies import list_anomalies
from nofei.access import Actor
from nofei.catalogue import CITY
from nofei.domain.calendar import today_cst
from nofei.storage.uow import UnitOfWork
from reports.annual import build_annual_report

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Annual report (年度报告)")

# The report page has no script and no external resource; its only inline code is its stylesheet.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def fetch_anomalies(*, uow_factory: Any, actor: Actor, year: int, region: str) -> list[dict[str, Any]]:
    """Anomalies of the year from ``ledgers.anomalies``.

    ``reports`` may not import ``ledgers``, so the api layer fetches them and passes them in."""
    region_arg = None if region == CITY else region
    with uow_factory() as uow:
        return list(list_anomalies(uow=uow, actor=actor, year=year, region=region_arg))


def annual_report(*, uow_factory: Any, actor: Actor, year: int, region: str) -> dict[str, Any]:
    """Build the report for the caller: region checked first, then anomalies gathered and passed in."""
    uow: UnitOfWork = uow_factory()
    from reports.annual import check_region

    with uow:
        check_region(uow, actor, region)
    anomalies = fetch_anomalies(uow_factory=uow_factory, actor=actor, year=year, region=region)
    return build_annual_report(uow=uow_factory(), actor=actor, year=year, region=region, anomalies=anomalies)


def render(report: dict[str, Any], fmt: str, *, lineage_base: str = "/lineage") -> tuple[bytes, str, str]:
    """Bytes, media type and file name of the report in ``fmt`` (json|xlsx|html)."""
    name = f"nofei-report-{report['region']}-{report['year']}"
    if fmt == "xlsx":
        from reports.excel import write_annual_xlsx

        return write_annual_xlsx(report), XLSX_MIME, name + ".xlsx"
    if fmt == "html":
        from reports.html import render_annual_html

        return render_annual_html(report, lineage_base=lineage_base).encode("utf-8"), "text/html; charset=utf-8", name + ".html"
    import json

    return json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"), "application/json", name + ".json"


class AnnualReportArgs(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=today_cst().year + 1))
    region = fields.String(load_default=CITY, validate=validate.Length(min=1, max=32),
                           metadata={"enum": schemas.REGIONS, "description": "district code (630100 = the city) or park code"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx", "html"]))


class ReportIndicatorOut(Schema):
    key = fields.String()
    name = fields.String()
    value = fields.Float(allow_none=True)
    unit = fields.String()
    numerator = fields.Float(allow_none=True)
    denominator = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    meets_target = fields.Boolean(allow_none=True)
    units_count = fields.Integer(allow_none=True)
    ledgers_count = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class ReportTonnageOut(Schema):
    level = fields.String(metadata={"description": "region (the report's region total) or district"})
    stream = fields.String()
    stream_name = fields.String()
    district = fields.String()
    district_name = fields.String()
    generated_t = fields.Float()
    utilised_t = fields.Float()
    disposed_t = fields.Float()
    stored_t = fields.Float()
    unresolved_t = fields.Float()


class ReportCompletenessOut(Schema):
    unit = fields.String()
    unit_name = fields.String()
    district = fields.String()
    district_name = fields.String()
    expected = fields.Integer()
    reported = fields.Integer()
    reported_months = fields.List(fields.String())
    missing_months = fields.List(fields.String())


class AnnualReportOut(Schema):
    year = fields.Integer()
    region = fields.String()
    region_name = fields.String()
    generated_at = fields.String()
    engine = fields.String(metadata={"description": "ok, or unavailable when the indicator engine is missing"})
    summary = fields.Dict()
    indicators = fields.List(fields.Nested(ReportIndicatorOut))
    years = fields.List(fields.Integer())
    trends = fields.Dict(metadata={"description": "{key: [{year, value}]}"})
    tonnage = fields.List(fields.Nested(ReportTonnageOut))
    districts = fields.List(fields.Dict())
    fate = fields.List(fields.Dict(), metadata={"description": "per producer and code: attributed_t and U/D/S/X tonnes"})
    sankey = fields.Dict(metadata={"description": "{stream: {nodes: [{id,label,kind}], links: [{source,target,value}]}}"})
    anomalies = fields.List(fields.Dict())
    completeness = fields.List(fields.Nested(ReportCompletenessOut))
    publication = fields.Dict(metadata={"description": "大中城市固体废物污染环境防治信息: {title, region, items: "
                                                      "[{stream, name, figures: [{key, name, t}]}], note}"})


@blp.route("/annual")
@blp.arguments(AnnualReportArgs, location="query")
@blp.response(200, AnnualReportOut, description="The report as JSON (format=json)")
@blp.alt_response(200, description="format=xlsx: the workbook; format=html: a self-contained page",
                  content_type=XLSX_MIME, success=True)
@blp.alt_response(403, description="the caller may not see this region")
@blp.alt_response(422, description="unknown region or bad year")
def annual(args: dict[str, Any]):
    """The annual 无废城市 report of a region: indicators against targets, trends, tonnage by stream and
    district, fate by producer, anomalies, data completeness. Regulators: their district; enterprises: the city."""
    actor = deps.actor()
    report = annual_report(uow_factory=deps.uow, actor=actor, year=args["year"], region=args["region"])
    if args["format"] == "json":
        return report
    body, media, name = render(report, args["format"])
    resp = Response(body, mimetype=media.split(";")[0])
    resp.headers["Content-Type"] = media
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"' if args["format"] == "xlsx" else f'inline; filename="{name}"'
    if args["format"] == "html":
        resp.headers["Content-Security-Policy"] = REPORT_CSP
    return resp
