"""B1 side measurement: where the PostgreSQL store of 100,000 转出 rows spends its time (issue 3).

Binary COPY (as ``nofei.storage.ledgerstore`` does it) of the same 100,000 synthetic rows into
``transfer_entry`` and into scratch copies of it with more or fewer indexes and with the per-row
foreign key of the first schema or the statement-level guard of migration ``pg_transfer_ledger_guard``;
each variant runs in a transaction that is rolled back, variants interleaved, medians printed. It only
measures: nothing of the schema changes. Needs a database that the B1 benchmark has filled (it uses the
newest ``ledger`` row as the parent).

Run: ``.venv/bin/python -m bench.b1_copy_cost --pg postgresql://postgres@127.0.0.1:5432/nofei_pgstore``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import date
from typing import Any

COLS = ("ledger_id,row,direction,day,code,stream,qty_kg,counterpart,counterpart_name,manifest_no,carrier,"
        "planned_method,note")
TYPES = ["int4", "int4", "varchar", "date", "varchar", "varchar", "int8", "varchar", "varchar", "varchar", "varchar",
         "varchar", "varchar"]
_LIKE = "create table v (like transfer_entry including defaults)"
_PK = "alter table v add primary key (id)"
_FK = "alter table v add foreign key (ledger_id) references ledger(id)"
_IDX = ["create index on v (ledger_id)", "create index on v (manifest_no) where manifest_no is not null",
        "create index on v (ledger_id) where manifest_no is null"]
# the statement-level check of migration pg_transfer_ledger_guard, on the scratch table
_GUARD = ("create trigger v_guard after insert on v referencing new table as new_rows for each statement "
          "execute function nofei_transfer_ledger_check()")
_C = 'alter table v alter column manifest_no type varchar(32) collate "C"'
VARIANTS: dict[str, list[str]] = {
    "transfer_entry as is": [],
    "copy: PK + 3 indexes + statement guard (the schema)": [_LIKE, _PK, *_IDX, _GUARD],
    "copy: PK + 3 indexes + per-row foreign key (before)": [_LIKE, _PK, _FK, *_IDX],
    "copy: PK + 3 indexes, no check": [_LIKE, _PK, *_IDX],
    "copy: same, manifest_no COLLATE \"C\"": [_LIKE, _C, _PK, *_IDX, _GUARD],
    "copy: PK + ledger_id index + guard (no manifest indexes)": [_LIKE, _PK, _IDX[0], _GUARD],
    "copy: PK only": [_LIKE, _PK],
    "copy: no index": [_LIKE],
}


def rows_for(ledger_id: int, n: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(1)
    return [(ledger_id, i + 2, "out", date(2025, 3, 1 + i % 28), "900-249-08", "hazardous", rnd.randint(1, 99_999),
             f"91630100MA00000{i % 300:03d}", "某环保公司", f"{rnd.randint(0, 10**14 - 1):014d}" if i % 3 else None,
             None, "D10", "") for i in range(n)]


def main() -> None:
    import psycopg

    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", required=True, help="libpq URL of a database the B1 benchmark filled")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    conn = psycopg.connect(a.pg, autocommit=True)
    lid = conn.execute("select max(id) from ledger").fetchone()[0]  # type: ignore[index]
    rows = rows_for(lid, a.rows)
    res: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(a.rounds):
        for name, ddl in VARIANTS.items():
            with conn.transaction(force_rollback=True):
                for stmt in ddl:
                    conn.execute(stmt)  # type: ignore[arg-type]
                table = "v" if ddl else "transfer_entry"
                cur = conn.cursor()
                t = time.perf_counter()
                with cur.copy(f"COPY {table} ({COLS}) FROM STDIN (FORMAT BINARY)") as cp:  # type: ignore[arg-type]
                    cp.set_types(TYPES)
                    for r in rows:
                        cp.write_row(r)
                res[name].append(time.perf_counter() - t)
    print(f"binary COPY of {a.rows} rows, medians of {a.rounds} interleaved rounds (rolled back)")
    for name, v in res.items():
        print(f"  {name:62s} {statistics.median(v):.3f} s  ({min(v):.3f}..{max(v):.3f})")


if __name__ == "__main__":
    main()
