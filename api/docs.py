"""Interactive API docs at ``/api/docs``: Swagger UI served from the installed swagger-ui-bundle (no CDN)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, send_from_directory
from marshmallow import fields
from werkzeug.routing import UnicodeConverter

SINGLE_LINE = r"^[^\u0000-\u001f\u007f-\u009f\ud800-\udfff\ufffe\uffff]*$"
MULTI_LINE = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ud800-\udfff\ufffe\uffff]*$"
"""The edge's text rule as a regular expression (ECMA 262 and Python ``re`` both read ``\\uXXXX``)."""


def document_edge_rules(api: Any) -> None:
    """State in the OpenAPI what ``api.edge`` enforces on every text: no control characters (a ``pattern``
    on each free string field, parameter and path segment; tab/newlines only in multi-line fields), so
    that generated clients and schemathesis' positive phase send what the server accepts."""
    from api.edge import MULTILINE_FIELDS

    def text_pattern(_converter: Any, field: fields.Field, ret: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if not isinstance(field, fields.String) or ret.get("type") != "string":
            return {}
        if any(k in ret for k in ("enum", "pattern", "format")) or field.dump_only:
            return {}
        name = field.data_key or field.name or ""
        return {"pattern": MULTI_LINE if name in MULTILINE_FIELDS else SINGLE_LINE}

    api.ma_plugin.converter.add_attribute_function(text_pattern)

    def path_segment(converter: UnicodeConverter) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "pattern": "^[^/" + SINGLE_LINE[3:]}
        bounds = converter.regex  # [^/]{1,} or [^/]{14}
        if bounds.startswith("[^/]{") and bounds.endswith("}"):
            lo, _, hi = bounds[5:-1].partition(",")
            schema["minLength"] = int(lo or 1)
            if hi or not _:
                schema["maxLength"] = int(hi or lo)
        return schema

    api.register_converter(UnicodeConverter, path_segment)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>nofei API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#ui"});</script></body></html>"""


def init_app(app: Flask) -> None:
    from swagger_ui_bundle import swagger_ui_path

    bp = Blueprint("apidocs", __name__)

    @bp.get("/api/docs")
    def docs() -> Response:
        resp = Response(PAGE, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
        return resp

    @bp.get("/api/docs/static/<path:name>")
    def static(name: str) -> Response:
        return send_from_directory(swagger_ui_path, name)

    app.register_blueprint(bp)
