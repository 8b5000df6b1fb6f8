"""Bearer-token authentication: every ``/api/v1`` request but ``/health`` and the OpenAPI document.

The OpenAPI document is public on purpose: it is documentation, not data, and Swagger UI and
client generators must be able to read it without a token.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request

from api.errors import envelope
from nofei.storage.repo import actor_for_token

PUBLIC = {"/api/v1/health", "/api/v1/openapi.json"}


def bearer_token() -> str | None:
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return None


def resolve(token: str | None):
    if not token:
        return None
    with current_app.extensions["nofei.sessions"]() as s:
        return actor_for_token(s, token)


def init_app(app: Flask) -> None:
    @app.before_request
    def _authenticate():
        path = request.path
        if not path.startswith("/api/v1") or path in PUBLIC or request.method == "OPTIONS":
            return None
        token = bearer_token()
        a = resolve(token)
        if a is None:
            msg = "缺少访问令牌 (missing bearer token)" if not token else "访问令牌无效或已撤销 (invalid or revoked token)"
            return envelope(401, "unauthenticated", msg)
        g.actor = a
        return None
