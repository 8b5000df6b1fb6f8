"""The units registry (admin writes; reads by role) and API tokens and regional statistics."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps, schemas
from api.schemas import DecimalString, PageArgs, page_schema
from ledgers import registry
from nofei.access import ACTOR_ROLES
from nofei.domain.units import ROLES, UNIT_TYPES

_UNIT_TYPE_DOC = ("industrial 工业企业 (default) | social_source 社会源产生单位 | medical_institution 医疗卫生机构 | "
                  "licensed 持证经营单位. The hazardous indicators count industrial and licensed producers; social-source "
                  "hazardous waste is reported beside them; medical institutions count for the coverage rate")
_CLINIC_DOC = "a medical institution with ≤ 19 beds: its HW01 is exempt from the 联单 at 收集/运输 (豁免清单 item 2)"

blp = Blueprint("units", __name__, url_prefix="/api/v1", description="Units registry, tokens, statistics")


class PermitSchema(Schema):
    number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    waste_codes = fields.List(fields.String(validate=validate.Length(max=32)), load_default=list,
                              metadata={"description": "codes or HW categories (HW08)"})
    methods = fields.List(fields.String(validate=validate.Length(max=8), metadata={"enum": schemas.METHODS}),
                          load_default=list)
    capacity_t = DecimalString(load_default="0", high=10**9)
    valid_from = schemas.Date(allow_none=True, load_default=None)
    valid_to = schemas.Date(allow_none=True, load_default=None)


class UnitIn(Schema):
    credit_code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                                metadata={"pattern": schemas.CREDIT_CODE})
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    district = fields.String(required=True, validate=validate.Length(max=6), metadata={"enum": schemas.DISTRICTS})
    park = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=32),
                         metadata={"enum": schemas.PARKS, "description": "a park of the unit's district"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=list)
    reports_from = fields.String(allow_none=True, validate=validate.Regexp(r"^(19|20)\d\d-(0[1-9]|1[0-2])$"),
                                 metadata={"description": "YYYY-MM: the first month a monthly ledger is owed "
                                                          "(default: the month of registration)"})
    unit_type = fields.String(load_default="industrial", validate=validate.OneOf(UNIT_TYPES),
                              metadata={"description": _UNIT_TYPE_DOC})
    small_clinic = fields.Boolean(load_default=False, metadata={"description": _CLINIC_DOC})
    permits = fields.List(fields.Nested(PermitSchema), load_default=list)


class UnitPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    district = fields.String(validate=validate.Length(max=6), metadata={"enum": schemas.DISTRICTS})
    park = fields.String(allow_none=True, validate=validate.Length(max=32),
                         metadata={"enum": schemas.PARKS, "description": "a park of the unit's district"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)))
    reports_from = fields.String(allow_none=True, validate=validate.Regexp(r"^(19|20)\d\d-(0[1-9]|1[0-2])$"),
                                 metadata={"description": "YYYY-MM: the first month a monthly ledger is owed "
                                                          "(default: the month of registration)"})
    unit_type = fields.String(validate=validate.OneOf(UNIT_TYPES), metadata={"description": _UNIT_TYPE_DOC})
    small_clinic = fields.Boolean(metadata={"description": _CLINIC_DOC})
    permits = fields.List(fields.Nested(PermitSchema))


class UnitOut(Schema):
    credit_code = fields.String()
    name = fields.String()
    district = fields.String()
    park = fields.String(allow_none=True)
    roles = fields.List(fields.String())
    reports_from = fields.String(allow_none=True)
    unit_type = fields.String(metadata={"description": _UNIT_TYPE_DOC})
    small_clinic = fields.Boolean(metadata={"description": _CLINIC_DOC})
    permits = fields.List(fields.Nested(PermitSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class UnitQuery(PageArgs):
    district = fields.String(validate=validate.Length(max=32))
    role = fields.String(validate=validate.OneOf(ROLES))
    q = fields.String(validate=validate.Length(max=100))


class TokenIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ACTOR_ROLES))
    units = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list)
    district = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=6),
                             metadata={"enum": [schemas.REGIONS[0], *schemas.DISTRICTS]})
    name = fields.String(load_default="", validate=validate.Length(max=200))


class TokenOut(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    district = fields.String(allow_none=True)
    units = fields.List(fields.String())
    prefix = fields.String()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    token = fields.String(metadata={"description": "shown once, at creation"})


class StatisticIn(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=1990, max=2100))
    region = fields.String(required=True, validate=validate.Length(max=32), metadata={"enum": schemas.REGIONS})
    industrial_value_added = DecimalString(high=10**12, allow_none=True, metadata={
        "description": "工业增加值, 万元 (feeds general_industrial_intensity and industrial_solid_waste_intensity); "
                       "omitted = kept as entered before"})
    medical_institutions = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=10**7), metadata={
        "description": "医疗卫生机构总数 of the region and year (卫健委), the denominator of "
                       "medical_collection_coverage_rate; omitted = kept as entered before"})


class StatisticOut(Schema):
    year = fields.Integer()
    region = fields.String()
    industrial_value_added = fields.String(allow_none=True, metadata={"description": "工业增加值, 万元; null = not entered"})
    medical_institutions = fields.Integer(allow_none=True, metadata={"description": "医疗卫生机构总数; null = not entered"})


@blp.route("/units", methods=["GET"])
@blp.arguments(UnitQuery, location="query")
@blp.response(200, page_schema(UnitOut, "UnitPage"))
def list_units(args):
    """Units the caller may see: all (admin), its district (regulator), its own (enterprise)."""
    with deps.uow() as uow:
        items, total = registry.list_units(uow=uow, actor=deps.actor(), district=args.get("district"),
                                           role=args.get("role"), q=args.get("q"),
                                           page=args["page"], per_page=args["per_page"])
        return deps.page(items, total, args["page"], args["per_page"])


@blp.route("/units", methods=["POST"])
@blp.arguments(UnitIn)
@blp.response(201, UnitOut)
@blp.alt_response(409, description="duplicate credit code")
@blp.doc(**schemas.links(201, "UnitOut", "credit_code", "credit_code", "getUnit", "patchUnit"))
def create_unit(data):
    """Register a unit with its roles and permits (admin). 409 duplicate; 422 bad credit code or district."""
    with deps.uow() as uow:
        return registry.register_unit(uow=uow, actor=deps.actor(), data=data)


@blp.route("/units/<string:credit_code>", methods=["GET"])
@blp.response(200, UnitOut)
@blp.doc(operationId="getUnit")
def get_unit(credit_code: str):
    """One unit (404 also when the caller may not see it, so ids cannot be probed)."""
    with deps.uow() as uow:
        return registry.get_unit(uow=uow, actor=deps.actor(), credit_code=credit_code)


@blp.route("/units/<string:credit_code>", methods=["PATCH"])
@blp.arguments(UnitPatch)
@blp.response(200, UnitOut)
@blp.doc(operationId="patchUnit")
def patch_unit(data, credit_code: str):
    """Change a unit (admin)."""
    with deps.uow() as uow:
        return registry.update_unit(uow=uow, actor=deps.actor(), credit_code=credit_code, data=data)


@blp.route("/tokens", methods=["GET"])
@blp.response(200, TokenOut(many=True))
def list_tokens():
    """API tokens (admin); hashes are never shown."""
    with deps.uow() as uow:
        return registry.list_tokens(uow=uow, actor=deps.actor())


@blp.route("/tokens", methods=["POST"])
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
@blp.doc(**schemas.links(201, "TokenOut", "id", "token_id", "revokeToken"))
def create_token(data):
    """Issue a token (admin); the clear token is in the answer once and stored only hashed."""
    with deps.uow() as uow:
        t = registry.create_token(uow=uow, actor=deps.actor(), **data)
    return {"id": t.id, "token": t.token, "role": t.role, "name": t.name, "district": t.district, "units": t.units,
            "prefix": t.token[:10]}


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(operationId="revokeToken")
def revoke_token(token_id: int):
    """Revoke a token (admin)."""
    with deps.uow() as uow:
        registry.revoke_token(uow=uow, actor=deps.actor(), token_id=token_id)


@blp.route("/statistics", methods=["PUT"])
@blp.arguments(StatisticIn)
@blp.response(200, StatisticOut)
def put_statistic(data):
    """Statistics per region and year (admin): 工业增加值 (万元), feeding the two intensity indicators, and the
    number of 医疗卫生机构, feeding ``medical_collection_coverage_rate``. At least one of them; a field left out
    keeps its earlier value."""
    with deps.uow() as uow:
        return registry.put_statistic(uow=uow, actor=deps.actor(), **data)
