"""The big tables partitioned by year on PostgreSQL (issue 12, "beyond one city").

Why: a province is ~10 M transfer rows a year, kept for years; one partition a year keeps each year's
indexes and maintenance year-sized, lets an old year be detached, and prunes the flow model's loads by year.
``transfer_entry`` (by ``day``), ``flow_edge`` and ``flow_year_edge`` (by ``year``) and ``manifest_event`` (by ``time``,
UTC years) become ``PARTITION BY RANGE`` tables with one partition for each year
their rows have, the year before this one up to the next, and a default partition for any other year. The
primary keys become (id, key) as PostgreSQL requires; the rows, sequences, indexes, foreign keys *from*
these tables, and the transfer→ledger statement guard are recreated on the partitioned tables.
``manifest``, ``manifest_line``, ``ledger``, ``stock_entry``, ``treatment_entry`` and ``audit_entry`` stay plain (``nofei/storage/partitions.py`` and ``docs/scale.md`` say why). SQLite: nothing changes.

Revision ID: h12_year_partitions
Revises: h7_flow_edge
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op

revision = "h12_year_partitions"
down_revision = "h7_flow_edge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from nofei.storage.partitions import partition

    now = datetime.now(UTC).year
    partition(op.get_bind(), range(now - 1, now + 2))


def downgrade() -> None:
    from nofei.storage.partitions import unpartition

    unpartition(op.get_bind())
