"""B4: the API under load — ``nofei serve`` (waitress, production settings) on PostgreSQL, loopback only.

Workload, per concurrency level N (default 1, 8 and 32 clients; each client one keep-alive HTTP/1.1
connection to 127.0.0.1, requests back to back, no think time):
- ``indicators``: ``GET /api/v1/indicators?year=2025&region=630100`` (all nine indicators of the city,
  computed from every current ledger) as the admin — 80 % of requests;
- ``upload``: ``POST /api/v1/ledgers`` (multipart, a 40-row 转出 workbook that balances) as the
  enterprise token of the client's own unit, for the next month of that unit (new versions once the
  twelve months are used) — 20 % of requests;
- baseline: ``GET /api/v1/health`` (one ``SELECT 1``) at the same N, so the ratio shows what the real
  work costs over the bare server path.
The database is seeded first with a city of ``--city-units`` units (default 1,000) and a year of their ledgers
(the B2/B6 generator, ``bench.b6_province.generate``: 12 monthly ledgers each, ~200 transfer rows a unit, COPY),
then ``--units`` loader units (default 32) registered over HTTP with 3 months of ledgers each; the indicator
reads cover all of them (issue 12: "a city of at least 1,000 units with a year of ledgers"). Every level is bounded by
``--requests`` requests and ``--seconds`` seconds. An error is any exception or non-2xx answer (a 429,
a 503 …); the run exits 1 if there is one.

Run: ``.venv/bin/python -m bench.b4_load [--clients 1,8,32 --requests 400 --seconds 60 --port 8106]``
PostgreSQL: ``--pg postgresql+psycopg://postgres@127.0.0.1:5432/nofei_load_bench`` (created if missing;
its public schema is dropped and recreated for every run).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imports.spec import COVER, OUT, STOCK, template_header
from nofei.domain.units import make_credit_code

HOST = "127.0.0.1"  # loopback only
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/nofei_load_bench"
ROOT = Path(__file__).resolve().parent.parent
RECEIVERS = [make_credit_code("630105", f"LR{i:07d}") for i in range(20)]
CODES = ["900-041-49", "900-249-08", "SW01", "SW02"]


# --- workload -------------------------------------------------------------------------------------
def ledger(credit_code: str, month: str, rows: int, seed: int) -> bytes:
    """A monthly ledger that balances: each code opens and closes at 1.5 t, generates what it sends."""
    rnd = random.Random(seed)
    wb = Workbook(write_only=True)
    cover = wb.create_sheet("填报信息")
    values = {"credit_code": credit_code, "unit_name": f"负载测试单位{credit_code[-6:]}", "month": month,
              "reporter": f"r{seed}", "phone": ""}
    for f in COVER:
        cover.append([f.label, values[f.key]])
    stock = wb.create_sheet(STOCK.name)
    stock.append([template_header(c) for c in STOCK.columns])
    out = wb.create_sheet(OUT.name)
    out.append([template_header(c) for c in OUT.columns])
    sent = dict.fromkeys(CODES, 0)
    y, m = int(month[:4]), int(month[5:])
    for i in range(rows):
        code = CODES[rnd.randrange(len(CODES))]
        kg = rnd.randint(100, 5_000)
        sent[code] += kg
        hw = not code.startswith("SW")
        out.append([date(y, m, rnd.randint(1, 28)), f"{y}6301{seed % 100:02d}{i:04d}" if hw else None,
                    code, kg / 1000, "吨", RECEIVERS[rnd.randrange(len(RECEIVERS))], "接收单位", None,
                    "D10" if hw else "R4", None])
    for code in CODES:
        stock.append([code, None, 1.5, sent[code] / 1000, 1.5, "吨", None])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- server ---------------------------------------------------------------------------------------
def fresh_database(url: str) -> None:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("select 1 from pg_database where datname = :n"), {"n": u.database}).first():
            c.execute(text(f'create database "{u.database}"'))
    admin.dispose()
    eng = create_engine(u)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


def nofei(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, check=True)


class Server:
    """``nofei serve`` in a child process with the production defaults (no TESTING, INFO logs to a file)."""

    def __init__(self, pg: str, port: int, threads: int, log: Path) -> None:
        self.env = {**os.environ, "NOFEI_DATABASE_URL": pg}
        for k in ("NOFEI_RATE_LIMIT_PER_MINUTE", "NOFEI_LOG_LEVEL"):
            self.env.pop(k, None)
        # the limiter is on by default now (issue 17 item 11); 32 clients on one admin token measure the API,
        # not the limit, so it is raised (its per-request cost, one upsert, is still paid)
        self.env["NOFEI_RATE_LIMIT_PER_MINUTE"] = "100000000"
        nofei("db", "upgrade", env=self.env)
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", HOST, "--port", str(port),
                                      "--threads", str(threads)], env=self.env, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.port = port
        for _ in range(200):
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=2)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"nofei serve did not come up on {HOST}:{port} (see {log})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def json(self, method: str, path: str, headers: dict[str, str], payload: Any) -> tuple[int, Any]:
        st, body = self.call(method, path, {**headers, "Content-Type": "application/json"},
                             json.dumps(payload).encode())
        return st, json.loads(body or b"null")


# --- setup ----------------------------------------------------------------------------------------
@dataclass
class World:
    admin: dict[str, str]
    units: list[str]
    tokens: list[dict[str, str]]
    next_month: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def month_for(self, i: int) -> str:
        with self.lock:
            k = self.next_month[i]
            self.next_month[i] += 1
        return f"2025-{k % 12 + 1:02d}"


def setup(server: Server, n_units: int, rows: int) -> World:
    admin_token = nofei("token", "create", "--role", "admin", "--name", "b4", env=server.env).stdout.strip().splitlines()[-1]
    admin = {"Authorization": f"Bearer {admin_token}"}
    c = Client(server.port)
    units, tokens = [], []
    for i in range(n_units):
        cc = make_credit_code("630104" if i % 2 else "630102", f"LU{i:07d}")
        st, body = c.json("POST", "/api/v1/units", admin, {"credit_code": cc, "name": f"负载测试单位{cc[-6:]}",
                                                           "district": cc[2:8], "roles": ["producer"]})
        assert st == 201, body
        st, t = c.json("POST", "/api/v1/tokens", admin, {"role": "enterprise", "units": [cc]})
        assert st == 201, t
        units.append(cc)
        tokens.append({"Authorization": f"Bearer {t['token']}"})
    world = World(admin, units, tokens, next_month=[0] * n_units)
    for i, cc in enumerate(units):  # seed: three months each
        for _ in range(3):
            body, ctype = multipart(ledger(cc, world.month_for(i), rows, seed=i * 100 + world.next_month[i]), "seed.xlsx")
            st, out = c.call("POST", "/api/v1/ledgers", {**tokens[i], "Content-Type": ctype}, body)
            assert st == 201, out[:500]
    return world


# --- load -----------------------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    ms: float
    status: int
    error: str = ""


def run_level(port: int, world: World, clients: int, budget: int, seconds: float, upload_share: float,
              rows: int, health_only: bool) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    lock = threading.Lock()
    remaining = [budget]
    deadline = time.monotonic() + seconds
    barrier = threading.Barrier(clients + 1)

    def worker(k: int) -> None:
        rnd = random.Random(k)
        unit = k % len(world.units)
        client = Client(port)
        uploads: list[tuple[bytes, str]] = []  # built before the clock starts: the client's CPU is not measured
        if not health_only:
            for _ in range(int(budget / clients * upload_share * 2) + 2):
                data = ledger(world.units[unit], world.month_for(unit), rows, seed=rnd.randrange(10**9))
                uploads.append(multipart(data, "ledger.xlsx"))
        barrier.wait()
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            if health_only:
                kind, method, path, headers, body = "health", "GET", "/api/v1/health", {}, None
            elif uploads and rnd.random() < upload_share:
                body, ctype = uploads.pop()
                kind, method, path, headers = "upload", "POST", "/api/v1/ledgers", {**world.tokens[unit], "Content-Type": ctype}
            else:
                kind, method, path, headers, body = ("indicators", "GET", "/api/v1/indicators?year=2025&region=630100",
                                                     world.admin, None)
            t0 = time.perf_counter()
            try:
                st, out = client.call(method, path, headers, body)
                err = "" if 200 <= st < 300 else out[:200].decode("utf-8", "replace")
            except Exception as e:  # noqa: BLE001 - counted as an error
                st, err = 0, repr(e)
                client = Client(port)
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                samples.append(Sample(kind, ms, st, err))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - t0


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def report(label: str, samples: list[Sample], wall: float) -> dict[str, Any]:
    out: dict[str, Any] = {"level": label, "requests": len(samples), "seconds": round(wall, 2),
                           "rps": round(len(samples) / wall, 1) if wall else 0.0,
                           "errors": sum(1 for s in samples if s.error)}
    for kind in sorted({s.kind for s in samples}):
        ms = [s.ms for s in samples if s.kind == kind]
        out[kind] = {"n": len(ms), "rps": round(len(ms) / wall, 1), "p50_ms": round(pct(ms, 50), 1),
                     "p99_ms": round(pct(ms, 99), 1), "mean_ms": round(statistics.fmean(ms), 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--port", type=int, default=8106)
    ap.add_argument("--threads", type=int, default=8, help="waitress threads (nofei serve's default)")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=400, help="per level")
    ap.add_argument("--seconds", type=float, default=60, help="per level")
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--rows", type=int, default=40, help="转出 rows per uploaded workbook")
    ap.add_argument("--upload-share", type=float, default=0.2)
    ap.add_argument("--city-units", type=int, default=1000, help="bulk-seeded units with a year of ledgers (0: none)")
    a = ap.parse_args(argv)
    if make_url(a.pg).host not in ("127.0.0.1", "localhost"):
        raise SystemExit("loopback only")
    levels = [int(x) for x in a.clients.split(",")]

    fresh_database(a.pg)
    if a.city_units:
        from bench.b6_province import CITY_UNITS, generate

        t = time.perf_counter()
        counts = generate(a.pg, a.city_units / CITY_UNITS)
        print(f"city seeded in {time.perf_counter() - t:.1f} s: {counts}", flush=True)
    log = ROOT / "bench" / "out" / "b4_serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = Server(a.pg, a.port, a.threads, log)
    results = []
    try:
        t = time.perf_counter()
        world = setup(server, a.units, a.rows)
        print(f"seeded {a.units} units x 3 months in {time.perf_counter() - t:.1f} s "
              f"(server: nofei serve --threads {a.threads}, PostgreSQL {make_url(a.pg).database})", flush=True)
        c = Client(a.port)  # warm-up, not counted: the server has been up (the year's model built once)
        t = time.perf_counter()
        st, _ = c.call("GET", "/api/v1/indicators?year=2025&region=630100", world.admin)
        print(f"warm-up read (cold model): {st} in {time.perf_counter() - t:.2f} s", flush=True)
        for n in levels:
            base = report(f"health x{n}", *run_level(a.port, world, n, a.requests, a.seconds, 0, a.rows, True))
            work = report(f"mix x{n}", *run_level(a.port, world, n, a.requests, a.seconds, a.upload_share, a.rows,
                                                   False))
            results += [base, work]
            for r in (base, work):
                print(json.dumps(r, ensure_ascii=False), flush=True)
            ratio = base["rps"] / work["rps"] if work["rps"] else float("nan")
            print(f"  N={n}: mix {work['rps']} req/s vs health {base['rps']} req/s (health/mix = {ratio:.1f}x); "
                  f"indicators p50/p99 {work.get('indicators', {}).get('p50_ms')}/"
                  f"{work.get('indicators', {}).get('p99_ms')} ms; upload p50/p99 "
                  f"{work.get('upload', {}).get('p50_ms')}/{work.get('upload', {}).get('p99_ms')} ms; "
                  f"errors {work['errors'] + base['errors']}", flush=True)
    finally:
        server.stop()
    errors = sum(r["errors"] for r in results)
    print(f"total errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
