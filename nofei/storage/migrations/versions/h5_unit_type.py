"""Issue 18: unit types, the ≤ 19-bed clinic mark, the per-region count of medical institutions, and
名录 editions loaded by an admin.

- ``unit.unit_type``: industrial (default) | social_source | medical_institution | licensed — the hazardous
  indicators count industrial producers only (indicators.md §3);
- ``unit.small_clinic``: a medical institution with ≤ 19 beds, whose HW01 is exempt at 收集 and 运输 (豁免清单 item 2);
- ``statistic.medical_institutions``: 医疗卫生机构总数 of a region and year, the denominator of
  ``medical_collection_coverage_rate``;
- ``catalogue_edition_code``: the codes of a whole later edition of the 名录 (``nofei catalogue load --edition``).

Revision ID: h5_unit_type
Revises: h9_cases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h5_unit_type"
down_revision = "h9_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("unit") as b:
        b.add_column(sa.Column("unit_type", sa.String(length=24), nullable=False, server_default="industrial"))
        b.add_column(sa.Column("small_clinic", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("statistic") as b:
        b.add_column(sa.Column("medical_institutions", sa.Integer(), nullable=True))
    op.create_table(
        "catalogue_edition_code",
        sa.Column("edition", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=4), nullable=True),
        sa.Column("name_zh", sa.String(length=1000), nullable=False, server_default=""),
        sa.Column("hazard", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("stream", sa.String(length=24), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("edition", "code"),
    )


def downgrade() -> None:
    op.drop_table("catalogue_edition_code")
    with op.batch_alter_table("statistic") as b:
        b.drop_column("medical_institutions")
    with op.batch_alter_table("unit") as b:
        b.drop_column("small_clinic")
        b.drop_column("unit_type")
