"""Hostile text, ids, dates and bodies against a real ``nofei serve`` (waitress), not the Flask test client:
the answer is the envelope, the server stays up (``/health`` after every request), and stored control
characters no longer make the exports fail.

Runs on SQLite (a temp file), or on PostgreSQL when NOFEI_TEST_DATABASE_URL is set (then the NUL and
big-id cases are the ones that answered 503 before)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nofei.storage.tables import metadata
from tests.conftest import PG_URL
from tests.factories import unit_payload
from tests.ports import block

PORTS = block(1)  # this run's ports for these servers (tests/ports.py)


@dataclass
class Server:
    port: int
    token: str
    database_url: str

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
            c.putrequest(method, path, skip_accept_encoding=True)  # the path is sent as given, byte for byte
            data = body.encode() if isinstance(body, str) else body
            for k, v in h.items():
                c.putheader(k, v)
            if data is not None:
                c.putheader("Content-Length", str(len(data)))
            c.endheaders(data)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def json(self, method: str, path: str, obj: object = None, raw: str | None = None) -> tuple[int, dict]:
        body = raw if raw is not None else (json.dumps(obj, ensure_ascii=False) if obj is not None else None)
        st, h, data = self.request(method, path, body, {"Content-Type": "application/json"} if body else None)
        return st, (json.loads(data) if h.get("content-type", "").startswith("application/json") and data else {})

    def healthy(self) -> bool:
        st, _h, _b = self.request("GET", "/api/v1/health")
        return st == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory, pg_engine) -> Iterator[Server]:
    if pg_engine is not None:  # the suite's migrated schema, emptied
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        with pg_engine.begin() as c:
            c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        url = str(PG_URL)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'nofei.db'}"
    env = {**os.environ, "NOFEI_DATABASE_URL": url, "NOFEI_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-c", "from api.cli import main; main()"]
    out = subprocess.run([*cli, "token", "create", "--role", "admin", "--name", "serve-test"], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    token = out.stdout.strip().splitlines()[-1]
    log = Path(tmp_path_factory.mktemp("serve-log")) / "server.log"
    proc, srv = None, None
    for port in PORTS:  # another test process may take a port between the check and the bind: try the next
        if not _port_free(port):
            continue
        with log.open("w") as fh:
            proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--threads", "4"], env=env, stdout=fh,
                                    stderr=subprocess.STDOUT)
        srv = Server(port, token, url)
        if _started(proc, srv):
            break
        _stop(proc)
        proc = None
    if proc is None or srv is None:
        pytest.skip(f"could not start nofei serve on a port in {PORTS.start}-{PORTS.stop - 1}: " + log.read_text()[-500:])
    try:
        yield srv
    finally:
        _stop(proc)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _started(proc: subprocess.Popen, srv: Server) -> bool:
    """Up, and ours: our own process answers and knows our token (not a neighbour's server on the port)."""
    for _ in range(300):
        if proc.poll() is not None:
            return False
        try:
            return srv.request("GET", "/api/v1/units")[0] == 200 and proc.poll() is None
        except OSError:
            time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _is_envelope(body: dict, status: int) -> bool:
    return set(body) == {"code", "status", "message", "errors", "request_id"} and body["status"] == status


@pytest.mark.parametrize("path", ["/api/v1/units?q=%00", "/api/v1/units?q=x%03y", "/api/v1/units/%00",
                                  "/api/v1/units/%00/trace?year=2025", "/api/v1/manifests?code=%00",
                                  "/api/v1/ledgers?unit=%00"])
def test_nul_and_control_characters_in_urls_are_422(server, path):
    st, body = server.json("GET", path)
    assert st == 422 and _is_envelope(body, 422), (st, body)
    assert server.healthy()


@pytest.mark.parametrize("path", ["/api/v1/ledgers/2147483648", "/api/v1/ledgers/9223372036854775808",
                                  "/api/v1/ledgers/99999999999999999999/file", "/api/v1/ledgers/2147483647"])
def test_ids_past_an_id_column_are_404(server, path):
    st, body = server.json("GET", path)
    assert st == 404 and _is_envelope(body, 404), (st, body)
    st, body = server.json("DELETE", "/api/v1/tokens/18446744073709551616")
    assert st == 404 and _is_envelope(body, 404)
    assert server.healthy()


@pytest.mark.parametrize("ch", ["\x00", "\x03", "\x1b", "\x7f"])
def test_control_characters_in_json_bodies_are_422_naming_the_field(server, ch):
    st, body = server.json("POST", "/api/v1/units", unit_payload(name=f"单位{ch}"))
    assert st == 422 and _is_envelope(body, 422) and body["errors"][0]["field"] == "name"
    assert server.healthy()


def test_deep_json_bad_dates_and_empty_patches_are_4xx(server):
    st, body = server.json("POST", "/api/v1/units", raw='{"name": ' + "[" * 1000 + "]" * 1000 + "}")
    assert st == 422 and body["errors"][0]["code"] == "too_deep"
    st, body = server.json("POST", "/api/v1/units", raw='{"name": ' + "[" * 100_000)  # never closed
    assert st in (400, 422) and _is_envelope(body, st)
    a = unit_payload(roles=["producer"])
    b = unit_payload(roles=["disposer"])
    assert server.json("POST", "/api/v1/units", a)[0] == 201 and server.json("POST", "/api/v1/units", b)[0] == 201
    m = {"shipper": a["credit_code"], "receiver": b["credit_code"], "planned_date": "0001-01-01",
         "lines": [{"waste_code": "900-249-08", "quantity_t": "1"}]}
    st, body = server.json("POST", "/api/v1/manifests", m)
    assert st == 422 and body["errors"][0]["field"] == "planned_date"
    st, body = server.json("PATCH", f"/api/v1/units/{a['credit_code']}")
    assert st == 422 and body["errors"][0]["field"] == "body"
    st, h, raw = server.request("PUT", "/api/v1/units")
    assert st == 405 and "GET" in h["allow"] and _is_envelope(json.loads(raw), 405)
    assert server.healthy()


def test_a_raw_control_character_in_the_request_line_never_takes_the_server_down(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /api/v1/units/\x03\x00 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + server.token.encode() + b"\r\nConnection: close\r\n\r\n")
        head = s.recv(200)
    assert head.startswith(b"HTTP/1.1 4"), head
    assert server.healthy()


def test_stored_control_characters_and_formulas_no_longer_break_the_exports(server):
    a = unit_payload(roles=["producer"])
    b = unit_payload(roles=["disposer"], permits=[{"number": "P1", "waste_codes": ["HW08"], "methods": ["R9"],
                                                  "capacity_t": "100"}])
    assert server.json("POST", "/api/v1/units", a)[0] == 201 and server.json("POST", "/api/v1/units", b)[0] == 201
    st, m = server.json("POST", "/api/v1/manifests", {
        "shipper": a["credit_code"], "receiver": b["credit_code"], "planned_date": "2025-03-01",
        "lines": [{"waste_code": "900-249-08", "quantity_t": "1"}]})
    assert st == 201, m
    bad = "=1+1\x03"  # what the edge refused too late before: a name and a driver stored with \x03
    if server.database_url.startswith("sqlite"):
        with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE unit SET name = ? WHERE credit_code = ?", (bad, a["credit_code"]))
            db.execute("UPDATE manifest SET driver = ?", (bad,))
    else:
        eng = create_engine(server.database_url)
        with eng.begin() as c:
            c.execute(text("UPDATE unit SET name = :n WHERE credit_code = :c"), {"n": bad, "c": a["credit_code"]})
            c.execute(text("UPDATE manifest SET driver = :n"), {"n": bad})
        eng.dispose()
    for path in (f"/api/v1/ledgers/template?unit={a['credit_code']}", "/api/v1/manifests?format=xlsx",
                 "/api/v1/manifests?format=csv", f"/api/v1/reports/annual?year={date.today().year}&format=xlsx"):
        st, _h, body = server.request("GET", path)
        assert st == 200, (path, st, body[:300])
        assert b"\x03" not in body or not path.endswith("csv")
    assert server.healthy()
