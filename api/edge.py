"""The request edge: what a client sends is refused here, in the one envelope, before any handler sees it.

* Text (path, query string, form fields, JSON keys and strings) may not hold NUL or other control
  characters (``nofei.text.refused_char``); tab and newlines only in multi-line fields. A stored
  control character used to break every xlsx export of its data, and PostgreSQL answers NUL with an
  error (a 503 before).
* JSON bodies are nested at most ``MAX_JSON_DEPTH`` deep (checked on the raw bytes, before parsing:
  1,000 levels made the parser recurse into a 500).
* Integer path ids are at most 2^31 - 1 (``IdConverter``; the id columns are INTEGER): larger ones are no id
  the database can hold,
  so they match no route (404) instead of overflowing the driver (500 on SQLite, 503 on PostgreSQL).
* A PATCH must say what to change: without a JSON body, or with ``{}``, it is a 422, not a no-op.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, Map

from nofei.errors import InputRejected
from nofei.problems import Problem
from nofei.text import describe_char, refused_char

MAX_ID = 2**31 - 1  # every id column is an INTEGER (int4 on PostgreSQL)
MAX_JSON_DEPTH = 32
MULTILINE_FIELDS = frozenset({"reason", "note", "message", "description", "detail", "comment"})
"""Fields whose text may span lines (tab, LF, CR allowed); every other field is one line."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


class IdConverter(IntegerConverter):
    """``<int:…>`` path ids bounded by what an id column holds (documented as the parameter's ``maximum``)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 - werkzeug's names
                 max: int | None = MAX_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


def _refuse(field: str, code: str, zh: str, en: str, value: Any = None) -> InputRejected:
    return InputRejected(f"{zh} ({en})", problems=[Problem(code=code, message=zh, message_en=en, field=field,
                                                           value=value)])


def check_text(field: str, value: str, *, multiline: bool = False) -> None:
    """Raise the 422 naming ``field`` when ``value`` holds a character text may not hold."""
    i = refused_char(value, multiline=multiline)
    if i is not None:
        ch = describe_char(value[i])
        raise _refuse(field, "control_character", f"字段 {field} 含有不允许的控制字符 {ch}（第 {i + 1} 个字符）",
                      f"field {field} contains the control character {ch} at position {i + 1}",
                      value[:i] + ch + value[i + 1:i + 20])


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays/objects deeper than ``limit`` (strings skipped)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    if len(brackets) <= 2 * limit:
        return False
    depth = 0
    for b in brackets:
        if b in (91, 123):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _walk(node: Any, path: str, multiline: bool) -> None:
    if isinstance(node, str):
        check_text(path or "body", node, multiline=multiline)
    elif isinstance(node, dict):
        for k, v in node.items():
            key = f"{path}.{k}" if path else str(k)
            check_text(key, str(k))
            _walk(v, key, str(k) in MULTILINE_FIELDS)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, f"{path}.{i}" if path else str(i), multiline)


def _declares_json_body(view: Any) -> bool:
    """Whether a flask-smorest view declares a JSON request body (``@blp.arguments(Schema)``)."""
    doc = getattr(view, "_apidoc", None) or {}
    return any(a.get("location", "json") == "json" for a in (doc.get("arguments") or {}).get("parameters", []))


def check_request() -> None:
    """The edge checks, in the order a request is read: path, query, form, JSON body."""
    check_text("path", request.path)
    for k, v in request.args.items(multi=True):
        check_text(k, k)
        check_text(k, v)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for k, v in request.form.items(multi=True):
            check_text(k, k)
            check_text(k, v, multiline=k in MULTILINE_FIELDS)
    view = current_app.view_functions.get(request.endpoint or "") if request.url_rule else None
    wants_body = request.method == "PATCH" and _declares_json_body(view)  # POST/PUT bodies have required fields
    if request.is_json:
        raw = request.get_data(cache=True)
        if raw.strip():
            if json_too_deep(raw):
                raise _refuse("body", "too_deep", f"JSON 嵌套超过 {MAX_JSON_DEPTH} 层",
                              f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            try:
                body = request.get_json()
            except BadRequest as e:
                raise _refuse("body", "bad_json", "请求体不是有效的 JSON", "the body is not valid JSON") from e
            _walk(body, "", False)
            if wants_body and body == {}:
                raise _refuse("body", "empty_patch", "请求体没有要修改的字段", "the body names no field to change")
            return
    if wants_body:
        raise _refuse("body", "missing_body", "缺少 JSON 请求体（Content-Type: application/json）",
                      "a JSON body (Content-Type: application/json) is required")


def init_app(app: Flask) -> None:
    """Register the edge checks (after authentication: an anonymous caller learns nothing from them)."""
    app.before_request(check_request)
