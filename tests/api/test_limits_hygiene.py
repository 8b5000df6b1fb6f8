"""Limits and hygiene: rate limit (per token, per address), request size, security headers, request ids
on 500 answers, tokens stored hashed, and no secret in the logs."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets

import pytest
from sqlalchemy import select

from api import create_app
from api.app import JsonFormatter
from nofei.storage.tables import TokenRow
from tests.factories import unit_payload


@pytest.fixture
def limited(settings):
    """An app limited to 5 requests a minute, with a clock the test moves."""
    app = create_app({**settings, "RATE_LIMIT_PER_MINUTE": 5})
    lim = app.extensions["nofei.ratelimit"]
    now = [60.0 * 20_000]  # the start of a window
    lim.clock = lambda: now[0]
    yield app, now
    app.extensions["nofei.engine"].dispose()


def make_token(app, role="admin", **kw) -> dict[str, str]:
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.uow import UnitOfWork

    with UnitOfWork(app.extensions["nofei.sessions"]) as uow:
        t = registry.create_token(uow=uow, actor=SYSTEM, role=role, **kw)
    return {"Authorization": f"Bearer {t.token}"}


def test_rate_limit_is_on_by_default(database_url):
    """Issue 17 item 11: the limiter used to be off unless configured."""
    from api.config import load_settings

    defaults = load_settings(env=False)
    assert defaults["RATE_LIMIT_PER_MINUTE"] == 1200 and defaults["LOGIN_RATE_LIMIT_PER_MINUTE"] == 10
    app = create_app({**defaults, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"})
    assert app.extensions["nofei.ratelimit"].limit == 1200 and app.extensions["nofei.ratelimit.login"].limit == 10
    app.extensions["nofei.engine"].dispose()


def test_rate_limit_can_be_turned_off(settings):
    app = create_app({**settings, "RATE_LIMIT_PER_MINUTE": 0, "LOGIN_RATE_LIMIT_PER_MINUTE": 0})
    assert "nofei.ratelimit" not in app.extensions and "nofei.ratelimit.login" not in app.extensions
    admin = make_token(app)
    c = app.test_client()
    assert all(c.get("/api/v1/catalogue/methods", headers=admin).status_code == 200 for _ in range(80))
    app.extensions["nofei.engine"].dispose()


def test_rate_limit_per_token_answers_429_in_the_envelope_until_the_next_window(limited):
    app, now = limited
    c = app.test_client()
    a, b = make_token(app), make_token(app)
    assert [c.get("/api/v1/units", headers=a).status_code for _ in range(5)] == [200] * 5
    now[0] += 30  # 30 s into the 60 s window
    r = c.get("/api/v1/units", headers={**a, "X-Request-ID": "rl-1"})
    assert r.status_code == 429
    assert r.json["code"] == "rate_limited" and r.json["status"] == 429 and r.json["request_id"] == "rl-1"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert c.get("/api/v1/units", headers=b).status_code == 200  # another token has its own budget
    assert c.get("/api/v1/health").status_code == 200  # monitors are never limited
    now[0] += int(r.headers["Retry-After"])
    assert c.get("/api/v1/units", headers=a).status_code == 200


def test_rate_limit_without_token_is_per_address(limited):
    app, _ = limited
    c = app.test_client()
    here, there = {"REMOTE_ADDR": "10.0.0.1"}, {"REMOTE_ADDR": "10.0.0.2"}
    codes = [c.get("/api/v1/openapi.json", environ_base=here).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert c.get("/api/v1/openapi.json", environ_base=there).status_code == 200


def test_guessing_tokens_is_throttled_per_address_even_with_fresh_guesses(limited):
    app, _ = limited
    c = app.test_client()
    good = make_token(app)
    guesser = {"REMOTE_ADDR": "10.0.0.9"}
    codes = [c.get("/api/v1/units", headers={"Authorization": f"Bearer nf_{secrets.token_urlsafe(32)}"},
                   environ_base=guesser).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # a real token from another address is untouched
    assert c.get("/api/v1/units", headers=good, environ_base={"REMOTE_ADDR": "10.0.0.10"}).status_code == 200


def test_oversized_request_is_413_in_the_envelope(settings):
    app = create_app({**settings, "MAX_UPLOAD_BYTES": 1024})
    try:
        c = app.test_client()
        h = make_token(app)
        body = {**unit_payload(), "name": "x" * 200_000}
        r = c.post("/api/v1/units", data=json.dumps(body), content_type="application/json", headers=h)
        assert r.status_code == 413 and r.json["code"] == "too_large" and r.json["request_id"]
    finally:
        app.extensions["nofei.engine"].dispose()


@pytest.mark.parametrize("path,auth", [("/api/v1/units", True), ("/api/v1/units", False), ("/api/v1/nope", True),
                                       ("/api/v1/health", False), ("/api/v1/openapi.json", False)])
def test_security_headers_on_every_answer(client, admin, path, auth):
    r = client.get(path, headers=admin if auth else {})
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert len(r.headers["X-Request-ID"]) >= 8
    assert r.headers["Cache-Control"] == "no-store"
    assert r.mimetype == "application/json"


def test_a_hostile_request_id_is_replaced(client):
    r = client.get("/api/v1/health", headers={"X-Request-ID": "b<script>" + "x" * 100})
    assert r.headers["X-Request-ID"] != "" and "<" not in r.headers["X-Request-ID"]


@pytest.fixture
def log_lines():
    """Everything the ``nofei`` loggers write, formatted as in production."""
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(JsonFormatter())
    logger = logging.getLogger("nofei")
    logger.addHandler(h)
    yield buf
    logger.removeHandler(h)


def test_unexpected_fault_is_500_with_the_request_id_that_the_log_carries(settings, log_lines):
    app = create_app({**settings, "LOG_LEVEL": "INFO"})

    def boom():
        raise RuntimeError("kaput")

    app.add_url_rule("/api/v1/_boom", view_func=boom)
    try:
        h = make_token(app)
        r = app.test_client().get("/api/v1/_boom", headers={**h, "X-Request-ID": "req-500-x"})
        assert r.status_code == 500
        assert r.json == {"code": "internal_error", "status": 500, "message": r.json["message"], "errors": [],
                          "request_id": "req-500-x"}
        assert "kaput" not in r.get_data(as_text=True)  # no internals in the answer
        records = [json.loads(x) for x in log_lines.getvalue().splitlines()]
        fault = [x for x in records if x["message"] == "unhandled error"]
        assert fault and fault[0]["request_id"] == "req-500-x" and "kaput" in fault[0]["exc"]
        assert any(x.get("status") == 500 and x["request_id"] == "req-500-x" for x in records)
    finally:
        app.extensions["nofei.engine"].dispose()


def test_no_token_or_authorization_header_in_logs(settings, log_lines, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app({**settings, "LOG_LEVEL": "DEBUG"})
    try:
        c = app.test_client()
        admin = make_token(app)
        r = c.post("/api/v1/tokens", json={"role": "regulator", "district": "630104"}, headers=admin)
        new = r.json["token"]
        c.get("/api/v1/units", headers={"Authorization": f"Bearer {new}"})
        c.get("/api/v1/units", headers={"Authorization": "Bearer nf_wrong-guess-123456"})
        c.post("/api/v1/units", json={"credit_code": "x"}, headers=admin)  # a 422 is logged too
        written = log_lines.getvalue() + "\n".join(rec.getMessage() + str(rec.__dict__) for rec in caplog.records)
        assert '"status": 201' in log_lines.getvalue()  # the log did capture the requests
        for secret in (admin["Authorization"][7:], new, "nf_wrong-guess-123456", hashlib.sha256(new.encode()).hexdigest()):
            assert secret not in written
        assert "Bearer" not in written and "Authorization" not in written
    finally:
        app.extensions["nofei.engine"].dispose()


def test_tokens_are_stored_only_hashed(app, client, admin):
    t = client.post("/api/v1/tokens", json={"role": "regulator", "district": "630104"}, headers=admin).json["token"]
    with app.extensions["nofei.sessions"]() as s:
        rows = s.execute(select(TokenRow)).scalars().all()
    stored = json.dumps([r.model_dump() for r in rows], default=str)
    assert t not in stored and t[10:] not in stored
    assert hashlib.sha256(t.encode()).hexdigest() in stored
