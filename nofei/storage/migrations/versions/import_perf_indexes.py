"""transfer_entry: drop the unused index on counterpart.

Every 转出/转入 row of an upload paid for a random-order insert into this b-tree (B1, 100,000 rows:
~0.1–0.2 s of the ~0.45 s SQLite store), yet no query reads through it: EXPLAIN of every statement
touching transfer_entry that the ledger, anomaly, trace, indicator and report tests issue (16 distinct on
SQLite, 11 on PostgreSQL even with ``enable_seqscan=off``) uses only ix_transfer_entry_ledger_id and
ix_transfer_manifest. The counterpart join of the anomalies (``ledgers/anomalies.py`` ``_unresolved``) is
a correlated NOT EXISTS driven from transfer_entry into unit/stock_entry, which that index cannot serve.
The foreign key and the other two indexes stay.

Revision ID: import_perf_indexes
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "import_perf_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_transfer_entry_counterpart", table_name="transfer_entry")


def downgrade() -> None:
    op.create_index("ix_transfer_entry_counterpart", "transfer_entry", ["counterpart"], unique=False)
