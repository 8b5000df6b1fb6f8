"""Server-rendered pages (Chinese) for clerks, regulators and admins: the browser face of the same use cases.

Sign-in is by API token, exchanged for a server-side session (``nofei.storage.websession``): the Flask
cookie (signed, HttpOnly, SameSite=Lax) carries only a random session id and the CSRF token, never the
API token; signing out or revoking the token ends the session. Each request turns the session into the
same ``Actor`` the API builds, so every page is bound by the API's authorisation rules: pages call the
same use-case functions, never a shortcut. After sign-in the browser goes back only to a same-origin
path (``safe_next``).
Every POST carries a per-session CSRF token; every page gets a Content-Security-Policy that allows
no script at all (charts are server-drawn SVG) and no resource from another origin.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from api.deps import app_uow
from nofei.access import Actor
from nofei.domain.calendar import to_cst
from nofei.errors import NofeiError
from nofei.storage.uow import UnitOfWork
from nofei.storage.websession import actor_for_session

bp = Blueprint("web", __name__, template_folder="templates")

PAGE_CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PUBLIC_ENDPOINTS = {"web.login", "web.stylesheet"}
ROLE_ZH = {"admin": "管理员", "regulator": "监管部门", "enterprise": "企业"}


def uow() -> UnitOfWork:
    """A unit of work on the app's database (as ``api.deps.uow``), for page handlers."""
    return app_uow(current_app, getattr(g, "request_id", ""))


def actor() -> Actor:
    a = getattr(g, "web_actor", None)
    if a is None:  # unreachable past the before_request guard, kept as a safety net
        abort(401)
    return a


def csrf_token() -> str:
    tok = session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(32)
        session["csrf"] = tok
    return tok


def require_roles(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Page-level guard: the role must be one of ``roles`` (403 page otherwise). Data rules stay in the use cases."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            if actor().role not in roles:
                raise_forbidden()
            return fn(*a, **kw)

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return deco


def raise_forbidden() -> None:
    from nofei.errors import PermissionDenied

    raise PermissionDenied("您的角色无权访问此页面")


@bp.before_request
def _guard() -> Any:
    """Resolve the session's token to an Actor; check CSRF on every state-changing request."""
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            return render_template("error.html", status=400, title="请求已失效",
                                   message="表单校验失败（CSRF）。请刷新页面后重试。"), 400
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    sid = session.get("sid")
    a = None
    if isinstance(sid, str) and sid:
        with current_app.extensions["nofei.sessions"]() as s:
            a = actor_for_session(s, sid)
    if a is None:
        session.pop("sid", None)
        nxt = safe_next(request.full_path) if request.method == "GET" else None
        return redirect(url_for("web.login", next=nxt))
    g.web_actor = a
    return None


def safe_next(raw: str | None) -> str | None:
    """``raw`` when it is a path on this site, else None (issue 17 item 9: an open redirect).

    Browsers drop tab/CR/LF inside URLs and read ``\\`` as ``/``, so ``/%09/evil.example`` (a tab) becomes
    ``//evil.example``, another host. Refused: any control character, whitespace or backslash (also once
    percent-decoded), anything not starting with exactly one ``/``, and anything with a scheme or host."""
    from urllib.parse import unquote, urlsplit

    if not raw or len(raw) > 2000:
        return None
    for s in (raw, unquote(raw)):
        if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" or ch.isspace() for ch in s):
            return None
        if not s.startswith("/") or s.startswith("//"):
            return None
        parts = urlsplit(s)
        if parts.scheme or parts.netloc:
            return None
    return raw.removesuffix("?") or None


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.errorhandler(NofeiError)
def _nofei_error(exc: NofeiError) -> Any:
    from api.errors import status_for

    status = status_for(exc)
    title = {403: "无权访问", 404: "未找到", 409: "状态冲突", 413: "文件过大", 415: "文件类型不支持",
             422: "输入有误", 503: "服务暂不可用"}.get(status, "出错了")
    return render_template("error.html", status=status, title=title, message=exc.message,
                           problems=[p.to_dict() for p in exc.problems]), status


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    a = getattr(g, "web_actor", None)
    from nofei.catalogue import STREAM_NAMES_ZH

    return {"me": a, "role_zh": ROLE_ZH, "stream_zh": STREAM_NAMES_ZH,
            "csrf_token": csrf_token if request.blueprint == "web" else (lambda: "")}


@bp.app_template_filter("when")
def when(v: Any) -> str:
    """A timestamp as a clerk reads it, in China Standard Time (UTC+8, no DST): ``2025-03-07 14:05``."""
    from datetime import datetime

    if v is None or v == "":
        return ""
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            return v
    if not isinstance(v, datetime):
        return str(v)
    return to_cst(v).strftime("%Y-%m-%d %H:%M")  # stored naive values are UTC


def init_app(app: Flask) -> None:
    """Register the pages (called by ``create_app``)."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_NAME"] = "nofei_session"
    from api.web import views  # noqa: F401 - registers the routes on ``bp``

    app.register_blueprint(bp)
