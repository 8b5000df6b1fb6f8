"""tier_override: a regulator's adjustment of a unit's HJ 1259 tier for a year (issue 14).

Revision ID: h8_tier_override
Revises: h6_manifest_web
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "h8_tier_override"
down_revision = "h6_manifest_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tier_override",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_tier_override_unit_year", "tier_override", ["unit_id", "year"])


def downgrade() -> None:
    op.drop_index("ix_tier_override_unit_year", table_name="tier_override")
    op.drop_table("tier_override")
