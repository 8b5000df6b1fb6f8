"""stock_entry: the optional 形态 and 有害成分名称 columns of 产生贮存, for the HJ 1259 declarations (issue 14).

Revision ID: h8_stock_form
Revises: h8_tier_override
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "h8_stock_form"
down_revision = "h8_tier_override"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN with a constant default: no table rewrite on SQLite or PostgreSQL
    op.add_column("stock_entry", sa.Column("form", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                           server_default=""))
    op.add_column("stock_entry", sa.Column("harmful_components", sqlmodel.sql.sqltypes.AutoString(length=500),
                                           nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("stock_entry") as b:
        b.drop_column("harmful_components")
        b.drop_column("form")
