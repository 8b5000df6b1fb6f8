"""Request rate limits: fixed one-minute windows, counted where every thread and process of the service sees
them (``nofei.storage.ratelimit``: the database on PostgreSQL, a sidecar file beside a SQLite database).

On by default (issue 17 item 11): ``RATE_LIMIT_PER_MINUTE`` (env ``NOFEI_RATE_LIMIT_PER_MINUTE``, default 1200,
0 = off) for the API, ``LOGIN_RATE_LIMIT_PER_MINUTE`` (default 10, 0 = off) for sign-in attempts on ``/login``.
Over a limit the API answers 429 in the error envelope with ``Retry-After`` (seconds to the next window); the
sign-in page answers 429 with ``Retry-After`` too, as a page.

- A request with a bearer token counts against that token (keyed by its SHA-256, never the clear text).
- A request without one counts against the client address.
- A request whose token turns out invalid (401) also counts against the client address, and a
  bearer request from an address over its limit is refused before the token is looked up: guessing
  tokens is throttled like any anonymous traffic, and rotating made-up tokens does not escape it.
- A sign-in attempt counts against the client address and against the token's visible prefix (its first
  12 characters, the ``prefix`` the token list shows), so neither one address nor many can try more than
  the limit a minute against one token.
- ``/api/v1/health`` is never limited (load balancers and monitors poll it).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, g, request

from api.errors import envelope
from nofei.storage.ratelimit import Counter, MemoryCounter, shared_counter

EXEMPT = {"/api/v1/health"}
WINDOW_SECONDS = 60
LOGIN_PREFIX_CHARS = 12


class FixedWindowLimiter:
    """Counts hits per key in fixed windows of ``window`` seconds of wall-clock time (the same windows in
    every process) in a shared ``Counter``."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time,
                 store: Counter | None = None) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.store: Counter = store if store is not None else MemoryCounter()

    def _now_window(self) -> tuple[int, float]:
        now = self.clock()
        n = int(now // self.window)
        return n, (n + 1) * self.window - now

    def hit(self, key: str, cost: int = 1) -> float | None:
        """Count one request; None when allowed, else the seconds until the key may retry."""
        n, left = self._now_window()
        return left if self.store.incr(key, n, cost) > self.limit else None

    def exhausted(self, key: str) -> float | None:
        """Like ``hit`` without counting: seconds to wait when the key is already at its limit."""
        n, left = self._now_window()
        return left if self.store.get(key, n) >= self.limit else None


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def _too_many(wait: float) -> Response:
    resp = envelope(429, "rate_limited", "请求过于频繁，请稍后再试 (too many requests, retry later)")
    resp.headers["Retry-After"] = retry_after(wait)
    return resp


def client_key() -> str:
    return "ip:" + (request.remote_addr or "-")


def login_wait(token: str) -> float | None:
    """Count one sign-in attempt (address and token prefix); seconds to wait when over the limit, else None."""
    lim: FixedWindowLimiter | None = current_app.extensions.get("nofei.ratelimit.login")
    if lim is None:
        return None
    waits = [lim.hit("login-" + client_key())]
    if token:
        waits.append(lim.hit("login-tok:" + hashlib.sha256(token[:LOGIN_PREFIX_CHARS].encode("utf-8")).hexdigest()))
    late = [w for w in waits if w is not None]
    return max(late) if late else None


def init_app(app: Flask) -> None:
    """Install the limiters; call before ``auth.init_app`` so that it also sees requests auth refuses."""
    limit = int(app.config.get("RATE_LIMIT_PER_MINUTE") or 0)
    login_limit = int(app.config.get("LOGIN_RATE_LIMIT_PER_MINUTE") or 0)
    if limit <= 0 and login_limit <= 0:
        return
    store, side = shared_counter(app.extensions["nofei.engine"])
    if side is not None:
        app.extensions["nofei.ratelimit.engine"] = side
    if login_limit > 0:
        app.extensions["nofei.ratelimit.login"] = FixedWindowLimiter(login_limit, store=store)
    if limit <= 0:
        return
    app.extensions["nofei.ratelimit"] = FixedWindowLimiter(limit, store=store)

    from api.auth import PUBLIC, bearer_token

    @app.before_request
    def _limit() -> Response | None:
        path = request.path
        if not path.startswith("/api/") or path in EXEMPT or request.method == "OPTIONS":
            return None
        lim: FixedWindowLimiter = current_app.extensions["nofei.ratelimit"]
        token = bearer_token() if path not in PUBLIC else None
        if token:
            wait = lim.exhausted(client_key())  # this address has been guessing tokens
            if wait is None:
                wait = lim.hit("tok:" + hashlib.sha256(token.encode("utf-8")).hexdigest())
            g.ratelimit_token = True
        else:
            wait = lim.hit(client_key())
        return _too_many(wait) if wait is not None else None

    @app.after_request
    def _charge_failed_auth(resp: Response) -> Response:
        if resp.status_code == 401 and getattr(g, "ratelimit_token", False):
            current_app.extensions["nofei.ratelimit"].hit(client_key())
        return resp
