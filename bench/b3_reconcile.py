"""B3-reconcile: the three-way reconciliation alone over B3's year of 1,000,000 manifests (PostgreSQL).

Workload: the database ``bench.b3_trace --generate-only`` writes (one year, 999,999 manifests, 1,975,916 transfer
rows citing their numbers, 2,030 units). The year's flow model is built first (as the B3 anomaly list finds it,
after the traces); then ``list_anomalies(kind="reconciliation", cache=False)`` as the city's regulator, ``--runs``
times, printing each wall time, the median, the process's peak RSS and the number of findings; then, ``--steps``
times, a producer's month amended through ``submit_monthly_ledger`` (a 40-row workbook) and a manifest in transit
received through the use case, each followed by the same list (what a regulator waits for after a write).

Run it on two checkouts against the same database, alternately, to pair a change with its baseline (issue 12:
the reconciliation read from the one flow model against the SQL aggregate it replaced)."""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from datetime import UTC, date, datetime

from sqlalchemy import text

from bench.b4_load import ledger as ledger_workbook
from imports import read_monthly_ledger
from ledgers import anomalies
from ledgers import ledger as ledger_uc
from ledgers import manifests as man
from nofei.access import SYSTEM, Actor
from nofei.catalogue import CITY, Catalogue
from nofei.storage import flowdata
from nofei.storage.engine import make_engine, make_session_factory
from nofei.storage.uow import UnitOfWork

YEAR = 2024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    eng = make_engine(args.url)
    sessions = make_session_factory(eng)
    city = Actor("regulator", name="bench", district=CITY)
    t = time.perf_counter()
    with UnitOfWork(sessions) as u:
        flowdata.year_flows(u.session, YEAR, catalogue=u.catalogue)
    print(f"model built in {time.perf_counter() - t:.2f} s")
    found = [0]

    def recon() -> float:
        t = time.perf_counter()
        with UnitOfWork(sessions) as u:
            found[0] = len(anomalies.list_anomalies(uow=u, actor=city, year=YEAR, kind="reconciliation", cache=False,
                                                    as_of=datetime(YEAR + 1, 3, 1, tzinfo=UTC)))
        return time.perf_counter() - t

    times = []
    for _ in range(args.runs):
        times.append(recon())
        print(f"reconciliation (cache off): {times[-1]:.2f} s, {found[0]} findings")
    n = found[0]
    rnd = random.Random(3)
    with sessions() as s:
        producers = s.execute(text("SELECT credit_code FROM unit WHERE roles::text LIKE '%producer%' ORDER BY id"
                                   )).scalars().all()
        transit = s.execute(text("SELECT number FROM manifest WHERE status = 'in_transit' AND is_current "
                                 "ORDER BY number LIMIT :n"), {"n": args.steps}).scalars().all()
    after: dict[str, list[float]] = {"ledger": [], "manifest": []}
    for i in range(args.steps):
        cc = rnd.choice(producers)
        data = ledger_workbook(cc, f"{YEAR}-{rnd.randint(1, 12):02d}", 40, seed=i)
        draft = read_monthly_ledger(data, filename="amend.xlsx", catalogue=Catalogue.default(), today=date.today())
        ledger_uc.submit_monthly_ledger(uow=UnitOfWork(sessions), actor=SYSTEM, draft=draft, content=data,
                                        filename="amend.xlsx")
        after["ledger"].append(recon())
        with UnitOfWork(sessions) as u:  # B3's 2024 serials are all used: receive one still in transit
            man.receive_manifest(uow=u, actor=SYSTEM, number=transit[i], data={
                "time": datetime(YEAR, 12, 20, 9, tzinfo=UTC),
                "lines": [{"line_no": 1, "received_t": "1", "method": "R9"}]})
        after["manifest"].append(recon())
        print(f"  step {i + 1}: after a ledger amendment {after['ledger'][-1]:.2f} s, "
              f"after a manifest step {after['manifest'][-1]:.2f} s")
    for k, v in after.items():
        if v:
            print(f"after a {k} write: median {statistics.median(v):.2f} s over {len(v)}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median {statistics.median(times):.2f} s over {len(times)} runs; peak RSS {rss:.0f} MiB; {n} findings")
    eng.dispose()


if __name__ == "__main__":
    main()
