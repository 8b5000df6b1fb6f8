"""Year partitions of the big append-mostly tables on PostgreSQL (declarative ``PARTITION BY RANGE``).

Why: a province keeps ~10 M transfer rows a year and ten years of them; one partition a year keeps a year's
indexes, ``VACUUM`` and ``ANALYZE`` year-sized, lets an old year be detached to cheaper storage, and prunes the
reads that filter on the key (the flow model's ``flow_year_edge`` / ``flow_edge`` loads by ``year``). See
``docs/scale.md``. SQLite is never partitioned: every function here is a no-op on it.

Each table is partitioned on a column it already has, so no insert path changes: a transfer row by its
``day``, a manifest event by its ``time`` (UTC years), a flow summary by its ``year``. PostgreSQL
requires the partition key in every primary key and unique constraint: the primary keys become
(id, key) — ids still come from one sequence, so they stay unique on their own. ``<table>_y<year>`` holds
a year, ``<table>_default`` anything no year partition covers (a row is never refused for its year).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class Partitioned:
    table: str
    pk: str  # the single-column key before partitioning
    key: str  # the partition column
    kind: str  # "int" (a year), "date", "timestamptz"

    def bounds(self, year: int) -> tuple[str, str]:
        """The ``FROM … TO …`` literals of ``year``'s partition (timestamps: UTC years)."""
        if self.kind == "int":
            return str(year), str(year + 1)
        if self.kind == "date":
            return f"'{year:04d}-01-01'", f"'{year + 1:04d}-01-01'"
        return f"'{year:04d}-01-01 00:00:00+00'", f"'{year + 1:04d}-01-01 00:00:00+00'"

    def year_of(self) -> str:
        """SQL: the year (int) of a row of this table, as its partition sees it."""
        if self.kind == "int":
            return self.key
        if self.kind == "date":
            return f"extract(year FROM {self.key})::int"
        return f"extract(year FROM {self.key} AT TIME ZONE 'UTC')::int"


# The tables that grow with the rows and carry a year-like column. Not partitioned (docs/scale.md says why):
# ``manifest`` (the target of manifest_line/manifest_event foreign keys, which PostgreSQL 15 allows to a
# partitioned table only through a unique key holding the partition key: both children would need the
# manifest's year), ``manifest_line`` (no date of its own), ``ledger`` (the target of four foreign keys),
# ``stock_entry`` / ``treatment_entry`` (no date; a few rows per ledger), ``ledger_file`` (keyed by ledger),
# ``audit_entry``: its hash chain needs ``seq`` unique over the whole trail (the writer takes max + 1), and a
# primary key (seq, time) would let two years hold the same seq: the domain's cross-year uniqueness wins.
TABLES: tuple[Partitioned, ...] = (
    Partitioned("transfer_entry", "id", "day", "date"),
    Partitioned("flow_edge", "id", "year", "int"),
    Partitioned("flow_year_edge", "id", "year", "int"),
    Partitioned("manifest_event", "id", "time", "timestamptz"),
)


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def is_partitioned(conn: Connection, table: str) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
                                  "ON c.oid = p.partrelid WHERE c.relname = :t "
                                  "AND c.relnamespace = current_schema()::regnamespace)"), {"t": table}).scalar())


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar() is True


def _ddl(conn: Connection, table: str) -> tuple[list[str], list[str], list[str]]:
    """CREATE INDEX, ADD CONSTRAINT … FOREIGN KEY and CREATE TRIGGER statements of ``table`` itself (not of
    its partitions, not its primary key), to recreate them on the table that replaces it."""
    rel = {"t": table}
    idx = [str(d).replace(" ON ONLY ", " ON ") for (d,) in conn.execute(text(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(:t) "
        "AND NOT i.indisprimary ORDER BY i.indexrelid"), rel)]
    fks = [f'ALTER TABLE "{table}" ADD CONSTRAINT "{n}" {d}' for n, d in conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) "
        "AND contype = 'f' AND conparentid = 0 ORDER BY conname"), rel)]
    trg = [str(d) for (d,) in conn.execute(text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal "
        "AND tgparentid = 0 ORDER BY tgname"), rel)]
    return idx, fks, trg


