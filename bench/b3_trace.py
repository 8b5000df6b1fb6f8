"""B3: manifest traces and the city anomaly list over a year of 1,000,000 manifests (PostgreSQL).

Workload (bulk-inserted with COPY, not through the API): 2,000 producers, 20 collectors, 10 disposers in the 7
districts; 1,000,000 manifests of 2024 (one line each, 4 HW08 codes): 85 % producer → collector, 10 % collector →
disposer, 5 % producer → disposer; 97.5 % received (1 % of them with a quantity discrepancy, 1 % confirmed late),
2.5 % still in transit. Every unit has 12 monthly ledgers; every manifest has its 转出 row in the shipper's ledger
and, once received, its 转入 row in the receiver's (1,000 rows without a number, 1,000 citing unknown numbers,
1 % of 转入 rows with another quantity) — 2 million transfer rows.

Measured in one process:
- manifest trace (``trace_manifest``, the use case behind ``GET /api/v1/manifests/{no}/trace``) for 300 random
  manifests, warm (the per-(year, code) graph cached): p50 / p95 / max;
- baseline, same run: the naive trace (``cache=False``: aggregate the year's manifests and ledgers of the code for
  every request) on 20 of them; the ratio of p95s is printed;
- the anomaly list for the city (``list_anomalies`` as a city regulator): all kinds, wall time, cold (fills the
  per-year cache), warm, and with the cache off as the baseline; then each kind with the cache off. A cold list
  of all kinds runs the reconciliation (the heaviest kind, ~4 s alone) on a second connection while the other
  kinds are computed, so its wall time is about the reconciliation's on an otherwise idle 2-core machine.

Run: ``.venv/bin/python -m bench.b3_trace [--manifests 1000000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/nofei_b3]``
(the database is created if missing; its public schema is dropped and rebuilt). ``--reuse`` skips generation,
``--generate-only`` stops after it (generate niced, then time with ``flock /work/wt/bench.lock … --reuse``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta

DISTRICTS = ["630102", "630103", "630104", "630105", "630106", "630121", "630123"]
CODES = ["900-199-08", "900-200-08", "900-201-08", "900-203-08"]
YEAR = 2024


def _copy(conn, table: str, cols: list[str], rows) -> int:  # type: ignore[no-untyped-def]
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
            n += 1
    return n


def generate(url: str, n_manifests: int, seed: int = 3) -> dict[str, int]:
    import psycopg
    from sqlalchemy import text

    from nofei.domain.units import make_credit_code
    from nofei.storage.engine import make_engine
    from nofei.storage.migrate import upgrade

    rnd = random.Random(seed)
    eng = make_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    upgrade(eng)
    with eng.begin() as c:  # PostgreSQL: the year's partitions, as made ahead on a service start
        from nofei.storage.partitions import ensure_year

        ensure_year(c, YEAR)
    eng.dispose()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC)
    counts: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        kinds = ["producer"] * 2000 + ["collector"] * 20 + ["disposer"] * 10
        units = []
        for i, k in enumerate(kinds, start=1):
            d = DISTRICTS[i % len(DISTRICTS)]
            units.append((i, make_credit_code(d, f"BM{i:07d}"), f"{k}{i}", d, [k]))
        import json

        counts["unit"] = _copy(conn, "unit", ["id", "credit_code", "name", "district", "roles", "created_at", "updated_at"],
                               ((u[0], u[1], u[2], u[3], json.dumps(u[4]), now, now) for u in units))
        coll = [u for u in units if u[4] == ["collector"]]
        disp = [u for u in units if u[4] == ["disposer"]]
        prod = [u for u in units if u[4] == ["producer"]]
        counts["permit"] = _copy(conn, "permit", ["unit_id", "number", "waste_codes", "methods", "capacity_kg"],
                                 ((u[0], f"P{u[0]}", json.dumps(["HW08"]), json.dumps(["D10", "R9"]), 10**11)
                                  for u in coll + disp))
        # ledgers: one per unit and month (ids known in advance)
        lid = {}
        led = []
        for u in units:
            for m in range(1, 13):
                lid[(u[0], m)] = len(led) + 1
                led.append((len(led) + 1, u[0], f"{YEAR}-{m:02d}", YEAR, 1, True, "0" * 64, now, json.dumps({}),
                            json.dumps({}), json.dumps([]), "", 0, "", "", "", u[2]))
        counts["ledger"] = _copy(conn, "ledger", ["id", "unit_id", "month", "year", "version", "is_current", "sha256",
                                                  "uploaded_at", "row_counts", "totals", "warnings", "filename", "size",
                                                  "uploaded_by", "reporter", "phone", "unit_name"], led)
        man, lines, tin, tout = [], [], [], []
        serial: dict[str, int] = {}
        t0 = datetime(YEAR, 1, 1, tzinfo=UTC)
        gen = {}  # (unit, code, month) -> kg generated
        for mid in range(1, n_manifests + 1):
            x = rnd.random()
            if x < 0.85:
                a, b = rnd.choice(prod), rnd.choice(coll)
            elif x < 0.95:
                a, b = rnd.choice(coll), rnd.choice(disp)
            else:
                a, b = rnd.choice(prod), rnd.choice(disp)
            code = CODES[mid % len(CODES)]
            shipped = t0 + timedelta(seconds=rnd.randrange(0, 360 * 86400))
            pd = shipped.date()
            key = f"{YEAR}{a[1][2:6]}"
            serial[key] = serial.get(key, 0) + 1
            no = f"{key}{serial[key]:06d}"
            kg = rnd.randrange(200, 20_000)
            y = rnd.random()
            if y < 0.025:
                status, rec_at, rec_kg, disc = "in_transit", None, None, False
            else:
                status = "received"
                rec_at = shipped + timedelta(days=rnd.choice([1, 1, 2, 3]) if rnd.random() > 0.01 else 14)
                disc = rnd.random() < 0.01
                rec_kg = kg if not disc else int(kg * 0.8) - 200
            man.append((mid, no, 1, True, a[0], b[1], None, status, pd, shipped, rec_at, "青A00000", "王", now, "bench", now))
            lines.append((mid, 1, code, kg, rec_kg, "D10" if rec_kg is not None else None, disc))
            m = pd.month
            if a[4] == ["producer"]:
                gen[(a[0], code, m)] = gen.get((a[0], code, m), 0) + kg
            tout.append((lid[(a[0], m)], "out", pd, code, "hazardous", kg, b[1], no if mid > 1000 else None, "", ""))
            if rec_kg is not None:
                ikg = rec_kg if rnd.random() > 0.01 else rec_kg + 5000
                tin.append((lid[(b[0], rec_at.month if rec_at.year == YEAR else 12)], "in", rec_at.date(), code,
                            "hazardous", ikg, a[1], no, "", ""))
        for k in range(1000):
            tout.append((lid[(prod[k][0], 6)], "out", date(YEAR, 6, 1), CODES[0], "hazardous", 1000, coll[0][1],
                         f"{YEAR}9999{k:06d}", "", ""))
        counts["manifest"] = _copy(conn, "manifest", [
            "id", "number", "version", "is_current", "shipper_id", "receiver_code", "carrier_code", "status",
            "planned_date", "shipped_at", "received_at", "vehicle", "driver", "created_at", "created_by", "updated_at"], man)
        del man
        counts["manifest_line"] = _copy(conn, "manifest_line", [
            "manifest_id", "line_no", "waste_code", "quantity_kg", "received_kg", "method", "discrepancy"], lines)
        del lines
        counts["transfer_entry"] = _copy(conn, "transfer_entry", [
            "ledger_id", "direction", "day", "code", "stream", "qty_kg", "counterpart", "manifest_no", "counterpart_name",
            "note"], tout + tin)
        stock = []
        treat = []
        for u in units:
            for code in CODES:
                for m in range(1, 13):
                    g = gen.get((u[0], code, m), 0)
                    stock.append((lid[(u[0], m)], code, "hazardous", 0, g, 0, "", ""))
                    if u[4] == ["disposer"]:
                        treat.append((lid[(u[0], m)], code, "hazardous", "D10", 1_000_000, "", ""))
                    if u[4] == ["collector"] and m % 3 == 0:
                        treat.append((lid[(u[0], m)], code, "hazardous", "R9", 500_000, "", ""))
        counts["stock_entry"] = _copy(conn, "stock_entry", ["ledger_id", "code", "stream", "open_kg", "generated_kg",
                                                            "close_kg", "name", "note"], stock)
        counts["treatment_entry"] = _copy(conn, "treatment_entry", ["ledger_id", "code", "stream", "method", "qty_kg",
                                                                      "product", "note"],
                                          treat)
        for table in ("unit", "ledger", "manifest", "manifest_line", "transfer_entry"):  # ids COPYed: move the sequences on
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                         f"(SELECT coalesce(max(id), 1) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    return counts


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifests", type=int, default=999_999)  # the 6-digit serial caps one prefecture-year
    ap.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/nofei_b3")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--trace-only", action="store_true", help="skip the anomaly list (a short re-run of B3's trace)")
    ap.add_argument("--naive", type=int, default=20, help="manifests traced by the naive baseline (≈ 17 s each now)")
    ap.add_argument("--generate-only", action="store_true", help="generate (run it niced, outside the bench lock)")
    args = ap.parse_args()

    import psycopg
    from sqlalchemy import select

    from ledgers import anomalies, trace
    from nofei.access import Actor
    from nofei.storage.engine import make_engine, make_session_factory
    from nofei.storage.tables import ManifestRow
    from nofei.storage.uow import UnitOfWork

    base, dbname = args.url.rsplit("/", 1)
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            c.execute(f'CREATE DATABASE "{dbname}"')
    if not args.reuse:
        t = time.perf_counter()
        counts = generate(args.url, args.manifests)
        print(f"generated in {time.perf_counter() - t:.1f} s: {counts}")
    eng = make_engine(args.url)
    if not args.reuse:
        from nofei.storage import flowstore

        with eng.begin() as c:  # the edge summaries an upload writes with its rows, for the bulk-loaded ones
            flowstore.backfill(c)
        with eng.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    if args.generate_only:
        return
    sessions = make_session_factory(eng)
    settings = {"DISCREPANCY_RATIO": "0.05", "DISCREPANCY_MIN_KG": 100, "RECEIPT_WORKING_DAYS": 5,
                "STORAGE_LIMIT_DAYS": 365}
    city = Actor("regulator", name="bench", district="630100")

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions, settings=settings)

    with uow() as u:
        n_total = u.session.execute(select(ManifestRow.id).order_by(ManifestRow.id.desc()).limit(1)).scalar_one()
    rnd = random.Random(11)
    with uow() as u:
        numbers = [u.session.execute(select(ManifestRow.number).where(ManifestRow.id == rnd.randrange(1, n_total + 1))
                                     ).scalar_one() for _ in range(args.samples)]
    # warm-up: build each (year, code) graph once
    t = time.perf_counter()
    for no in numbers[:40]:
        with uow() as u:
            trace.trace_manifest(uow=u, actor=city, number=no)
    print(f"warm-up (the year's flow model built once + 40 traces): {time.perf_counter() - t:.2f} s")
    warm = []
    hops = 0
    for no in numbers:
        t = time.perf_counter()
        with uow() as u:
            r = trace.trace_manifest(uow=u, actor=city, number=no)
        warm.append((time.perf_counter() - t) * 1000)
        hops += sum(len(f["hops"]) for f in r["forward"] + r["backward"])
    naive = []
    for no in numbers[:args.naive]:
        t = time.perf_counter()
        with uow() as u:
            trace.trace_manifest(uow=u, actor=city, number=no, cache=False)
        naive.append((time.perf_counter() - t) * 1000)
    print(f"manifest trace, warm, {len(warm)} manifests ({hops / len(warm):.0f} hops each on average): "
          f"p50 {statistics.median(warm):.1f} ms, p95 {pct(warm, 95):.1f} ms, max {max(warm):.1f} ms "
          f"(target p95 < 100 ms)")
    print(f"baseline naive trace (no cache: aggregate per request), {len(naive)} manifests: "
          f"p50 {statistics.median(naive):.0f} ms, p95 {pct(naive, 95):.0f} ms  → ratio p95 naive/warm "
          f"{pct(naive, 95) / pct(warm, 95):.0f}×")
    if args.trace_only:
        eng.dispose()
        return
    anomalies._CACHE.clear()
    times = {}
    for run, cache in (("cold (first request, fills the per-year cache)", True), ("warm (cached)", True),
                       ("warm again", True), ("baseline, cache off", False)):
        t = time.perf_counter()
        with uow() as u:
            items = anomalies.list_anomalies(uow=u, actor=city, year=YEAR, cache=cache,
                                             as_of=datetime(YEAR + 1, 3, 1, tzinfo=UTC))
        dt = times[run] = time.perf_counter() - t
        by = anomalies.summary(items)
        print(f"anomaly list, city, all kinds, {run}: {dt:.2f} s, {len(items)} anomalies "
              f"{ {k: v['count'] for k, v in by.items() if v['count']} } (target < 5 s)")
    print(f"  ratio cache off / warm: {times['baseline, cache off'] / times['warm (cached)']:.0f}x")
    for k in anomalies.KINDS:
        t = time.perf_counter()
        with uow() as u:
            n = len(anomalies.list_anomalies(uow=u, actor=city, year=YEAR, kind=k, cache=False,
                                             as_of=datetime(YEAR + 1, 3, 1, tzinfo=UTC)))
        print(f"  {k} (cache off): {time.perf_counter() - t:.2f} s ({n})")
    eng.dispose()


if __name__ == "__main__":
    main()
