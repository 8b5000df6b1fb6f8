"""Transfer manifests (电子转移联单): create, ship, receive, reject, correct, read, list/export, import (xlsx)."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from api.schemas import DecimalString, ErrorSchema, PageArgs, page_schema
from imports import XLSX_MIME, ReadLimits, gate
from ledgers.manifests import (
    CST,
    EXPORT_COLUMNS,
    Correction,
    ManifestFilter,
    NewManifest,
    Receipt,
    Rejection,
    Shipment,
    lifecycle,
    queries,
)
from nofei.domain.manifests import LATE_ENTRY_WORKING_DAYS, MISMATCH_KINDS, STATUSES
from nofei.errors import PermissionDenied
from nofei.text import neutralise_cell_text

blp = Blueprint("manifests", __name__, url_prefix="/api/v1/manifests",
                description="Transfer manifests (电子转移联单): lifecycle, history, export, import")

NUMBER = "<string(length=14):number>"
MAX_T = 10**7  # tonnes per line; zero is refused by the use case (quantity must be > 0, named per line)

TIME_RULES = (
    "Each step records its event time (``time``, default now) and its entry time (when nofei recorded it). "
    "REFUSED (422, field ``time``): an event more than 10 minutes in the future (``in_future``) or dated before "
    "the previous step's event, e.g. a receipt before the shipping (``before_previous_step``, "
    "``before_shipping``) — these cannot be true, so nothing is recorded. FLAGGED (recorded, the history entry's "
    f"``flags``): an event more than {LATE_ENTRY_WORKING_DAYS} working days before its entry (``late_entry``) "
    "and a shipping dated before the 联单 was submitted in nofei (``before_submission``) — 危险废物转移管理办法 "
    "第二十条 lets a paper 联单 be 补录 afterwards, so a late entry may be true and must be kept, but is shown "
    "to the regulator.")
TOLERANCE = ("A line is a discrepancy when received differs from shipped by more than 5 % AND more than 0.1 t: "
             "a LOCAL SETTING (DISCREPANCY_RATIO, DISCREPANCY_MIN_KG), not a national rule — 第十八条 names the "
             "mismatch but sets no tolerance.")


class ManifestLineIn(Schema):
    waste_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    quantity_t = DecimalString(required=True, high=MAX_T)
    packaging = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64))
    planned_method = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=8),
                                   metadata={"enum": schemas.METHODS})
    container_count = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0, max=10**6),
                                     metadata={"description": "包装数量 (containers)"})


class ManifestIn(Schema):
    shipper = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                            metadata={"description": "credit code; defaults to the enterprise's single unit"})
    receiver = fields.String(required=True, validate=validate.Length(min=1, max=40))
    carrier = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                            metadata={"description": "none: the shipper carries"})
    planned_date = schemas.Date(required=True)
    lines = fields.List(fields.Nested(ManifestLineIn), required=True, validate=validate.Length(min=1, max=100))


class ManifestShipIn(Schema):
    vehicle = fields.String(required=True, validate=validate.Length(min=1, max=32), metadata={"description": "车牌号"})
    driver = fields.String(required=True, validate=validate.Length(min=1, max=64))
    permit_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64),
                              metadata={"description": "营运证件号 (第十一条)"})
    time = schemas.AwareDateTime(load_default=None, allow_none=True, default_timezone=CST,
                                 metadata={"description": "departure (event) time; " + TIME_RULES})


class ManifestReceiveLineIn(Schema):
    line_no = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    received_t = DecimalString(load_default=None, allow_none=True, high=MAX_T)
    rejected_t = DecimalString(load_default=None, allow_none=True, high=MAX_T)
    method = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=8),
                           metadata={"enum": schemas.METHODS, "description": (
                               "利用处置方式 code; on a load returned to its shipper ``S`` (退回移出人贮存, the default "
                               "there and only there)")})
    mismatch = fields.List(fields.String(validate=validate.OneOf(list(MISMATCH_KINDS))), load_default=list,
                           metadata={"description": "第十八条 mismatches found: name, quantity, characteristics, "
                                                    "form, packaging (quantity is added when the line is a "
                                                    "discrepancy)"})
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400),
                           metadata={"description": "why this line is refused (reject)"})


class ManifestReceiveIn(Schema):
    lines = fields.List(fields.Nested(ManifestReceiveLineIn), required=True, validate=validate.Length(min=1, max=100))
    time = schemas.AwareDateTime(load_default=None, allow_none=True, default_timezone=CST,
                                 metadata={"description": "when the receipt was confirmed; " + TIME_RULES})
    accepted_on = fields.Date(load_default=None, allow_none=True, metadata={"description": (
        "接受日期: the day the waste was accepted (default: the date of ``time``, Beijing). Refused before the "
        "shipping date, after ``time`` or in the future. ``receipt_overdue`` counts 5 working days from it "
        "(第十八条 在接受之日起) to when the receipt was recorded in nofei.")})


class ManifestRejectIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=400))
    lines = fields.List(fields.Nested(ManifestReceiveLineIn), load_default=list,
                        metadata={"description": "accepted part per line (partial); absent: everything refused"})
    destination = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                                metadata={"description": "where the refused waste goes; default back to the shipper"})
    time = schemas.AwareDateTime(load_default=None, allow_none=True, default_timezone=CST,
                                 metadata={"description": "when the load was refused; " + TIME_RULES})
    accepted_on = fields.Date(load_default=None, allow_none=True,
                              metadata={"description": "接受日期 of the part accepted (as for receive)"})


class ManifestCorrectIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=400))
    receiver = fields.String(validate=validate.Length(min=1, max=40))
    carrier = fields.String(allow_none=True, validate=validate.Length(max=40))
    planned_date = schemas.Date()
    lines = fields.List(fields.Nested(ManifestLineIn), validate=validate.Length(min=1, max=100))
    vehicle = fields.String(validate=validate.Length(min=1, max=32))
    driver = fields.String(validate=validate.Length(min=1, max=64))


class ManifestPartyOut(Schema):
    credit_code = fields.String()
    name = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    registered = fields.Boolean()


class ManifestLineOut(Schema):
    line_no = fields.Integer()
    waste_code = fields.String()
    quantity_t = fields.Float()
    packaging = fields.String(allow_none=True)
    planned_method = fields.String(allow_none=True)
    container_count = fields.Integer(allow_none=True)
    received_t = fields.Float(allow_none=True)
    method = fields.String(allow_none=True)
    rejected_t = fields.Float(allow_none=True)
    discrepancy = fields.Boolean(metadata={"description": TOLERANCE})
    mismatch = fields.List(fields.String(), metadata={"description": "第十八条 mismatch kinds recorded"})


class ManifestEventOut(Schema):
    version = fields.Integer()
    time = fields.DateTime(metadata={"description": "entry time: when nofei recorded the step"})
    event_time = fields.DateTime(allow_none=True, metadata={"description": "when the step happened"})
    actor = fields.String()
    actor_zh = fields.String()
    action = fields.String()
    action_zh = fields.String()
    party = fields.String(metadata={"description": "shipper, carrier or receiver"})
    party_zh = fields.String()
    unit = fields.String(allow_none=True, metadata={"description": "credit code of the acting party"})
    unit_name = fields.String(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    from_status_zh = fields.String(allow_none=True)
    to_status_zh = fields.String()
    flags = fields.List(fields.String(), metadata={"description": "late_entry, before_submission (see time rules)"})
    flags_zh = fields.List(fields.String())
    detail = fields.Dict()


class ManifestVersionOut(Schema):
    version = fields.Integer()
    is_current = fields.Boolean()
    status = fields.String()
    updated_at = fields.DateTime()
    reason = fields.String(allow_none=True)


class ManifestOut(Schema):
    number = fields.String()
    version = fields.Integer()
    is_current = fields.Boolean()
    status = fields.String()
    status_zh = fields.String()
    shipper = fields.Nested(ManifestPartyOut)
    receiver = fields.Nested(ManifestPartyOut)
    carrier = fields.Nested(ManifestPartyOut, allow_none=True)
    planned_date = fields.Date()
    shipped_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    vehicle = fields.String(allow_none=True)
    driver = fields.String(allow_none=True)
    permit_no = fields.String(allow_none=True, metadata={"description": "营运证件号"})
    accepted_on = fields.Date(allow_none=True, metadata={"description": "接受日期"})
    shipped_entered_at = fields.DateTime(allow_none=True, metadata={"description": "when the shipping was recorded"})
    received_entered_at = fields.DateTime(allow_none=True,
                                          metadata={"description": "when the receipt or refusal was recorded"})
    parent_number = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    is_return = fields.Boolean(metadata={"description": "a refused load on its way back to its shipper"})
    lines = fields.List(fields.Nested(ManifestLineOut))
    discrepancy = fields.Boolean()
    created_at = fields.DateTime()
    created_by = fields.String()
    updated_at = fields.DateTime()
    history = fields.List(fields.Nested(ManifestEventOut))
    versions = fields.List(fields.Nested(ManifestVersionOut))
    follow_ons = fields.List(fields.String())


class ManifestQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    unit = fields.String(validate=validate.Length(max=40))
    code = fields.String(validate=validate.Length(max=32))
    from_ = schemas.Date(data_key="from")
    to = schemas.Date()
    region = fields.String(validate=validate.Length(max=32))
    party = fields.String(validate=validate.OneOf(["shipper", "carrier", "receiver"]),
                          metadata={"description": "enterprises: only where its units are this party"})
    format = fields.String(validate=validate.OneOf(["json", "csv", "xlsx"]), load_default="json")


class ManifestImportOut(Schema):
    created = fields.Integer()
    numbers = fields.List(fields.String())


def _filters(args: dict[str, Any]) -> ManifestFilter:
    return ManifestFilter(status=args.get("status"), unit=args.get("unit"), code=args.get("code"),
                          date_from=args.get("from_"), date_to=args.get("to"), region=args.get("region"),
                          party=args.get("party"))


@blp.route("", methods=["POST"])
@blp.arguments(ManifestIn)
@blp.response(201, ManifestOut)
@blp.alt_response(403, description="not the shipper")
@blp.doc(**schemas.links(201, "ManifestOut", "number", "number", "getManifest", "shipManifest", "receiveManifest",
                          "rejectManifest", "correctManifest"))
def create(data):
    """Create a manifest (the shipper, or an admin): a 14-digit number and status ``submitted``."""
    with deps.uow() as uow:
        return lifecycle.create(uow=uow, actor=deps.actor(), cmd=NewManifest.from_mapping(data)).as_dict()


@blp.route("", methods=["GET"])
@blp.arguments(ManifestQuery, location="query")
@blp.response(200, page_schema(ManifestOut, "ManifestPage"))
@blp.doc(responses={"200": {
    "description": "a page of manifests (JSON), or with format=csv|xlsx every matching line as a file",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ManifestPage"}},
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MIME: {"schema": {"type": "string", "format": "binary"}}}}})
def list_(args):
    """Manifests the caller may see; ``from``/``to`` bound the planned date; ``region`` either end's district or
    park. ``format=csv|xlsx`` exports every matching line instead of a page."""
    actor = deps.actor()
    if args["format"] in ("csv", "xlsx"):
        with deps.uow() as uow:
            rows = queries.export_rows(uow=uow, actor=actor, filters=_filters(args))
        return _export(rows, args["format"])
    with deps.uow() as uow:
        got = queries.search(uow=uow, actor=actor, filters=_filters(args), page=args["page"],
                             per_page=args["per_page"])
        return deps.page([m.as_dict() for m in got.items], got.total, args["page"], args["per_page"])


def _export(rows: list[dict[str, str | int]], fmt: str) -> Response:
    keys = [k for k, _ in EXPORT_COLUMNS]
    heads = [h for _, h in EXPORT_COLUMNS]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(heads)
        for r in rows:
            w.writerow([neutralise_cell_text(r[k]) for k in keys])
        return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=manifests.csv"})
    from openpyxl import Workbook

    from imports.writer import discard_temp_files, workbook_bytes

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("联单")
    try:
        ws.append(heads)
        for r in rows:
            ws.append([neutralise_cell_text(r[k]) for k in keys])
    except BaseException:
        discard_temp_files(wb)  # a write-only sheet has its temp file from the first row on
        raise
    return Response(workbook_bytes(wb), mimetype=XLSX_MIME,
                    headers={"Content-Disposition": "attachment; filename=manifests.xlsx"})


@blp.route(f"/{NUMBER}", methods=["GET"])
@blp.response(200, ManifestOut)
@blp.doc(operationId="getManifest")
def get(number: str):
    """One manifest with its history, versions and follow-on manifests."""
    with deps.uow() as uow:
        return queries.get(uow=uow, actor=deps.actor(), number=number).as_dict()


def _step(fn, number: str, cmd: Any):
    """One lifecycle step with its typed command; the typed result as the ``ManifestOut`` mapping."""
    with deps.uow() as uow:
        return fn(uow=uow, actor=deps.actor(), number=number, cmd=cmd).as_dict()


@blp.route(f"/{NUMBER}/ship", methods=["POST"])
@blp.arguments(ManifestShipIn)
@blp.response(200, ManifestOut)
@blp.doc(operationId="shipManifest")
@blp.alt_response(403, description="not the carrier")
@blp.alt_response(409, description="step out of order (names the current status)")
def ship(data, number: str):
    """The carrier (the shipper when none is named) picks up: vehicle, driver, time → ``in_transit``."""
    return _step(lifecycle.ship, number, Shipment.from_mapping(data))


@blp.route(f"/{NUMBER}/receive", methods=["POST"])
@blp.arguments(ManifestReceiveIn)
@blp.response(200, ManifestOut)
@blp.doc(operationId="receiveManifest")
@blp.alt_response(403, description="not the receiver")
@blp.alt_response(409, description="step out of order")
def receive(data, number: str):
    """The receiver confirms received quantity and method per line and the 接受日期 (``accepted_on``) →
    ``received``; discrepancies (a local setting: 5 % and 0.1 t) and 第十八条 mismatch kinds are recorded per line.
    A load returned to its shipper is received back into its storage (method ``S``)."""
    return _step(lifecycle.receive, number, Receipt.from_mapping(data))


@blp.route(f"/{NUMBER}/reject", methods=["POST"])
@blp.arguments(ManifestRejectIn)
@blp.response(200, ManifestOut)
@blp.doc(operationId="rejectManifest")
@blp.alt_response(403, description="not the receiver")
@blp.alt_response(409, description="step out of order")
def reject(data, number: str):
    """The receiver refuses all (``rejected``) or part (``partially_received``); a follow-on manifest carries the
    refused waste back to the shipper or to ``destination``."""
    return _step(lifecycle.reject, number, Rejection.from_mapping(data))


@blp.route(f"/{NUMBER}/correct", methods=["POST"])
@blp.arguments(ManifestCorrectIn)
@blp.response(200, ManifestOut)
@blp.doc(operationId="correctManifest")
@blp.alt_response(403, description="not the shipper")
@blp.alt_response(409, description="step out of order")
def correct(data, number: str):
    """The shipper corrects a manifest before it arrives: a new version; the old one is kept in ``versions``."""
    return _step(lifecycle.correct, number, Correction.from_mapping(data))


# --- bulk import (xlsx): read by imports.manifest_reader in the parse worker (imports.gate) ----------------


@blp.route("/import", methods=["POST"])
@blp.response(201, ManifestImportOut)
@blp.alt_response(403, description="regulators import nothing")
@blp.alt_response(413, schema=ErrorSchema, description="over a size limit (upload, rows, a cell beyond the sheet limits, "
                                                       "parse time or memory: `parse_timeout`, `parse_memory_exceeded`)")
@blp.alt_response(415, schema=ErrorSchema, description="not an .xlsx/.ods workbook nofei accepts (macro-enabled, encrypted, …)")
@blp.alt_response(422, description="every bad row pinned to its cell (sheet, row, column); `unreadable_file` when the "
                                   "parser fails on the file")
def import_(**_kw):
    """Bulk create from an xlsx (multipart field ``file`` or the raw body): columns 分组, 移出单位统一社会信用代码,
    接收单位统一社会信用代码, 承运单位统一社会信用代码, 计划转移日期, 废物代码, 数量（吨）, 包装方式, 拟利用处置方式.
    All or nothing."""
    actor = deps.actor()
    if actor.role == "regulator":  # creates nothing, so refused before the upload is read or parsed
        raise PermissionDenied("只有移出单位可导入联单 (only shippers import manifests)", code="not_a_shipper")
    limits = ReadLimits.from_settings(current_app.config)
    f = request.files.get("file")
    data = f.read(limits.max_upload_bytes + 1) if f is not None else request.get_data()
    items = gate.read_manifests(data, limits)
    cmds = [(NewManifest.from_mapping(i), dict(i.get("_refs") or {})) for i in items]
    with deps.uow() as uow:
        return lifecycle.import_manifests(uow=uow, actor=actor, items=cmds).as_dict()
