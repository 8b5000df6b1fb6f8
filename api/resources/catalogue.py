"""The code catalogue: waste codes by stream, method codes, districts and parks."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api import deps
from nofei.catalogue import STREAM_NAMES_ZH, STREAMS

blp = Blueprint("catalogue", __name__, url_prefix="/api/v1/catalogue", description="Code lists (废物代码、方式代码、区县)")


class WasteCodeSchema(Schema):
    code = fields.String()
    name_zh = fields.String()
    stream = fields.String()
    stream_zh = fields.String()
    category = fields.String(allow_none=True)
    source = fields.String()
    hazard = fields.String(allow_none=True, metadata={
        "description": "危险特性 verbatim from the 名录 (\"，\": the first is certain, the others possible; \"/\": one or "
                       "more of those listed); null for codes that are not hazardous"})
    edition = fields.Integer(allow_none=True, metadata={
        "description": "the 国家危险废物名录 edition of a hazardous or medical code (2021 = in force from 2021-01-01); "
                       "null for general-industrial and local codes"})


class StreamArgs(Schema):
    stream = fields.String(validate=validate.OneOf(STREAMS))
    year = fields.Integer(validate=validate.Range(min=1990, max=2100), metadata={
        "description": "list the hazardous codes of the 名录 edition in force in this year (default: the newest loaded)"})


class MethodSchema(Schema):
    code = fields.String()
    name_zh = fields.String()
    method_class = fields.String(data_key="class")
    note = fields.String()


class DistrictSchema(Schema):
    code = fields.String()
    name_zh = fields.String()
    kind = fields.String()
    district = fields.String(allow_none=True)


@blp.route("/waste-codes")
@blp.arguments(StreamArgs, location="query")
@blp.response(200, WasteCodeSchema(many=True))
def waste_codes(args):
    """Waste codes of the catalogue, optionally of one stream: the complete 名录 (467 codes of the 2021 edition)
    with official names and 危险特性, the general-industrial and local codes, and codes an admin loaded."""
    deps.actor()
    with deps.uow() as uow:
        cat = uow.catalogue if args.get("year") is None else uow.catalogue.for_year(args["year"])
        return [{"code": c.code, "name_zh": c.name_zh, "stream": c.stream, "stream_zh": STREAM_NAMES_ZH[c.stream],
                 "category": c.category, "source": c.source, "hazard": c.hazard or None,
                 "edition": c.edition if c.stream in ("hazardous", "medical") else None}
                for c in cat.waste_codes(args.get("stream"))]


@blp.route("/methods")
@blp.response(200, MethodSchema(many=True))
def methods():
    """Utilisation (R, C2, C3) and disposal (D, Y) method codes; C1's class is a setting."""
    deps.actor()
    with deps.uow() as uow:
        return uow.catalogue.method_list()


@blp.route("/districts")
@blp.response(200, DistrictSchema(many=True))
def districts():
    """The city, its districts and counties, and the industrial parks (kind ``park``)."""
    deps.actor()
    with deps.uow() as uow:
        cat = uow.catalogue
        out = [{"code": d.code, "name_zh": d.name_zh, "kind": d.kind, "district": None} for d in cat.districts.values()]
        out += [{"code": p.code, "name_zh": p.name_zh, "kind": "park", "district": p.district} for p in cat.parks.values()]
        return out
