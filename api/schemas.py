"""Marshmallow schemas shared across resources (the HTTP edge only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate


class ProblemSchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.String(metadata={"description": "Chinese message"})
    message_en = fields.String()
    sheet = fields.String(allow_none=True)
    row = fields.Integer(allow_none=True)
    column = fields.String(allow_none=True, metadata={"description": "column letter"})
    header = fields.String(allow_none=True)
    value = fields.Raw(allow_none=True)
    field = fields.String(allow_none=True, metadata={"description": "JSON field, for API bodies"})
    severity = fields.String()


class ErrorSchema(Schema):
    """The one error envelope under /api."""

    code = fields.String(required=True)
    status = fields.Integer(required=True)
    message = fields.String(required=True)
    errors = fields.List(fields.Nested(ProblemSchema), required=True)
    request_id = fields.String(allow_none=True)
    warnings = fields.List(fields.Nested(ProblemSchema), metadata={
        "description": "a rejected ledger workbook: its warnings too (e.g. a 联单编号 that is not 14 digits), so "
                       "that fixing the errors does not store them unseen"})


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))


def page_schema(item: type[Schema] | Schema, name: str) -> type[Schema]:
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item)),
        "total": fields.Integer(), "page": fields.Integer(), "per_page": fields.Integer(),
    }, name=name)


def _decimal_range(low: int | float, high: int | float):
    from decimal import Decimal

    lo, hi = Decimal(str(low)), Decimal(str(high))

    def check(v: Decimal) -> None:
        if not (lo <= v <= hi):
            raise ValidationError(f"must be between {lo} and {hi}")

    return check


class DecimalString(fields.Decimal):
    """An exact decimal that travels as a JSON string (``"1200.5"``), documented as such.

    ``fields.Decimal(as_string=True)`` with ``validate.Range`` is documented by apispec as
    ``type: number`` with string-valued ``minimum``/``maximum``: an invalid schema, and one the answers
    (strings) break. Numbers are still accepted on input."""

    def __init__(self, *, low: int | float = 0, high: int | float = 10**12, **kw):
        md = {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$",
              "description": f"a decimal number as a string, {low} to {high}", **kw.pop("metadata", {})}
        super().__init__(as_string=True, validate=_decimal_range(low, high), metadata=md, **kw)


DATE_MIN = date(1990, 1, 1)
DATE_MAX = date(2100, 12, 31)
_WINDOW = f"between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}"


def _in_window(v: date | datetime) -> None:
    d = v.date() if isinstance(v, datetime) else v
    if not (DATE_MIN <= d <= DATE_MAX):
        raise ValidationError(f"must be {_WINDOW}")


class Date(fields.Date):
    """A calendar date inside nofei's window (1990-01-01..2100-12-31): no ledger, manifest or permit lies
    outside it, and a year 1 date overflowed the date arithmetic behind it (a 500 before)."""

    def __init__(self, **kw: Any) -> None:
        md = {"description": f"a date (YYYY-MM-DD) {_WINDOW}", **kw.pop("metadata", {})}
        super().__init__(validate=_in_window, metadata=md, **kw)


class AwareDateTime(fields.AwareDateTime):
    """A time with a zone (``default_timezone`` when none is given), its date inside the same window."""

    def __init__(self, **kw: Any) -> None:
        extra = kw.pop("metadata", {})
        md = {**extra, "description": f"{extra.get('description', 'a date-time')} (ISO 8601; {_WINDOW})"}
        super().__init__(validate=_in_window, metadata=md, **kw)


def _codes() -> tuple[list[str], list[str], list[str], list[str]]:
    from nofei.catalogue import CITY, Catalogue

    cat = Catalogue.default()
    districts = sorted(d for d in cat.districts if d != CITY)
    return districts, sorted(cat.parks), [CITY, *districts, *sorted(cat.parks)], [m.code for m in cat.method_list()]


DISTRICTS, PARKS, REGIONS, METHODS = _codes()
"""The catalogue's codes, stated as ``enum`` in the OpenAPI where the code refuses others (422)."""
CREDIT_CODE = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
"""GB 32100-2015's alphabet (the check digit is verified too, which a pattern cannot say)."""


def links(status: int, schema: str, field: str, param: str, *operation_ids: str,
          description: str = "Created") -> dict[str, Any]:
    """``@blp.doc(**links(...))``: the created response (``schema``, a component name) with OpenAPI links
    to the operations on the new resource (what generated clients and schemathesis' stateful phase follow).
    The whole response is given: flask-smorest's ``doc`` replaces the one ``@blp.response`` made."""
    return {"responses": {str(status): {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        "links": {op: {"operationId": op, "parameters": {param: f"$response.body#/{field}"}} for op in operation_ids}}}}