def _replace(conn: Connection, spec: Partitioned, *, partitioned: bool, years: Iterable[int]) -> None:
    """Rebuild ``spec.table`` partitioned (or plain again), rows, sequence, indexes, foreign keys and
    triggers kept. The rows are copied before the indexes and triggers exist (one bulk build)."""
    t = spec.table
    referenced = conn.execute(text("SELECT count(*) FROM pg_constraint WHERE confrelid = to_regclass(:t) "
                                   "AND contype = 'f'"), {"t": t}).scalar()
    if referenced:
        raise RuntimeError(f"{t} is the target of a foreign key: not rebuilt")
    idx, fks, trg = _ddl(conn, t)
    old = f"{t}__old"
    for d in idx:  # index names are schema-wide: free them for the new table
        name = d.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
        conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text(f'ALTER TABLE "{t}" RENAME TO "{old}"'))
    conn.execute(text(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{t}_pkey" TO "{old}_pkey"'))
    how = f" PARTITION BY RANGE ({spec.key})" if partitioned else ""
    conn.execute(text(f'CREATE TABLE "{t}" (LIKE "{old}" INCLUDING DEFAULTS){how}'))
    pk = f"{spec.pk}, {spec.key}" if partitioned else spec.pk
    conn.execute(text(f'ALTER TABLE "{t}" ADD CONSTRAINT "{t}_pkey" PRIMARY KEY ({pk})'))
    if partitioned:
        for y in sorted(set(years)):
            lo, hi = spec.bounds(y)
            conn.execute(text(f'CREATE TABLE "{t}_y{y}" PARTITION OF "{t}" FOR VALUES FROM ({lo}) TO ({hi})'))
        conn.execute(text(f'CREATE TABLE "{t}_default" PARTITION OF "{t}" DEFAULT'))
    conn.execute(text(f'INSERT INTO "{t}" SELECT * FROM "{old}"'))
    for (seq,) in conn.execute(text(
            "SELECT s.oid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "WHERE d.refobjid = to_regclass(:o) AND d.deptype = 'a'"), {"o": old}).all():
        conn.execute(text(f'ALTER SEQUENCE {seq} OWNED BY "{t}".{spec.pk}'))
    conn.execute(text(f'DROP TABLE "{old}"'))  # its partitions, indexes, triggers and foreign keys with it
    for d in idx + fks + trg:
        conn.execute(text(d))
    conn.execute(text(f'ANALYZE "{t}"'))


def years_present(conn: Connection, spec: Partitioned) -> set[int]:
    return {int(y) for (y,) in conn.execute(text(f'SELECT DISTINCT {spec.year_of()} FROM "{spec.table}"'))
            if y is not None}


def partition(conn: Connection, years: Iterable[int]) -> None:
    """Partition every table of ``TABLES`` by year: one partition for each of ``years`` and each year its
    rows already have, plus the default one. Rows are kept. No-op on SQLite and on tables already done."""
    if not _is_pg(conn):
        return
    want = set(years)
    for spec in TABLES:
        if not is_partitioned(conn, spec.table):
            _replace(conn, spec, partitioned=True, years=want | years_present(conn, spec))


def unpartition(conn: Connection) -> None:
    """Back to one plain table each (the migration's downgrade). Rows are kept."""
    if not _is_pg(conn):
        return
    for spec in TABLES:
        if is_partitioned(conn, spec.table):
            _replace(conn, spec, partitioned=False, years=())


def ensure_year(conn: Connection, year: int) -> list[str]:
    """Create ``year``'s partition of every partitioned table that lacks one; returns the ones created.

    Rows of that year already in the default partition are moved into the new one (the default is
    detached, emptied of them and attached again, in the caller's transaction). Called ahead of time on
    every start (``nofei.storage.migrate.upgrade``: this year and the next); a year nobody prepared still
    lands in the default partition, so no write ever fails for its year."""
    if not _is_pg(conn):
        return []
    made = []
    for spec in TABLES:
        t, part = spec.table, f"{spec.table}_y{year}"
        if not is_partitioned(conn, t) or _exists(conn, part):
            continue
        lo, hi = spec.bounds(year)
        dflt = f"{t}_default"
        moving = conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{dflt}" WHERE {spec.key} >= {lo} '
                                   f"AND {spec.key} < {hi})")).scalar()
        if moving:
            conn.execute(text(f'ALTER TABLE "{t}" DETACH PARTITION "{dflt}"'))
            # the rows leave the detached default only to enter their year's partition in the same transaction
            conn.execute(text(f'CREATE TABLE "{part}" PARTITION OF "{t}" FOR VALUES FROM ({lo}) TO ({hi})'))
            conn.execute(text(f'WITH m AS (DELETE FROM "{dflt}" WHERE {spec.key} >= {lo} AND {spec.key} < {hi} '
                              f'RETURNING *) INSERT INTO "{part}" SELECT * FROM m'))
            conn.execute(text(f'ALTER TABLE "{t}" ATTACH PARTITION "{dflt}" DEFAULT'))
        else:
            conn.execute(text(f'CREATE TABLE "{part}" PARTITION OF "{t}" FOR VALUES FROM ({lo}) TO ({hi})'))
        made.append(part)
    return made


def partitions_of(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(partition name, bound expression) of a partitioned table, for tests and operators."""
    return [(str(n), str(b)) for n, b in conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"), {"t": table})]
