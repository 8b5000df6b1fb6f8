"""Liveness and readiness."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from nofei import __version__
from nofei.storage.health import ping

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Service health (no token needed)")


class HealthSchema(Schema):
    status = fields.String()
    version = fields.String()
    database = fields.String()


@blp.route("/health")
@blp.doc(security=[])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema)
def health():
    """Health: 200 with ``status: ok`` when the database answers."""
    engine = current_app.extensions["nofei.engine"]
    if ping(engine):
        return {"status": "ok", "version": __version__, "database": engine.dialect.name}
    return {"status": "unavailable", "version": __version__, "database": engine.dialect.name}, 503
