"""B6: a province on PostgreSQL — 50,000 units, 10 M transfer rows, one year (issue 12, "beyond one city").

Workload: the B2 city (``bench.b2_indicators``: 5,000 units, 12 monthly ledgers each, ~1 M 转出/转入 rows,
producers → 1–3 contracted receivers (mostly collectors) → 3–8 facilities, five streams) repeated as ten
cities of one province, each city's units with their own ids and credit codes, written with COPY into the
partitioned tables (migration h12_year_partitions) and summarised into ``flow_edge`` / ``flow_year_edge``
the way an upload does (``flowstore.backfill``). ``--cities`` scales it: 1 = one city (5,000 units, ~1 M
rows), 10 = the province. Flows stay within a city (the B2 generator's shape); the app has one region scope
(``630100`` = every unit of the database), so "the province" here is that scope over 50,000 units.

Measured, in a process of its own (generate first, niced, outside the bench lock):
- cold: the nine indicators for the whole scope and its 7 districts from an empty cache (``compute_indicators``,
  the use case behind ``GET /api/v1/indicators``), graph build included (target < 15 s);
- warm: the same read of the scope again;
- after one amendment: a producer's month re-uploaded through the use case (``submit_monthly_ledger``, a
  40-row workbook), then the scope's indicators read (target < 300 ms); 5 amendments, median and max;
- peak RSS of the measuring process (target < 4 GB).

Run: ``nice -n 19 .venv/bin/python -m bench.b6_province --cities 10 --generate-only`` then
``flock /work/wt/bench.lock .venv/bin/python -m bench.b6_province --cities 10 --reuse``
(``--url`` default ``postgresql+psycopg://postgres@127.0.0.1:5432/nofei_b6``; created if missing, its public
schema dropped and rebuilt when generating).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from bench.b2_indicators import D_METHOD, DISTRICTS, STREAM_CODES, STREAM_WEIGHTS, U_METHOD, credit

YEAR = 2025
CITY_UNITS = 5000
CITY_ROWS = 1_000_000


def _copy(cur: Any, table: str, cols: list[str], rows: Any) -> int:
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
            n += 1
    return n


def _city(cur: Any, k: int, n_units: int, target_rows: int, rnd: random.Random, serial0: int) -> tuple[dict, int]:
    """One city of the B2 shape (``bench.b2_indicators.generate``), units ``k*5000+1…``, COPYed; returns counts
    and the last manifest serial used."""
    now = datetime.now(UTC)
    base = k * CITY_UNITS
    n_coll, n_util, n_disp = int(n_units * 0.12), int(n_units * 0.05), int(n_units * 0.03)
    n_prod = n_units - n_coll - n_util - n_disp
    roles = ["producer"] * n_prod + ["collector"] * n_coll + ["utiliser"] * n_util + ["disposer"] * n_disp
    units = []
    for i, role in enumerate(roles):
        uid = base + i + 1
        d = DISTRICTS[uid % len(DISTRICTS)]
        units.append((uid, credit(uid, d), f"单位{uid}", d, f'["{role}"]', now, now))
    collectors = [u for u in units if '"collector"' in u[4]]
    facilities = [u for u in units if '"utiliser"' in u[4] or '"disposer"' in u[4]]
    streams = list(STREAM_CODES)
    prod_stream = {u[0]: rnd.choices(streams, STREAM_WEIGHTS)[0] for u in units if '"producer"' in u[4]}
    prod_code = {uid: rnd.choice(STREAM_CODES[s]) for uid, s in prod_stream.items()}
    per_pm = max(1.0, target_rows / 2 / (n_prod * 12) / 1.8)
    contracts = {uid: [rnd.choice(collectors) if rnd.random() < 0.75 else rnd.choice(facilities)
                       for _ in range(rnd.randint(1, 3))] for uid in prod_code}
    outlets = {c[0]: [rnd.choice(facilities) for _ in range(rnd.randint(3, 8))] + [rnd.choice(collectors)]
               for c in collectors}

    def lid(uid: int, m: int) -> int:
        return (uid - 1) * 12 + m

    ledgers = [(lid(u[0], m), u[0], f"{YEAR}-{m:02d}", YEAR, 1, True, "0" * 64, "", 0, now, "bench", "", "", "",
                "{}", "{}", "[]") for u in units for m in range(1, 13)]
    stocks: list[tuple] = []
    treats: list[tuple] = []
    transfers: list[tuple] = []
    recv: dict[tuple[int, int, str], int] = defaultdict(int)
    stream_of_code = {c: s for s, cs in STREAM_CODES.items() for c in cs}
    serial = serial0

    def add(src: tuple, dst_code: str, dst_id: int | None, m: int, code: str, kg: int) -> None:
        nonlocal serial
        serial += 1
        s = stream_of_code[code]
        man = None
        if s in ("hazardous", "medical"):
            man = f"{YEAR}{m:02d}{serial:08d}" if rnd.random() > 0.03 else (None if rnd.random() < 0.5 else "12345")
        day = date(YEAR, m, rnd.randint(1, 28))
        transfers.append((lid(src[0], m), "out", day, code, s, kg, dst_code, man, "", ""))
        if dst_id is not None:
            transfers.append((lid(dst_id, m), "in", day, code, s, kg, src[1], man, "", ""))
            recv[(dst_id, m, code)] += kg

    unreg = [credit(900000 + i, "630123") for i in range(20)]
    for u in units:
        uid = u[0]
        if uid not in prod_code:
            continue
        code, s = prod_code[uid], prod_stream[uid]
        for m in range(1, 13):
            gen = 0
            for _ in range(max(1, int(np.random.poisson(per_pm)))):
                kg = rnd.randint(200, 20_000)
                gen += kg
                if rnd.random() < 0.005:
                    add(u, rnd.choice(unreg), None, m, code, kg)
                    continue
                dst = rnd.choice(contracts[uid])
                add(u, dst[1], dst[0], m, code, kg)
            own = rnd.randint(0, 5_000) if s != "medical" else 0
            if own:
                treats.append((lid(uid, m), code, s, U_METHOD[s] if rnd.random() < 0.6 else D_METHOD[s], own, "", ""))
            stocks.append((lid(uid, m), code, s, 0, gen + own, 0, "", ""))
    coll_close: dict[tuple[int, str], int] = defaultdict(int)
    for m in range(1, 13):
        by_unit: dict[int, list[str]] = defaultdict(list)
        for (uid, mm, code) in list(recv):
            if mm == m:
                by_unit[uid].append(code)
        for c in collectors:
            for code in sorted(by_unit.get(c[0], [])):
                opening = coll_close[(c[0], code)]
                avail = opening + recv[(c[0], m, code)]
                send = int(avail * rnd.uniform(0.85, 1.0))
                parts = max(1, min(12, send // 8000))
                left = send
                for p in range(parts):
                    kg = left if p == parts - 1 else send // parts
                    left -= kg
                    if kg <= 0:
                        continue
                    dst = rnd.choice(outlets[c[0]])
                    if dst[0] == c[0] or (rnd.random() < 0.9 and '"collector"' in dst[4]):
                        dst = outlets[c[0]][0]
                    add(c, dst[1], dst[0], m, code, kg)
                coll_close[(c[0], code)] = avail - send
                stocks.append((lid(c[0], m), code, stream_of_code[code], opening, 0, avail - send, "", ""))
        for f in facilities:
            for code in sorted(by_unit.get(f[0], [])):
                s = stream_of_code[code]
                meth = U_METHOD[s] if '"utiliser"' in f[4] else D_METHOD[s]
                treats.append((lid(f[0], m), code, s, meth, recv[(f[0], m, code)], "", ""))
                stocks.append((lid(f[0], m), code, s, 0, 0, 0, "", ""))
    counts = {
        "unit": _copy(cur, "unit", ["id", "credit_code", "name", "district", "roles", "created_at", "updated_at"], units),
        "ledger": _copy(cur, "ledger", ["id", "unit_id", "month", "year", "version", "is_current", "sha256", "filename",
                                        "size", "uploaded_at", "uploaded_by", "reporter", "phone", "unit_name",
                                        "row_counts", "totals", "warnings"], ledgers),
        "stock_entry": _copy(cur, "stock_entry", ["ledger_id", "code", "stream", "open_kg", "generated_kg", "close_kg",
                                                  "name", "note"], stocks),
        "treatment_entry": _copy(cur, "treatment_entry", ["ledger_id", "code", "stream", "method", "qty_kg", "product",
                                                          "note"], treats),
        "transfer_entry": _copy(cur, "transfer_entry", ["ledger_id", "direction", "day", "code", "stream", "qty_kg",
                                                        "counterpart", "manifest_no", "counterpart_name", "note"],
                                transfers),
    }
    return counts, serial


def generate(url: str, cities: float, seed: int = 7, *, fresh: bool = True) -> dict[str, int]:
    """Write ``cities`` cities of the B2 shape (a fraction: a smaller last city) into ``url``; returns row counts.
    ``fresh``: drop and rebuild the public schema first."""
    import psycopg
    from sqlalchemy import text

    from nofei.storage import flowstore
    from nofei.storage.engine import make_engine
    from nofei.storage.migrate import upgrade
    from nofei.storage.partitions import ensure_year

    eng = make_engine(url)
    if fresh:
        with eng.begin() as c:
            c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            c.execute(text("CREATE SCHEMA public"))
    upgrade(eng)
    with eng.begin() as c:
        ensure_year(c, YEAR)
    rnd = random.Random(seed)
    np.random.seed(seed)
    total: dict[str, int] = defaultdict(int)
    serial = 0
    k = 0
    left = cities
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
        while left > 1e-9:
            part = min(1.0, left)
            t = time.perf_counter()
            counts, serial = _city(cur, k, int(CITY_UNITS * part), int(CITY_ROWS * part), rnd, serial)
            conn.commit()
            for key, v in counts.items():
                total[key] += v
            print(f"  city {k + 1}: {counts['unit']} units, {counts['transfer_entry']} transfer rows in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
            left -= part
            k += 1
        for table, col in (("unit", "id"), ("ledger", "id")):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), (SELECT max({col}) FROM {table}))")
        conn.commit()
    t = time.perf_counter()
    with eng.begin() as c:  # the per-ledger summaries an upload writes in its transaction, for the bulk rows
        flowstore.backfill(c)
    with eng.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(f"  flow summaries + VACUUM ANALYZE: {time.perf_counter() - t:.1f} s", flush=True)
    eng.dispose()
    return dict(total)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, amendments: int) -> dict[str, Any]:
    from sqlalchemy import text

    from bench.b4_load import ledger as ledger_workbook
    from imports import read_monthly_ledger
    from ledgers import ledger as ledger_uc
    from nofei.access import SYSTEM
    from nofei.catalogue import CITY, Catalogue
    from nofei.storage import flowdata
    from nofei.storage.engine import make_engine, make_session_factory
    from nofei.storage.uow import UnitOfWork
    from reports.indicators import compute_indicators

    eng = make_engine(url)
    sessions = make_session_factory(eng)
    cat = Catalogue.default()
    with sessions() as s:
        n_tx = s.execute(text("SELECT count(*) FROM transfer_entry")).scalar_one()
        n_units = s.execute(text("SELECT count(*) FROM unit")).scalar_one()
        n_fy = s.execute(text("SELECT count(*) FROM flow_year_edge WHERE year = :y"), {"y": YEAR}).scalar_one()
        producers = s.execute(text("SELECT credit_code FROM unit WHERE roles::text LIKE '%producer%' ORDER BY id"
                                   )).scalars().all()
    print(f"workload: {n_units} units, {n_tx} transfer rows, {n_fy} flow_year_edge rows of {YEAR}", flush=True)

    def read(region: str = CITY) -> float:
        t = time.perf_counter()
        compute_indicators(uow=UnitOfWork(sessions, catalogue=cat), actor=SYSTEM, year=YEAR, region=region)
        return time.perf_counter() - t

    flowdata.clear_cache()
    t0 = time.perf_counter()
    first = read()
    for d in DISTRICTS:
        read(d)
    cold = time.perf_counter() - t0
    print(f"cold: scope + {len(DISTRICTS)} districts {cold:.2f} s (scope alone {first:.2f} s; target < 15 s); "
          f"RSS {_rss_mib():.0f} MiB", flush=True)
    warm = [read() for _ in range(3)]
    print(f"warm read of the scope: median {statistics.median(warm) * 1000:.0f} ms", flush=True)
    rnd = random.Random(5)
    after, submit = [], []
    for i in range(amendments):
        cc = rnd.choice(producers)
        data = ledger_workbook(cc, f"{YEAR}-{rnd.randint(1, 12):02d}", 40, seed=i)
        t = time.perf_counter()
        draft = read_monthly_ledger(data, filename="amend.xlsx", catalogue=cat, today=date.today())
        rc = ledger_uc.submit_monthly_ledger(uow=UnitOfWork(sessions, catalogue=cat), actor=SYSTEM, draft=draft,
                                     content=data, filename="amend.xlsx")
        submit.append(time.perf_counter() - t)
        after.append(read())
        print(f"  amendment {i + 1}: {cc} {rc['month']} v{rc['version']}: submit {submit[-1] * 1000:.0f} ms, "
              f"next read {after[-1] * 1000:.0f} ms", flush=True)
    out = {"units": n_units, "transfer_rows": n_tx, "cold_s": round(cold, 2), "cold_scope_s": round(first, 2),
           "warm_ms": round(statistics.median(warm) * 1000), "after_amendment_median_ms":
           round(statistics.median(after) * 1000), "after_amendment_max_ms": round(max(after) * 1000),
           "submit_median_ms": round(statistics.median(submit) * 1000), "peak_rss_mib": round(_rss_mib())}
    print(f"after one amendment: median {out['after_amendment_median_ms']} ms, max {out['after_amendment_max_ms']} "
          f"ms (target < 300 ms); peak RSS {out['peak_rss_mib']} MiB (target < 4096)")
    print(out)
    eng.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cities", type=float, default=10.0, help="cities of 5,000 units / ~1 M rows (10 = province)")
    ap.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/nofei_b6")
    ap.add_argument("--reuse", action="store_true", help="measure the database as it is")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--amendments", type=int, default=5)
    args = ap.parse_args()
    import psycopg

    base, dbname = args.url.rsplit("/", 1)
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            c.execute(f'CREATE DATABASE "{dbname}"')
    if not args.reuse:
        t = time.perf_counter()
        counts = generate(args.url, args.cities)
        print(f"generated in {time.perf_counter() - t:.1f} s: {counts}", flush=True)
    if not args.generate_only:
        measure(args.url, args.amendments)


if __name__ == "__main__":
    main()
