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


class StreamArgs(Schema):
    stream = fields.String(validate=validate.OneOf(STREAMS))


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
    """Waste codes of the catalogue (package data plus codes an admin loaded), optionally of one stream."""
    deps.actor()
    with deps.uow() as uow:
        return [{"code": c.code, "name_zh": c.name_zh, "stream": c.stream, "stream_zh": STREAM_NAMES_ZH[c.stream],
                 "category": c.category, "source": c.source} for c in uow.catalogue.waste_codes(args.get("stream"))]


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
