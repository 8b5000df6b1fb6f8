"""transfer_entry → ledger integrity on PostgreSQL: one set-based check per statement instead of a per-row
foreign-key trigger, and ledger versions made permanent.

Why: a declarative foreign key runs its RI trigger once per inserted row (a cached ``SELECT 1 FROM ledger
… FOR KEY SHARE`` through SPI). For the 100,000 转出 rows of one upload that was 0.33–0.42 s on the machine
of session 1 and ≈ 0.9 s on today's (``EXPLAIN ANALYZE`` of an INSERT of 100k rows: "Trigger for constraint
transfer_entry_ledger_id_fkey: calls=100000"), the largest single cost of an import and the reason B1 missed
2× python-calamine on PostgreSQL (issue 3). The guarantee stays the same, checked differently:

- insert side: an ``AFTER INSERT`` / ``AFTER UPDATE`` statement trigger with a transition table checks every
  distinct ``ledger_id`` of the statement's rows against ``ledger`` in one anti-join and raises SQLSTATE 23503
  (``foreign_key_violation``, the foreign key's own error: the API answers 409 as before) naming the missing id.
  One COPY of 100,000 rows has one distinct ``ledger_id``: one index probe instead of 100,000.
- parent side: a foreign key with NO ACTION lets a ledger without children be deleted, and takes ``FOR KEY
  SHARE`` locks so a concurrent delete cannot orphan rows being inserted. Here a ledger version can never be
  deleted nor get another id (ledger-workbook.md: an amendment is a new version; nothing is ever lost or
  overwritten): with no delete possible, no lock is needed and no isolation level can orphan a row.
  ``TRUNCATE`` (an administrator's act, used by the test suite on every table at once) is not guarded.

SQLite keeps the declarative foreign key (``PRAGMA foreign_keys=ON``): its check is an in-process b-tree probe.
``tests/db/test_ledger_pg.py`` proves the guard: orphan COPY/INSERT/UPDATE refused with 23503, ledger delete
and id change refused, a real upload accepted.

Revision ID: pg_transfer_ledger_guard
Revises: pg_manifest_partial
"""

from __future__ import annotations

from alembic import op

revision = "pg_transfer_ledger_guard"
down_revision = "pg_manifest_partial"
branch_labels = None
depends_on = None

_CHECK_FN = """
CREATE FUNCTION nofei_transfer_ledger_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lo bigint;
    hi bigint;
    missing bigint;
BEGIN
    -- an upload's statement carries one ledger_id: min = max is one probe, no hashing of 100,000 rows
    SELECT min(n.ledger_id), max(n.ledger_id) INTO lo, hi FROM new_rows n;
    IF lo IS NULL THEN
        RETURN NULL;
    ELSIF lo = hi THEN
        IF NOT EXISTS (SELECT 1 FROM ledger l WHERE l.id = lo) THEN
            missing := lo;
        END IF;
    ELSE
        SELECT d.ledger_id INTO missing
          FROM (SELECT DISTINCT n.ledger_id FROM new_rows n) d
         WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.id = d.ledger_id)
         LIMIT 1;
    END IF;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = format('insert or update on table "transfer_entry" violates foreign key constraint '
                             '"transfer_entry_ledger_id_fkey"'),
            DETAIL = format('Key (ledger_id)=(%s) is not present in table "ledger".', missing),
            TABLE = 'transfer_entry', CONSTRAINT = 'transfer_entry_ledger_id_fkey';
    END IF;
    RETURN NULL;
END
$$
"""

_KEEP_FN = """
CREATE FUNCTION nofei_ledger_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = format('%s of ledger %s refused: ledger versions are permanent', lower(TG_OP), OLD.id),
            HINT = 'an amendment is a new version (ledger-workbook.md)',
            TABLE = 'ledger', CONSTRAINT = 'transfer_entry_ledger_id_fkey';
    END IF;
    RETURN NEW;
END
$$
"""

_TRIGGERS = (
    "CREATE TRIGGER transfer_entry_ledger_ins AFTER INSERT ON transfer_entry REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION nofei_transfer_ledger_check()",
    "CREATE TRIGGER transfer_entry_ledger_upd AFTER UPDATE ON transfer_entry REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION nofei_transfer_ledger_check()",
    "CREATE TRIGGER ledger_keep BEFORE DELETE OR UPDATE OF id ON ledger FOR EACH ROW EXECUTE FUNCTION nofei_ledger_keep()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("transfer_entry_ledger_id_fkey", "transfer_entry", type_="foreignkey")
    op.execute(_CHECK_FN)
    op.execute(_KEEP_FN)
    for stmt in _TRIGGERS:
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER ledger_keep ON ledger")
    op.execute("DROP TRIGGER transfer_entry_ledger_upd ON transfer_entry")
    op.execute("DROP TRIGGER transfer_entry_ledger_ins ON transfer_entry")
    op.execute("DROP FUNCTION nofei_ledger_keep()")
    op.execute("DROP FUNCTION nofei_transfer_ledger_check()")
    op.create_foreign_key("transfer_entry_ledger_id_fkey", "transfer_entry", "ledger", ["ledger_id"], ["id"])
