"""B5: building the demo city (``nofei demo``, issue 8).

Workload: the demo's synthetic Xining (``api.demo.city.plan_city``, seed 1, ``--units`` units, the
last full year: about 11 monthly ledgers and 7 manifests per unit), built into a fresh SQLite file
  (a) through the real path, as ``nofei demo`` does by default: units via ``registry.import_units``,
      manifests through ``ledgers.manifests`` create → ship → receive, every monthly ledger written by
      ``imports.write_ledger_workbook``, read back by ``imports.read_monthly_ledger`` and accepted by
      ``ledgers.ledger.submit_monthly_ledger`` (workbooks written in ``--jobs`` worker processes);
  (b) baseline in the same run: the ``--fast`` path (bulk inserts, no workbooks) for the same city.
Also the per-ledger cost of each step of (a) on a sample, in this process, to show where time goes,
with the writer's own baseline: the same workbooks built cell by cell with openpyxl
(``imports.writer.write_ledger_workbook_openpyxl``, what ``write_ledger_workbook`` did before).
``--large N`` adds a plan + fast build of an N-unit city (the benchmark-sized one).

Run: ``.venv/bin/python -m bench.b5_demo [--units 250] [--jobs N] [--large 5000]``
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from api.demo import load
from api.demo.city import plan_city
from nofei.storage.engine import make_engine, make_session_factory
from nofei.storage.migrate import upgrade
from nofei.storage.uow import UnitOfWork


def fresh(path: Path):
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            p.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    return engine, (lambda: UnitOfWork(sessions))


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def build(path: Path, city, *, fast: bool, jobs: int) -> tuple[float, float, load.BuildReport]:
    engine, factory = fresh(path)
    c0, t0 = cpu(), time.perf_counter()
    rep = load.build(factory, city, fast=fast, jobs=jobs, today=date.today())
    wall, used = time.perf_counter() - t0, cpu() - c0
    engine.dispose()
    return wall, used, rep


def per_ledger(city, sample: int) -> dict[str, float]:
    """ms per ledger for write, read and submit, on ``sample`` ledgers of the city (own database)."""
    from imports import read_monthly_ledger, write_ledger_workbook
    from imports.writer import write_ledger_workbook_openpyxl
    from ledgers import registry
    from ledgers.ledger import submit_monthly_ledger
    from nofei.access import SYSTEM
    from nofei.catalogue import Catalogue

    cat = Catalogue.default()
    with tempfile.TemporaryDirectory() as tmp:
        engine, factory = fresh(Path(tmp) / "sample.db")
        with factory() as uow:
            registry.import_units(uow=uow, actor=SYSTEM, items=[u.payload() for u in city.units])
        drafts = [d for d in city.drafts if not any(t.manifest_no for t in d.transfers)][:sample]
        write_ledger_workbook(drafts[0], cat)  # the template's parts, rendered once per process
        t_old = time.perf_counter()
        for d in drafts:  # the writer's baseline: the same files built cell by cell with openpyxl
            write_ledger_workbook_openpyxl(d, cat)
        t0 = time.perf_counter()
        files = [write_ledger_workbook(d, cat) for d in drafts]
        t1 = time.perf_counter()
        reads = [read_monthly_ledger(f, filename="x.xlsx", catalogue=cat) for f in files]
        t2 = time.perf_counter()
        for f, r in zip(files, reads, strict=True):
            with factory() as uow:
                submit_monthly_ledger(uow=uow, actor=SYSTEM, draft=r, content=f, filename="x.xlsx")
        t3 = time.perf_counter()
        engine.dispose()
    n = len(drafts)
    return {"write": (t1 - t0) / n * 1000, "write with openpyxl (baseline)": (t0 - t_old) / n * 1000,
            "read": (t2 - t1) / n * 1000, "submit": (t3 - t2) / n * 1000}


def main() -> None:
    from api.commands.demo import DEFAULT_UNITS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=DEFAULT_UNITS)
    ap.add_argument("--jobs", type=int, default=max(1, min(4, (os.cpu_count() or 1) - 1)),
                    help="worker processes writing workbooks (the demo's default: CPUs - 1)")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--large", type=int, default=0, help="also plan and fast-build a city of this many units")
    ap.add_argument("--dir", type=Path, default=Path("bench/out"))
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    year = date.today().year - 1
    print(f"B5 demo city: seed 1, {a.units} units, {year}; jobs {a.jobs}; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    city = plan_city(seed=1, units=a.units, year=year)
    print(f"  plan: {time.perf_counter() - t0:.2f} s — {len(city.units)} units, {len(city.drafts)} ledgers, "
          f"{len(city.manifests)} manifests, {sum(len(d.transfers) for d in city.drafts)} transfer rows")
    wall_a, cpu_a, rep = build(a.dir / "b5_import.db", city, fast=False, jobs=a.jobs)
    print(f"  (a) import path: {wall_a:.1f} s wall, {cpu_a:.1f} s CPU (all processes) — "
          + ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items()))
    wall_b, cpu_b, _ = build(a.dir / "b5_fast.db", city, fast=True, jobs=0)
    print(f"  (b) fast path (baseline): {wall_b:.1f} s wall, {cpu_b:.1f} s CPU")
    print(f"  ratio import/fast: {wall_a / wall_b:.1f}× wall, {cpu_a / cpu_b:.1f}× CPU")
    ms = per_ledger(city, a.sample)
    print("  per ledger (ms, one process): " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
    print(f"  writer: {ms['write with openpyxl (baseline)'] / ms['write']:.1f}× faster than openpyxl cell by cell")
    if a.large:
        t0 = time.perf_counter()
        big = plan_city(seed=1, units=a.large, year=year)
        plan_s = time.perf_counter() - t0
        wall, used, rep = build(a.dir / "b5_large.db", big, fast=True, jobs=0)
        print(f"  large city --units {a.large} --fast: plan {plan_s:.1f} s + build {wall:.1f} s "
              f"({used:.1f} s CPU) — {len(big.units)} units, {rep.ledgers} ledgers, {rep.manifests} manifests, "
              f"{sum(len(d.transfers) for d in big.drafts)} transfer rows")


if __name__ == "__main__":
    main()
