"""Issue 17 item 11 against real ``nofei serve`` processes: ``/login`` is rate-limited (per address and per
token prefix) and the API limit is shared by several processes on one database (it was per process and off
by default). Over a limit: 429 with ``Retry-After``, the API's in the error envelope."""

from __future__ import annotations

import json
import re
import time

from tests.security.test_web_sessions import cookie_of


def fresh_window(margin: float = 8.0) -> None:
    """Start well inside a one-minute window, so that no count is cut in two by the window's end."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.2)


def login_attempt(srv, token: str) -> tuple[int, dict[str, str]]:
    status, h, page = srv.request("GET", "/login")
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    status, h, _ = srv.request("POST", "/login", headers={"Cookie": f"nofei_session={cookie_of(h)}"},
                               form={"token": token, "csrf_token": csrf})
    return status, h


def test_login_attempts_are_limited_per_address(serve):
    srv = serve(NOFEI_LOGIN_RATE_LIMIT_PER_MINUTE="10")
    good = srv.token()
    fresh_window()
    codes = [login_attempt(srv, f"nf_guess{i:04d}xxxxxxxxxxxxxxxxxxxxxxxxxxx")[0] for i in range(10)]
    assert codes == [401] * 10
    status, h = login_attempt(srv, good)  # the 11th, even with the right token: wait
    assert status == 429 and 1 <= int(h["retry-after"]) <= 60
    assert srv.request("GET", "/api/v1/health")[0] == 200


def test_login_attempts_are_limited_per_token_prefix_across_processes(serve):
    """Two processes (as behind a balancer) share the count: 6 + 5 attempts on one prefix, the 11th refused."""
    a = serve(NOFEI_LOGIN_RATE_LIMIT_PER_MINUTE="10")
    b = serve(NOFEI_LOGIN_RATE_LIMIT_PER_MINUTE="10")
    target = a.token()
    fresh_window()
    prefix = target[:12]
    codes = [login_attempt(srv, prefix + f"{i:033d}")[0] for i, srv in enumerate([a, b] * 5)]
    assert codes == [401] * 10
    status, h = login_attempt(a, target)
    assert status == 429 and int(h["retry-after"]) >= 1


def test_the_api_limit_is_shared_by_processes_and_answers_in_the_envelope(serve):
    a = serve(NOFEI_RATE_LIMIT_PER_MINUTE="6")
    b = serve(NOFEI_RATE_LIMIT_PER_MINUTE="6")
    auth = {"Authorization": f"Bearer {a.token()}"}
    fresh_window()
    codes = [srv.request("GET", "/api/v1/units", headers=auth)[0] for srv in [a, b, a, b, a, b]]
    assert codes == [200] * 6
    for srv in (a, b):
        status, h, body = srv.request("GET", "/api/v1/units", headers={**auth, "X-Request-ID": "rl-x"})
        assert status == 429 and 1 <= int(h["retry-after"]) <= 60
        env = json.loads(body)
        assert env["code"] == "rate_limited" and env["status"] == 429 and env["request_id"] == "rl-x"
    assert a.request("GET", "/api/v1/health")[0] == 200 and b.request("GET", "/api/v1/health")[0] == 200
