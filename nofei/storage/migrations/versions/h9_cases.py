"""Casework (issue 13): cases with a thread of events, the sync stamp, and ``unit.reports_from``.

``unit.reports_from`` (YYYY-MM) is the first month a unit owes a ledger; it is backfilled with the month it
was registered, or the month of its first current ledger when that is earlier.

Revision ID: h9_cases
Revises: pg_transfer_ledger_guard
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "h9_cases"
down_revision = "pg_transfer_ledger_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit", sa.Column("reports_from", sa.String(length=7), nullable=True))
    op.create_table(
        "case_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("districts", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("mass_kg", sa.BigInteger(), nullable=False),
        sa.Column("anomaly", sa.JSON(), nullable=False),
        sa.Column("facts", sa.String(length=64), nullable=False),
        sa.Column("facts_at_close", sa.String(length=64), nullable=True),
        sa.Column("holds", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_case_file_key", "case_file", ["key"], unique=True)
    op.create_index("ix_case_file_kind", "case_file", ["kind"])
    op.create_index("ix_case_file_year", "case_file", ["year"])
    op.create_index("ix_case_file_status", "case_file", ["status"])
    op.create_index("ix_case_file_assignee", "case_file", ["assignee"])
    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case_file.id"), nullable=False),
        sa.Column("time", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("link", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_case_event_case_id", "case_event", ["case_id"])
    op.create_table(
        "case_sync",
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("stamp", sa.String(length=400), nullable=False),
        sa.Column("synced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    # reports_from: the registration month, or the first current ledger's month when earlier
    op.execute(sa.text(
        "UPDATE unit SET reports_from = COALESCE("
        "(SELECT MIN(l.month) FROM ledger l WHERE l.unit_id = unit.id AND l.is_current), '9999-12')"))
    unit = sa.table("unit", sa.column("id", sa.Integer), sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
                    sa.column("reports_from", sa.String))
    bind = op.get_bind()
    for uid, created, rf in bind.execute(sa.select(unit.c.id, unit.c.created_at, unit.c.reports_from)).all():
        if created is None:
            continue
        reg = f"{created.year:04d}-{created.month:02d}"
        if rf is None or reg < rf:
            bind.execute(unit.update().where(unit.c.id == uid).values(reports_from=reg))


def downgrade() -> None:
    op.drop_table("case_sync")
    op.drop_index("ix_case_event_case_id", table_name="case_event")
    op.drop_table("case_event")
    for ix in ("ix_case_file_assignee", "ix_case_file_status", "ix_case_file_year", "ix_case_file_kind",
               "ix_case_file_key"):
        op.drop_index(ix, table_name="case_file")
    op.drop_table("case_file")
    op.drop_column("unit", "reports_from")
