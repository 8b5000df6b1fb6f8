"""Interactive API docs at ``/api/docs``: Swagger UI served from the installed swagger-ui-bundle (no CDN)."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, send_from_directory

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
