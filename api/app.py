"""The Flask application factory. Nothing is created at import time."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api

from api.config import audit_key, load_settings
from api.errors import register_error_handlers
from nofei import __version__
from nofei.catalogue import Catalogue
from nofei.domain.rules import Rules
from nofei.storage import audit
from nofei.storage.engine import make_engine, make_session_factory
from nofei.storage.migrate import upgrade

_REQ_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JsonFormatter(logging.Formatter):
    """Structured log lines: JSON with the request id; never the Authorization header."""

    def format(self, record: logging.LogRecord) -> str:
        d = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
             "message": record.getMessage(), "request_id": getattr(record, "request_id", None)}
        for k in ("method", "path", "status", "ms", "actor"):
            if hasattr(record, k):
                d[k] = getattr(record, k)
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, ensure_ascii=False)


class NofeiApi(Api):
    """flask-smorest Api whose documented default error is nofei's envelope."""

    def __init__(self, app: Flask) -> None:
        from api.schemas import ErrorSchema

        self.ERROR_SCHEMA = ErrorSchema
        super().__init__(app, spec_kwargs={
            "info": {"description": "nofei (无废) — material-flow ledger of a zero-waste city. "
                                    "Every /api/v1 endpoint but /health needs `Authorization: Bearer <token>`."},
        })
        self.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
        self.spec.options["security"] = [{"bearer": []}]


def create_app(settings: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, engine, migrations, OpenAPI, blueprints, auth, error envelope."""
    cfg = load_settings(settings)
    app = Flask(__name__)
    app.config.update(cfg)
    app.config.update(
        API_TITLE="nofei", API_VERSION=__version__, OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="v1/openapi.json",
        MAX_CONTENT_LENGTH=int(cfg["MAX_UPLOAD_BYTES"]) + 64 * 1024,
        JSON_SORT_KEYS=False,
    )
    if not app.config.get("SECRET_KEY"):
        import secrets

        app.config["SECRET_KEY"] = secrets.token_hex(32)
    if isinstance(app.json, DefaultJSONProvider):
        app.json.ensure_ascii = False

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    nlog = logging.getLogger("nofei")
    if not nlog.handlers:
        nlog.addHandler(handler)
    nlog.setLevel(cfg.get("LOG_LEVEL", "INFO"))
    nlog.propagate = False  # one structured line per event, not a second plain copy via the root logger

    engine = make_engine(cfg["DATABASE_URL"])
    audit.register_key(engine.url, audit_key(cfg))
    if cfg.get("AUTO_MIGRATE", True):
        upgrade(engine)
    app.extensions["nofei.engine"] = engine
    app.extensions["nofei.sessions"] = make_session_factory(engine)
    app.extensions["nofei.catalogue"] = Catalogue.default(c1_class=cfg.get("C1_CLASS", "disposal"))
    app.extensions["nofei.rules"] = Rules.from_settings(cfg)  # once: a bad NOFEI_* value stops the start-up

    from api import edge

    app.url_map.converters["int"] = edge.IdConverter  # before any route is made: ids fit an id column
    api = NofeiApi(app)
    from api import docs

    docs.document_edge_rules(api)  # before the blueprints: their schemas and paths are documented on registration
    app.extensions["nofei.api"] = api
    from api import resources, web

    for module in resources.ALL:
        api.register_blueprint(module.blp)
    web.init_app(app)
    @app.before_request
    def _request_id() -> None:
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if _REQ_ID.match(rid) else uuid.uuid4().hex
        g.t0 = time.perf_counter()

    from api import auth, ratelimit

    docs.init_app(app)
    ratelimit.init_app(app)  # before auth, so that refused tokens count too
    auth.init_app(app)
    edge.init_app(app)  # after auth: text, JSON depth and body checks on authenticated requests
    register_error_handlers(app)

    @app.after_request
    def _headers(resp):
        resp.headers["X-Request-ID"] = getattr(g, "request_id", "")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        resp.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith("/api/v1"):
            resp.headers.setdefault("Cache-Control", "no-store")
        nlog.info("request", extra={"request_id": getattr(g, "request_id", None), "method": request.method,
                                    "path": request.path, "status": resp.status_code,
                                    "ms": round((time.perf_counter() - getattr(g, "t0", time.perf_counter())) * 1000, 1)})
        return resp

    return app
