"""Request rate limit: a fixed one-minute window per token, or per client address without a token.

Off unless ``RATE_LIMIT_PER_MINUTE`` (env ``NOFEI_RATE_LIMIT_PER_MINUTE``) is above 0. Over the limit the
answer is 429 in the error envelope with ``Retry-After`` (seconds to the next window).

- A request with a bearer token counts against that token (keyed by its SHA-256, never the clear text).
- A request without one counts against the client address.
- A request whose token turns out invalid (401) also counts against the client address, and a
  bearer request from an address over its limit is refused before the token is looked up: guessing
  tokens is throttled like any anonymous traffic, and rotating made-up tokens does not escape it.
- ``/api/v1/health`` is never limited (load balancers and monitors poll it).

The counters live in the memory of one process (``nofei serve`` is one waitress process with threads);
several processes behind a balancer would each count on their own.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, g, request

from api.errors import envelope

EXEMPT = {"/api/v1/health"}
WINDOW_SECONDS = 60


class FixedWindowLimiter:
    """Counts hits per key in fixed windows of ``window`` seconds; thread-safe, bounded memory."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[int, int]] = {}  # key -> (window number, count)

    def _now_window(self) -> tuple[int, float]:
        now = self.clock()
        n = int(now // self.window)
        return n, (n + 1) * self.window - now

    def hit(self, key: str, cost: int = 1) -> float | None:
        """Count one request; None when allowed, else the seconds until the key may retry."""
        n, left = self._now_window()
        with self._lock:
            w, c = self._hits.get(key, (n, 0))
            if w != n:
                w, c = n, 0
            if c + cost > self.limit:
                self._hits[key] = (w, c)
                return left
            self._hits[key] = (w, c + cost)
            if len(self._hits) > self.max_keys:
                self._evict(n)
        return None

    def exhausted(self, key: str) -> float | None:
        """Like ``hit`` without counting: seconds to wait when the key is already at its limit."""
        n, left = self._now_window()
        with self._lock:
            w, c = self._hits.get(key, (n, 0))
        return left if w == n and c >= self.limit else None

    def _evict(self, n: int) -> None:
        for k in [k for k, (w, _) in self._hits.items() if w != n]:
            del self._hits[k]


def _too_many(wait: float) -> Response:
    resp = envelope(429, "rate_limited", "请求过于频繁，请稍后再试 (too many requests, retry later)")
    resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return resp


def init_app(app: Flask) -> None:
    """Install the limiter; call before ``auth.init_app`` so that it also sees requests auth refuses."""
    limit = int(app.config.get("RATE_LIMIT_PER_MINUTE") or 0)
    if limit <= 0:
        return
    limiter = FixedWindowLimiter(limit)
    app.extensions["nofei.ratelimit"] = limiter

    from api.auth import PUBLIC, bearer_token

    def client_key() -> str:
        return "ip:" + (request.remote_addr or "-")

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
