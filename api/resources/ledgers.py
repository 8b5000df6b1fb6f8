"""Monthly ledgers (issue 3): template, upload, check (annotated workbook), versions, original file."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from api.downloads import content_disposition, original_file
from api.schemas import ErrorSchema, PageArgs, ProblemSchema, page_schema
from api.uploads import import_workbook
from imports import XLSX_MIME, ReadLimits, gate, write_template
from ledgers import ledger as uc
from nofei.domain.calendar import today_cst
from nofei.domain.units import normalise_credit_code
from nofei.errors import InputRejected, LedgerRejected, PermissionDenied
from nofei.problems import Problem

blp = Blueprint("ledgers", __name__, url_prefix="/api/v1",
                description="Monthly ledgers (月度台账): template, upload, check, versions")

_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_MONTH = validate.Regexp(_MONTH_RE, error="YYYY-MM")


class UploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                               "description": ".xlsx, .xls or .ods (ledger-workbook.md)"})


class UploadQuery(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "validate only, store nothing"})


class CheckQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "xlsx"]),
                           metadata={"description": "json (default): the lists (CheckResult); xlsx: the upload "
                                                    "annotated (faulty cells red + comment, warnings yellow, a first "
                                                    "sheet 错误清单), media type " + XLSX_MIME})


class TemplateQuery(Schema):
    unit = fields.String(validate=validate.Length(max=40),
                         metadata={"description": "credit code to pre-fill (enterprise: defaults to its unit)"})


class StreamTotals(Schema):
    generated_t = fields.Float()
    utilised_t = fields.Float()
    disposed_t = fields.Float()
    transferred_out_t = fields.Float()
    received_t = fields.Float()


class ReceiptSchema(Schema):
    id = fields.Integer(allow_none=True, metadata={"description": "null for dry_run"})
    unit = fields.String()
    month = fields.String()
    version = fields.Integer()
    duplicate = fields.Boolean()
    rows = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "rows per sheet"})
    totals = fields.Dict(keys=fields.String(), values=fields.Nested(StreamTotals),
                         metadata={"description": "per stream, tonnes"})
    warnings = fields.List(fields.Nested(ProblemSchema))


class LedgerSchema(ReceiptSchema):
    is_current = fields.Boolean()
    sha256 = fields.String()
    filename = fields.String()
    size = fields.Integer()
    uploaded_at = fields.DateTime()
    uploaded_by = fields.String()
    unit_name = fields.String()
    reporter = fields.String()
    phone = fields.String()
    year = fields.Integer()


class StockOut(Schema):
    row = fields.Integer(allow_none=True)
    code = fields.String()
    stream = fields.String()
    name = fields.String()
    open_t = fields.Float()
    generated_t = fields.Float()
    close_t = fields.Float()
    note = fields.String()


class TreatmentOut(Schema):
    row = fields.Integer(allow_none=True)
    code = fields.String()
    stream = fields.String()
    method = fields.String()
    qty_t = fields.Float()
    product = fields.String()
    note = fields.String()


class TransferOut(Schema):
    row = fields.Integer(allow_none=True)
    direction = fields.String(metadata={"description": "out (转出) or in (转入)"})
    day = fields.Date()
    code = fields.String()
    stream = fields.String()
    qty_t = fields.Float()
    counterpart = fields.String()
    counterpart_name = fields.String()
    manifest_no = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    planned_method = fields.String(allow_none=True)
    note = fields.String()


class LedgerDetail(LedgerSchema):
    stocks = fields.List(fields.Nested(StockOut))
    treatments = fields.List(fields.Nested(TreatmentOut))
    transfers = fields.List(fields.Nested(TransferOut))


class LedgerQuery(PageArgs):
    unit = fields.String(validate=validate.Length(max=40))
    month = fields.String(validate=_MONTH)
    year = fields.Integer(validate=validate.Range(min=1990, max=2100))
    current = fields.Boolean(load_default=False, metadata={"description": "only current versions"})


class CheckResult(Schema):
    valid = fields.Boolean()
    errors = fields.List(fields.Nested(ProblemSchema))
    warnings = fields.List(fields.Nested(ProblemSchema))
    receipt = fields.Nested(ReceiptSchema, allow_none=True, metadata={"description": "what an upload would answer"})


_TOO_LARGE = ("over a size limit: upload (`file_too_large`, decided on Content-Length before the body is read), "
              "uncompressed size, compression ratio, sheets, rows or columns (`too_many_rows`, `too_many_columns`: a "
              "cell or dimension beyond the limits, named with its sheet and cell, refused before parsing), or the "
              "parse worker's limits (`parse_timeout`, `parse_memory_exceeded`)")


def _limits() -> ReadLimits:
    return ReadLimits.from_settings(current_app.config)


def _upload() -> tuple[bytes, str, str]:
    """The multipart ``file`` (bounded by MAX_CONTENT_LENGTH before we get here: 413)."""
    f = request.files.get("file")
    if f is None:
        raise InputRejected("缺少上传文件 (multipart field 'file' is required)", problems=[
            Problem(code="missing_file", message="缺少上传文件（字段 file）", message_en="multipart field 'file' is required",
                    field="file")])
    data = f.read(_limits().max_upload_bytes + 1)
    return data, (f.filename or "upload.xlsx")[:255], f.mimetype or ""


def _read(data: bytes, filename: str):
    with deps.uow() as u:  # a short transaction for the catalogue; parsing holds no database lock
        cat = u.catalogue
    return gate.read_ledger(data, filename=filename, catalogue=cat, limits=_limits(), today=today_cst())


def _no_regulators() -> None:
    if deps.actor().role == "regulator":
        raise PermissionDenied("监管部门不能提交台账 (regulators submit no ledgers)")


@blp.route("/ledgers/template", methods=["GET"])
@blp.arguments(TemplateQuery, location="query")
@blp.response(200, description="the .xlsx template (five sheets, drop-downs, instructions)",
              content_type=XLSX_MIME)
def template(args: dict[str, Any]) -> Response:
    """The monthly ledger template, from the same column specification the reader uses. For an
    enterprise the cover is pre-filled with its unit (or ``unit``, one of its units)."""
    a = deps.actor()
    code = normalise_credit_code(args["unit"]) if args.get("unit") else None
    if code is None and a.role == "enterprise" and a.units:
        code = sorted(a.units)[0]
    name = None
    with deps.uow() as u:
        if code:
            name = uc.registered_name(uow=u, actor=a, codes=[code]).get(code)
            if name is None:
                code = None
        body = write_template(code, name, u.catalogue)
    fn = f"台账模板_{code}.xlsx" if code else "台账模板.xlsx"
    resp = Response(body, mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = _disposition(fn)
    return resp


def _disposition(filename: str) -> str:
    return content_disposition(filename, "ledger.xlsx")


@blp.route("/ledgers", methods=["POST"])
@blp.arguments(UploadSchema, location="files")
@blp.arguments(UploadQuery, location="query")
@blp.response(201, ReceiptSchema, description="accepted as a new version")
@blp.doc(**schemas.links(201, "Receipt", "id", "ledger_id", "getLedger", "getLedgerFile",
                          description="accepted as a new version"))
@blp.alt_response(200, schema=ReceiptSchema, description="duplicate (byte-identical to the current version), or dry_run")
@blp.alt_response(413, schema=ErrorSchema, description=_TOO_LARGE)
@blp.alt_response(415, schema=ErrorSchema, description="not a spreadsheet: macro-enabled, encrypted, corrupt, disguised")
@blp.alt_response(422, schema=ErrorSchema, description="rejected: `errors` lists every problem with sheet, row, "
                                                       "column letter, header, value, code, message, message_en; "
                                                       "`unreadable_file` when the parser fails on the file")
@blp.alt_response(403, schema=ErrorSchema, description="regulators, or an enterprise for another unit")
def upload(_files: dict[str, Any], args: dict[str, Any]):
    """Upload a monthly ledger workbook (multipart field ``file``); ``dry_run=true`` validates only."""
    _no_regulators()
    data, filename, ctype = _upload()
    dry = bool(args.get("dry_run")) or request.form.get("dry_run", "").lower() in ("1", "true", "yes")
    rc = import_workbook(uow=deps.uow(), actor=deps.actor(), data=data, filename=filename, content_type=ctype,
                         limits=_limits(), today=today_cst(), dry_run=dry)
    return rc, (200 if rc["duplicate"] or dry else 201)


@blp.route("/ledgers/check", methods=["POST"])
@blp.arguments(UploadSchema, location="files")
@blp.arguments(CheckQuery, location="query")
@blp.response(200, CheckResult)
@blp.doc(responses={"200": {
    "description": "format=json (the default): the lists as application/json (CheckResult). format=xlsx: the "
                   "uploaded workbook with every faulty cell filled red and commented, warnings yellow, and a first "
                   "sheet 错误清单 listing every problem (uploads over 4 MB: the 错误清单 sheet alone), with header "
                   "X-Ledger-Errors = the number of errors",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckResult"}},
                XLSX_MIME: {"schema": {"type": "string", "format": "binary"}}},
    "headers": {"X-Ledger-Errors": {"description": "format=xlsx: the number of errors",
                                    "schema": {"type": "integer", "minimum": 0}}}}})
@blp.alt_response(413, schema=ErrorSchema, description=_TOO_LARGE)
@blp.alt_response(415, schema=ErrorSchema, description="not a spreadsheet nofei accepts")
@blp.alt_response(422, schema=ErrorSchema, description="`unreadable_file`: the parser fails on the file")
def check(_files: dict[str, Any], args: dict[str, Any]):
    """Validate without storing and answer with the errors where they are (the same checks as upload)."""
    data, filename, ctype = _upload()
    errors: list[Problem] = []
    warnings: list[Problem] = []
    receipt = None
    try:
        draft = _read(data, filename)
        warnings = list(draft.warnings)
        if deps.actor().role != "regulator":
            receipt = uc.submit_monthly_ledger(uow=deps.uow(), actor=deps.actor(), draft=draft, content=data,
                                               filename=filename, content_type=ctype, dry_run=True)
            warnings = []
    except LedgerRejected as e:
        errors = list(e.problems)
        warnings = list(getattr(e, "warnings", []) or warnings)
    if args["format"] == "json":
        return {"valid": not errors, "errors": [p.to_dict() for p in errors],
                "warnings": [p.to_dict() for p in warnings] if receipt is None else receipt["warnings"],
                "receipt": receipt}
    ws = warnings if receipt is None else [Problem(**{k: v for k, v in w.items()}) for w in receipt["warnings"]]
    body = gate.annotate(data, errors, ws, _limits())
    resp = Response(body, mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = _disposition(f"错误标注_{filename.rsplit('.', 1)[0]}.xlsx")
    resp.headers["X-Ledger-Errors"] = str(len(errors))
    return resp


@blp.route("/ledgers", methods=["GET"])
@blp.arguments(LedgerQuery, location="query")
@blp.response(200, page_schema(LedgerSchema, "LedgerPage"))
def list_ledgers(args: dict[str, Any]):
    """Ledger versions the caller may see (all versions; ``current=true`` for current only), newest month first."""
    items, total = uc.list_ledgers(uow=deps.uow(), actor=deps.actor(), unit=args.get("unit"), month=args.get("month"),
                                   year=args.get("year"), current_only=args["current"], page=args["page"],
                                   per_page=args["per_page"])
    return deps.page(items, total, args["page"], args["per_page"])


@blp.route("/ledgers/<int:ledger_id>", methods=["GET"])
@blp.response(200, LedgerDetail)
@blp.doc(operationId="getLedger")
@blp.alt_response(404, schema=ErrorSchema, description="no such ledger, or not visible to the caller")
def get_ledger(ledger_id: int):
    """One version with its rows (tonnes) and warnings."""
    return uc.get_ledger(uow=deps.uow(), actor=deps.actor(), ledger_id=ledger_id)


@blp.route("/ledgers/<int:ledger_id>/file", methods=["GET"])
@blp.doc(operationId="getLedgerFile")
@blp.response(200, description="the original upload, byte for byte; its media type (xlsx, xls or ods) and file "
                                "extension are those of the bytes, not of the uploaded name",
              content_type="application/octet-stream")
@blp.alt_response(404, schema=ErrorSchema, description="no such ledger, or not visible to the caller")
def get_file(ledger_id: int) -> Response:
    """Download the original file of a version."""
    body, filename, _ctype = uc.ledger_file(uow=deps.uow(), actor=deps.actor(), ledger_id=ledger_id)
    return original_file(body, filename, ledger_id)  # type and extension from the bytes, not the uploader


@blp.route("/units/<string:code>/ledgers/<string:month>/versions", methods=["GET"])
@blp.response(200, LedgerSchema(many=True))
@blp.alt_response(404, schema=ErrorSchema, description="unknown unit, or not visible to the caller")
def versions(code: str, month: str):
    """Every version of a unit's month, oldest first; the newest is current."""
    if _MONTH_RE.match(month) is None:
        raise InputRejected("月份格式应为 YYYY-MM", problems=[Problem(code="bad_month", message="月份格式应为 YYYY-MM",
                                                                   message_en="month must be YYYY-MM", field="month",
                                                                   value=month)])
    return uc.versions(uow=deps.uow(), actor=deps.actor(), unit=code, month=month)
