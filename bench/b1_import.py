"""B1: import a monthly ledger whose 转出 sheet has 100,000 rows, end to end (issue 3, Performance).

Workload: ``bench.ledger_workload.build(N)`` — cover, 8 产生贮存 rows, N 转出 rows (10 columns,
8 codes of 3 streams, 300 receivers, 联单编号 on HW rows); the upload unit is registered, the receivers
are not (so the receipt carries the unregistered-receiver warnings, as it would in real life).

Methods, each in a fresh child process (imports done before the clock starts; peak RSS is the
child's maxrss, i.e. the whole process):
- ``calamine``: python-calamine alone: open the bytes, ``to_python()`` every sheet — the yardstick.
- ``nofei-sqlite`` / ``nofei-pg``: ``api.uploads.import_workbook``, the path the API and CLI take:
  ``imports.read_monthly_ledger`` (safety checks, parse, validate, balance) streaming checked 转出 chunks
  to a writer thread (binary COPY on PostgreSQL, the driver's executemany on SQLite) +
  ``ledgers.ledger.submit_monthly_ledger`` (unit/permission/receiver/permit/continuity checks, original
  file, audit, commit) on a migrated, empty database. ``--core`` adds ``nofei-*-core`` (no streaming,
  SQLAlchemy Core ``insert()`` executemany after the read), to show what COPY and streaming buy.
- ``http-sqlite`` / ``http-pg``: the same through ``POST /api/v1/ledgers`` on the Flask test client (multipart
  upload, bearer token, receipt JSON).
- ``serve-sqlite`` / ``serve-pg``: the same through a real ``nofei serve`` (waitress subprocess on a free port,
  the production path: multipart over loopback, the parse worker process, the writer thread); the clock runs
  from the request's first byte to the receipt. ``--old-tree DIR`` adds ``serve-*-old``: the same server run
  from another source tree (e.g. ``git archive`` of the commit before), in the same rounds.
- ``naive-sqlite`` / ``naive-pg``: ``pandas.read_excel(engine="openpyxl", sheet_name=None)`` + one
  SQLModel ORM object per row (``session.add``) + commit — the baseline the issue names. Run on the
  full N rows (no extrapolation).

Rounds are interleaved (the order rotates each round); medians are printed with the ratio to calamine.

Run: ``.venv/bin/python -m bench.b1_import [--rows 100000 --rounds 3 --core --skip-pg --skip-naive --serve]``
Small-ledger worker overhead: ``.venv/bin/python -m bench.b1_import --small 40`` (a real ``nofei serve`` with
the parse worker vs the same server parsing in process, ``NOFEI_PARSE_WORKERS=0``; uploads interleaved).
PostgreSQL: ``--pg postgresql+psycopg://postgres@127.0.0.1:5432/nofei_imports_bench`` (created if missing;
its public schema is dropped and recreated for every run).
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/nofei_imports_bench"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fresh_db(url: str | None) -> str:
    from sqlalchemy import create_engine, text

    from nofei.storage.engine import make_engine
    from nofei.storage.migrate import upgrade

    if url is None:
        path = Path(tempfile.mkdtemp(prefix="b1_")) / "b1.db"
        atexit.register(shutil.rmtree, path.parent, ignore_errors=True)  # each run leaves no 300 MB behind
        url = f"sqlite:///{path}"
    else:
        admin_url, name = url.rsplit("/", 1)
        eng = create_engine(admin_url + "/postgres", isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            if not c.execute(text("select 1 from pg_database where datname = :n"), {"n": name}).first():
                c.execute(text(f'create database "{name}"'))
        eng.dispose()
        eng = make_engine(url)
        with eng.begin() as c:
            c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            c.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    e = make_engine(url)
    upgrade(e)
    e.dispose()
    return url


def _register_unit(uow_factory: Any) -> None:
    from bench.ledger_workload import ME
    from ledgers import registry
    from nofei.access import SYSTEM

    with uow_factory() as uow:
        registry.register_unit(uow=uow, actor=SYSTEM, data={
            "credit_code": ME, "name": "基准测试化工有限公司", "district": "630104", "roles": ["producer"], "permits": []})


def child(method: str, path: str, pg: str) -> dict[str, Any]:
    """Warm up on a 50-row workbook of February (imports, mapper configuration, statement caches — a
    running server is warm), then time the real file."""
    from bench.ledger_workload import build

    small = build(50, month="2025-02")
    state: dict[str, Any] = {}
    _run(method, small, pg, state)
    return _run(method, Path(path).read_bytes(), pg, state)


def _run(method: str, data: bytes, pg: str, state: dict[str, Any]) -> dict[str, Any]:
    if method == "calamine":
        from python_calamine import CalamineWorkbook

        t0 = time.perf_counter()
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheets = {n: wb.get_sheet_by_name(n).to_python(skip_empty_area=False) for n in wb.sheet_names}
        dt = time.perf_counter() - t0
        return {"s": dt, "rss_mb": _rss_mb(), "rows": sum(len(v) for v in sheets.values())}

    from nofei.storage.engine import make_engine, make_session_factory
    from nofei.storage.uow import UnitOfWork

    if "url" not in state:
        state["url"] = url = _fresh_db(pg if "-pg" in method else None)
        state["sessions"] = make_session_factory(make_engine(url))
    url, sessions = state["url"], state["sessions"]

    def uow_factory() -> UnitOfWork:
        return UnitOfWork(sessions)

    if not state.get("unit"):
        _register_unit(uow_factory)
        state["unit"] = True
    if method.startswith("nofei-"):  # nofei-sqlite, nofei-pg, nofei-sqlite-core, nofei-pg-core
        from api.uploads import import_workbook
        from nofei.access import SYSTEM
        from nofei.storage import ledgerstore

        ledgerstore.TRANSFER_INSERT = "core" if method.endswith("-core") else "auto"
        t0 = time.perf_counter()
        rc = import_workbook(uow=uow_factory(), actor=SYSTEM, data=data, filename="b1.xlsx", today=date(2026, 1, 1))
        dt = time.perf_counter() - t0
        return {"s": dt, "rss_mb": _rss_mb(), "rows": rc["rows"], "warnings": len(rc["warnings"])}
    if method.startswith("http-"):
        from api.app import create_app
        from ledgers import registry
        from nofei.access import SYSTEM

        if "client" not in state:
            app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "AUTO_MIGRATE": False})
            with uow_factory() as uow:
                state["tok"] = registry.create_token(uow=uow, actor=SYSTEM, role="admin", name="bench").token
            state["client"] = app.test_client()
        client, tok = state["client"], state["tok"]
        t0 = time.perf_counter()
        r = client.post("/api/v1/ledgers", headers={"Authorization": f"Bearer {tok}"},
                        data={"file": (io.BytesIO(data), "b1.xlsx")}, content_type="multipart/form-data")
        dt = time.perf_counter() - t0
        assert r.status_code == 201, r.json
        return {"s": dt, "rss_mb": _rss_mb(), "rows": r.json["rows"]}
    if method.startswith("serve-"):
        if "server" not in state:
            with uow_factory() as uow:
                from ledgers import registry
                from nofei.access import SYSTEM

                state["tok"] = registry.create_token(uow=uow, actor=SYSTEM, role="admin", name="bench").token
            tree = os.environ["B1_OLD_TREE"] if method.endswith("-old") else str(Path(__file__).resolve().parents[1])
            state["server"] = _serve(url, tree, {})
        t0 = time.perf_counter()
        status, body = _post(state["server"][1], state["tok"], data)
        dt = time.perf_counter() - t0
        assert status == 201, body[:2000]
        proc = state["server"][0]
        return {"s": dt, "rss_mb": _peak_mb(proc.pid), "rows": json.loads(body)["rows"]}
    if method.startswith("naive-"):
        import pandas as pd

        from bench.ledger_workload import ME
        from nofei.storage.tables import LedgerRow, StockEntryRow, TransferEntryRow, UnitRow

        t0 = time.perf_counter()
        frames = pd.read_excel(io.BytesIO(data), sheet_name=None, engine="openpyxl", dtype=object)
        with sessions() as s:
            unit = s.query(UnitRow).filter(UnitRow.credit_code == ME).one()
            from datetime import UTC, datetime

            month = str(frames["填报信息"].iloc[1, 1])  # 填报月份 (row 3 of the cover; row 1 is the header)
            led = LedgerRow(unit_id=unit.id, month=month, year=2025, version=1, sha256="x", uploaded_at=datetime.now(UTC))
            s.add(led)
            s.flush()
            st = frames["产生贮存"]
            for i, r in enumerate(st.itertuples(index=False), start=2):
                s.add(StockEntryRow(ledger_id=led.id, row=i, code=str(r[0]), stream="x", open_kg=round(float(r[2]) * 1000),
                                    generated_kg=round(float(r[3]) * 1000), close_kg=round(float(r[4]) * 1000)))
            out = frames["转出"]
            n = 0
            for i, r in enumerate(out.itertuples(index=False), start=2):
                d = r[0].date() if hasattr(r[0], "date") else r[0]
                s.add(TransferEntryRow(ledger_id=led.id, row=i, direction="out", day=d, code=str(r[2]), stream="x",
                                       qty_kg=round(float(r[3]) * 1000), counterpart=str(r[5]),
                                       counterpart_name=str(r[6]), manifest_no=None if pd.isna(r[1]) else str(r[1]),
                                       carrier=None, planned_method=str(r[8]), note="" if pd.isna(r[9]) else str(r[9])))
                n += 1
            s.commit()
        dt = time.perf_counter() - t0
        return {"s": dt, "rss_mb": _rss_mb(), "rows": n}
    raise SystemExit(f"unknown method {method}")


def _free_port() -> int:
    """A free loopback port: the first free one from ``B1_PORT_BASE`` (``--port-base``, 100 tried), else any."""
    import socket

    base = int(os.environ.get("B1_PORT_BASE", "0"))
    for port in range(base, base + 100) if base else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise SystemExit(f"no free port in {base}..{base + 99}")


def _serve(url: str, tree: str, settings: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int]:
    """``nofei serve`` from ``tree`` on a free port, once /health answers."""
    import urllib.request

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": tree, "NOFEI_DATABASE_URL": url, "NOFEI_AUTO_MIGRATE": "false",
           "NOFEI_LOG_LEVEL": "WARNING", **{f"NOFEI_{k}": str(v) for k, v in settings.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], env=env, cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as r:  # noqa: S310
                if r.status == 200:
                    time.sleep(1.0)  # the parse workers warm up beside waitress
                    return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit("nofei serve did not start")


def _post(port: int, token: str, data: bytes, query: str = "") -> tuple[int, bytes]:
    import http.client

    boundary = "b1boundary7MA4YWxkTrZu0gW"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b1.xlsx"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.request("POST", "/api/v1/ledgers" + query, body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def small(rows: int, uploads: int, pg: str | None) -> None:
    """A ``rows``-row ledger uploaded ``uploads`` times (each a new version: the note differs) to a server
    with the parse worker and to one parsing in process, alternately; medians and the difference."""
    from bench.ledger_workload import build
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage.engine import make_engine, make_session_factory
    from nofei.storage.uow import UnitOfWork

    tree = str(Path(__file__).resolve().parents[1])
    servers = {}
    for name, workers in (("worker", 2), ("in-process", 0)):
        url = _fresh_db(pg)
        sessions = make_session_factory(make_engine(url))
        _register_unit(lambda s=sessions: UnitOfWork(s))
        with UnitOfWork(sessions) as uow:
            tok = registry.create_token(uow=uow, actor=SYSTEM, role="admin", name="bench").token
        servers[name] = (_serve(url, tree, {"PARSE_WORKERS": workers}), tok)
    files = [build(rows, seed=i) for i in range(uploads + 3)]
    times: dict[str, list[float]] = {n: [] for n in servers}
    for i, f in enumerate(files):
        for name in (list(servers) if i % 2 else list(servers)[::-1]):
            (_proc, port), tok = servers[name]
            t0 = time.perf_counter()
            status, body = _post(port, tok, f)
            dt = time.perf_counter() - t0
            assert status in (200, 201), body[:500]
            if i >= 3:  # three warm-up uploads each
                times[name].append(dt)
    for (proc, _port), _tok in servers.values():
        proc.terminate()
    med = {n: statistics.median(v) * 1000 for n, v in times.items()}
    paired = statistics.median((a - b) * 1000 for a, b in zip(times["worker"], times["in-process"], strict=True))
    print(f"small ledger ({rows} 转出 rows, {uploads} uploads each, interleaved) over a real nofei serve:")
    for n, v in med.items():
        print(f"  {n:11s} median {v:7.1f} ms  (p90 {sorted(times[n])[int(0.9 * len(times[n]))] * 1000:6.1f} ms)")
    print(f"  worker overhead: {med['worker'] - med['in-process']:+.1f} ms by medians, {paired:+.1f} ms paired "
          "(target ≤ 50 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default=os.environ.get("NOFEI_BENCH_PG", DEFAULT_PG))
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--core", action="store_true", help="also time SQLAlchemy Core executemany instead of COPY/driver")
    ap.add_argument("--serve", action="store_true", help="also time uploads through a real `nofei serve` (serve-*)")
    ap.add_argument("--only-serve", action="store_true", help="calamine and serve-* only")
    ap.add_argument("--old-tree", default=None, help="also run serve-*-old: the server from this source tree")
    ap.add_argument("--small", type=int, default=0, help="measure the worker's overhead on an N-row ledger instead")
    ap.add_argument("--uploads", type=int, default=30)
    ap.add_argument("--port-base", type=int, default=0, help="serve on the first free port from this one (100 tried)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--file", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.port_base:
        os.environ["B1_PORT_BASE"] = str(a.port_base)  # the children inherit it
    if a.child:
        print(json.dumps(child(a.child, a.file, a.pg), default=str))
        return
    if a.small:
        small(a.small, a.uploads, None if a.skip_pg else a.pg)
        return

    from bench.ledger_workload import cached

    t = time.perf_counter()
    path = cached(a.rows)
    print(f"workload: {path} ({path.stat().st_size / 1e6:.1f} MB, {a.rows} 转出 rows; ready in {time.perf_counter() - t:.1f} s)")
    methods = ["calamine", "nofei-sqlite"] + (["nofei-sqlite-core"] if a.core else [])
    if not a.skip_http:
        methods.append("http-sqlite")
    if not a.skip_pg:
        methods += ["nofei-pg"] + (["nofei-pg-core"] if a.core else []) + ([] if a.skip_http else ["http-pg"])
    if a.serve or a.only_serve or a.old_tree:
        methods += ["serve-sqlite"] + (["serve-sqlite-old"] if a.old_tree else [])
        if not a.skip_pg:
            methods += ["serve-pg"] + (["serve-pg-old"] if a.old_tree else [])
    if a.only_serve:
        methods = [m for m in methods if m == "calamine" or m.startswith("serve-")]
    if a.old_tree:
        os.environ["B1_OLD_TREE"] = str(Path(a.old_tree).resolve())
    if not a.skip_naive and not a.only_serve:
        methods.append("naive-sqlite")
        if not a.skip_pg:
            methods.append("naive-pg")
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for rnd in range(a.rounds):
        order = methods[rnd % len(methods):] + methods[: rnd % len(methods)]
        for m in order:
            if m.startswith("naive") and rnd > 0 and a.rounds > 2 and rnd != a.rounds - 1:
                continue  # the naive baseline is slow: two rounds of it (first and last) are enough
            out = subprocess.run([sys.executable, "-m", "bench.b1_import", "--child", m, "--file", str(path), "--pg", a.pg],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                print(f"  {m}: failed\n{out.stderr[-2000:]}")
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[m].append(res)
            print(f"  round {rnd + 1} {m:19s} {res['s']:7.3f} s  peak RSS {res['rss_mb']:6.0f} MiB")
    base = statistics.median(r["s"] for r in results["calamine"])
    print(f"\nB1 {a.rows} 转出 rows — medians (ratio = time / python-calamine read; target nofei ≤ 2.0, peak < 1024 MiB)")
    print("'round ratio': median over rounds of (method / calamine of the same round) — steadier on a noisy machine")
    print(f"{'method':19s} {'median s':>9s} {'min..max s':>15s} {'ratio':>6s} {'round ratio':>12s} {'peak MiB':>9s}")
    for m in methods:
        rs = results[m]
        if not rs:
            continue
        ts = [r["s"] for r in rs]
        med = statistics.median(ts)
        paired = [r["s"] / c["s"] for r, c in zip(rs, results["calamine"], strict=False)] if not m.startswith("naive") else []
        rr = f"{statistics.median(paired):12.2f}" if paired else f"{'':12s}"
        print(f"{m:19s} {med:9.3f} {min(ts):7.3f}..{max(ts):<7.3f} {med / base:6.2f} {rr} {max(r['rss_mb'] for r in rs):9.0f}")


if __name__ == "__main__":
    main()
