"""One JSON error envelope under ``/api``: ``{code, status, message, errors: [...], request_id}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from nofei import errors as E  # noqa: N812
from nofei.problems import Problem
from nofei.storage import health as db

log = logging.getLogger("nofei.api")

STATUS: dict[type[E.NofeiError], int] = {
    E.Unauthenticated: 401,
    E.PermissionDenied: 403,
    E.NotFound: 404,
    E.Conflict: 409,
    E.TooLarge: 413,
    E.UnsupportedFile: 415,
    E.InputRejected: 422,
    E.Unavailable: 503,
}

HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              406: "not_acceptable", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
              422: "invalid_input", 429: "rate_limited", 500: "internal_error", 503: "unavailable"}


def envelope(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
    body = {"code": code, "status": status, "message": message, "errors": errors or [],
            "request_id": getattr(g, "request_id", None), **extra}
    resp = jsonify(body)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="nofei"'
    return resp


def status_for(exc: E.NofeiError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _webargs_errors(messages: Any) -> list[dict[str, Any]]:
    """Flatten webargs/marshmallow ``{location: {field: [msgs]}}`` into problem dicts naming the field."""
    out: list[dict[str, Any]] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, list) and node and all(isinstance(x, str) for x in node):
            for msg in node:
                out.append(Problem(code="invalid_field", message=f"字段 {prefix} 无效：{msg}", message_en=msg,
                                   field=prefix).to_dict())
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(f"{prefix}[{i}]", v)
        else:
            out.append(Problem(code="invalid_field", message=str(node), message_en=str(node), field=prefix).to_dict())

    for location, fields in (messages or {}).items():
        if isinstance(fields, dict):
            for k, v in fields.items():
                walk(str(k), v)
        else:
            walk(str(location), fields)
    return out


_PAGE_ERRORS = {404: ("未找到", "您访问的页面不存在，请检查网址。"), 405: ("不支持的操作", "该页面不支持此请求方式。"),
                400: ("请求有误", "请求无法处理，请返回后重试。"), 413: ("内容过大", "提交的内容超过上限。"),
                429: ("请求过于频繁", "请稍后再试。")}


def _page(exc: HTTPException, status: int) -> Any:
    """An HTTP error on a page, in Chinese in the site's layout (the API keeps its JSON envelope)."""
    from flask import make_response, render_template

    title, message = _PAGE_ERRORS.get(status, ("出错了", "请求无法完成。"))
    resp = make_response(render_template("error.html", status=status, title=title, message=message), status)
    for h in ("Allow", "Retry-After"):
        v = exc.get_response().headers.get(h)
        if v:
            resp.headers[h] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(E.NofeiError)
    def _nofei(exc: E.NofeiError):
        status = status_for(exc)
        warnings = getattr(exc, "warnings", None)  # a rejected workbook's warnings, shown with its errors
        extra = {"warnings": [p.to_dict() for p in warnings]} if warnings else {}
        return envelope(status, exc.code, exc.message, [p.to_dict() for p in exc.problems], **extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        if not request.path.startswith("/api"):
            return _page(exc, status)
        errors: list[dict[str, Any]] = []
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:
            errors = _webargs_errors(data["messages"])
        resp = envelope(status, HTTP_CODES.get(status, "error"), exc.description or exc.name, errors)
        for k, v in exc.get_headers():  # Allow on a 405, Retry-After, WWW-Authenticate…: not the HTML type
            if k.lower() != "content-type":
                resp.headers[k] = v
        return resp

    @app.errorhandler(db.Conflict)
    def _integrity(exc: Exception):
        # a constraint caught what a check missed (usually a concurrent duplicate): the client's request
        # conflicts with the current state, it is not the database being down
        log.warning("integrity error", exc_info=exc, extra={"request_id": getattr(g, "request_id", None)})
        return envelope(409, "conflict", "与当前数据冲突，请刷新后重试 (conflicts with the current state, retry)")

    def _db(exc: Exception):
        log.error("database error", exc_info=exc, extra={"request_id": getattr(g, "request_id", None)})
        return envelope(503, "unavailable", "数据库暂时不可用，请稍后重试 (database unavailable, retry later)")

    for cls in db.UNAVAILABLE:
        app.register_error_handler(cls, _db)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http(exc)
        log.exception("unhandled error", extra={"request_id": getattr(g, "request_id", None)})
        return envelope(500, "internal_error", "服务器内部错误，请凭 request_id 联系管理员 (internal error)")
