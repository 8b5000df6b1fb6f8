"""The flow model's tables: per-ledger edge summaries (flow_edge), their per-unit year (flow_year_edge, what a
year's graph loads) and the change log (flow_change).

Why: every read of a year aggregated its million transfer rows (B2: 3.2 s of a 5 s cold read); the summaries
of a ledger version are written in its upload's transaction, so a year loads from ~10x fewer rows, and the
change log tells a cached model what changed (issue 12). Backfilled from the stored rows.

Revision ID: h7_flow_edge
Revises: h8_stock_form
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h7_flow_edge"
down_revision = "h8_stock_form"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_edge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ledger_id", sa.Integer(), sa.ForeignKey("ledger.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("stream", sa.String(24), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("counterpart", sa.String(18), nullable=False),
        sa.Column("method", sa.String(8), nullable=True),
        sa.Column("kg", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("wellformed", sa.Integer(), nullable=False),
    )
    op.create_index("ix_flow_edge_ledger_id", "flow_edge", ["ledger_id"])
    op.create_index("ix_flow_edge_year", "flow_edge", ["year"])
    op.create_table(
        "flow_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("token", sa.String(32), nullable=False),
    )
    op.create_index("ix_flow_change_year", "flow_change", ["year"])
    op.create_table(
        "flow_year_edge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("stream", sa.String(24), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("counterpart", sa.String(18), nullable=False),
        sa.Column("kg", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("wellformed", sa.Integer(), nullable=False),
    )
    op.create_index("ix_flow_year_edge_year_unit", "flow_year_edge", ["year", "unit_id"])
    from nofei.storage.flowstore import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("flow_year_edge")
    op.drop_table("flow_change")
    op.drop_table("flow_edge")
