"""B2-live: the B2 city-year loaded and warm; 20 ledger amendments uploaded one by one through the HTTP API,
each followed by ``GET /api/v1/indicators``.

Workload: the B2 database (``bench.b2_indicators``: 5,000 units, ~1 M transfer rows), copied so the runs do
not change it. A real HTTP server (waitress, one process, loopback, port ``--port``) runs the app; the client
is ``http.client``. Each amendment is a new version of a general-industrial producer's month (its stock rows
kept, generation and 转出 changed, same receivers), written as an .xlsx workbook and POSTed to
``/api/v1/ledgers``.

Measured, in one run: the warm read (20 GETs with nothing changed, then one more right after each read that
follows an amendment: median, p95 of the 40); the 20 reads each after an amendment (p50, p95, max) and their
p95 ÷ the warm median (the target) and ÷ the warm p95; and, as the baseline in the same run, the read
after an amendment with the model thrown away (``flowdata.clear_cache()``: the whole year rebuilt from the
summaries, what every read cost when any write invalidated the year) on 5 more amendments.

Run: ``.venv/bin/python -m bench.b2_live [--db /tmp/flows/b2.db --port 18170]``
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import shutil
import statistics
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any


def workbook(credit: str, month: str, stocks: list[tuple[str, int, int, int]], outs: list[tuple[str, str, int]]) -> bytes:
    """A balanced monthly workbook: stocks (code, open, generated, close) kg; outs (code, receiver, kg)."""
    from openpyxl import Workbook

    from imports.spec import COVER, OUT, STOCK, template_header

    wb = Workbook(write_only=True)
    cover = wb.create_sheet("填报信息")
    values = {"credit_code": credit, "unit_name": f"单位{credit[-6:]}", "month": month, "reporter": "b2live",
              "phone": ""}
    for f in COVER:
        cover.append([f.label, values[f.key]])
    st = wb.create_sheet(STOCK.name)
    st.append([template_header(c) for c in STOCK.columns])
    for code, o, g, c in stocks:
        st.append([code, None, o / 1000, g / 1000, c / 1000, "吨", None])
    out = wb.create_sheet(OUT.name)
    out.append([template_header(c) for c in OUT.columns])
    y, m = int(month[:4]), int(month[5:])
    for code, recv, kg in outs:
        out.append([date(y, m, 10), None, code, kg / 1000, "吨", recv, "接收单位", None, "R4", None])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n").encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def amendments(session: Any, n: int, seed: int = 3) -> list[tuple[str, str, bytes]]:
    """``n`` amendments of general-industrial producers' months: (credit code, month, workbook)."""
    import random

    from sqlalchemy import text

    rnd = random.Random(seed)
    picks = session.execute(text(
        "SELECT l.id, u.credit_code, l.month FROM ledger l JOIN unit u ON u.id = l.unit_id "
        "WHERE l.is_current AND u.roles LIKE '%producer%' AND EXISTS (SELECT 1 FROM stock_entry s "
        "WHERE s.ledger_id = l.id AND s.stream = 'general_industrial') ORDER BY l.id")).all()
    out = []
    for lid, cc, month in rnd.sample(picks, n):
        stocks = session.execute(text("SELECT code, open_kg, generated_kg, close_kg FROM stock_entry "
                                      "WHERE ledger_id = :l"), {"l": lid}).all()
        treat = session.execute(text("SELECT code, SUM(qty_kg) FROM treatment_entry WHERE ledger_id = :l "
                                     "GROUP BY code"), {"l": lid}).all()
        code, o, _g, c = stocks[0]
        recvs = [r for (r,) in session.execute(text("SELECT DISTINCT counterpart FROM transfer_entry WHERE "
                                                    "ledger_id = :l AND direction = 'out'"), {"l": lid})]
        recvs = recvs or [cc]
        outs = [(code, r, rnd.randint(500, 9_000)) for r in recvs[:3]]
        sent = sum(kg for _c, _r, kg in outs)
        # generation = what leaves (treatments are dropped: the amended month sends everything)
        gen = sent + int(c) - int(o)
        if gen < 0:
            outs.append((code, recvs[0], -gen))
            gen = 0
        _ = treat
        out.append((cc, month, workbook(cc, month, [(code, int(o), gen, int(c))], outs)))
    return out


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, int(round(p / 100 * len(ys) + 0.5)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--db", default="/tmp/flows/b2.db")
    ap.add_argument("--port", type=int, default=18170)
    ap.add_argument("--amendments", type=int, default=20)
    args = ap.parse_args()
    src = Path(args.db)
    db = src.with_name("b2_live.db")
    for suffix in ("-wal", "-shm"):  # a previous run's log would be replayed into the fresh copy
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    import sqlite3

    with sqlite3.connect(src) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(src, db)

    import waitress

    from api import create_app
    from ledgers import registry
    from nofei.access import SYSTEM
    from nofei.storage import flowdata
    from nofei.storage.engine import make_engine, make_session_factory
    from nofei.storage.migrate import upgrade
    from nofei.storage.uow import UnitOfWork

    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    sessions = make_session_factory(eng)
    with UnitOfWork(sessions) as uow:
        token = registry.create_token(uow=uow, actor=SYSTEM, role="admin", name="b2live").token
    with sessions() as s:
        todo = amendments(s, args.amendments + 5)
    eng.dispose()
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING"})
    server = waitress.create_server(app, host="127.0.0.1", port=args.port, threads=2)
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
    auth = {"Authorization": f"Bearer {token}"}

    def get() -> float:
        t = time.perf_counter()
        conn.request("GET", "/api/v1/indicators?year=2025", headers=auth)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body[:300]
        return time.perf_counter() - t

    def post(cc: str, month: str, data: bytes) -> float:
        body, ctype = multipart(data, f"{cc}-{month}.xlsx")
        t = time.perf_counter()
        conn.request("POST", "/api/v1/ledgers", body=body, headers={**auth, "Content-Type": ctype})
        r = conn.getresponse()
        out = r.read()
        assert r.status == 201, out[:600]
        return time.perf_counter() - t

    try:
        t_cold = get()
        warm = [get() for _ in range(20)]
        after, uploads = [], []
        for cc, month, data in todo[:args.amendments]:
            uploads.append(post(cc, month, data))
            after.append(get())
            warm.append(get())  # a warm read right after, nothing changed: paired with the one after the write
        base = []
        for cc, month, data in todo[args.amendments:]:
            post(cc, month, data)
            flowdata.clear_cache()
            base.append(get())
    finally:
        server.close()
    wm = statistics.median(warm)
    res = {"cold_s": t_cold, "warm_median_ms": wm * 1000, "warm_p95_ms": pct(warm, 95) * 1000,
           "after_p50_ms": statistics.median(after) * 1000, "after_p95_ms": pct(after, 95) * 1000,
           "after_max_ms": max(after) * 1000, "after_p95_over_warm": pct(after, 95) / wm,
           "after_p95_over_warm_p95": pct(after, 95) / pct(warm, 95),
           "upload_median_ms": statistics.median(uploads) * 1000,
           "baseline_full_rebuild_median_ms": statistics.median(base) * 1000,
           "baseline_over_after_p50": statistics.median(base) / statistics.median(after)}
    print(json.dumps({k: round(v, 3) for k, v in res.items()}, indent=1))
    print(f"B2-live: after-amendment read p95 {res['after_p95_ms']:.0f} ms (target < 150: "
          f"{'MET' if res['after_p95_ms'] < 150 else 'MISSED'}), {res['after_p95_over_warm']:.2f}x the warm median "
          f"(target <= 1.5: {'MET' if res['after_p95_over_warm'] <= 1.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
