"""Manifests on the web (issue 16): what the three parties enter on the pages.

- ``manifest.permit_no`` (营运证件号, 第十一条), ``manifest.accepted_on`` (接受日期: 第十八条 counts the five
  working days 在接受之日起), and the entry times of shipping and receipt (``shipped_entered_at``,
  ``received_entered_at``: when nofei recorded the step, beside ``shipped_at``/``received_at``, when it happened);
- ``manifest_line.container_count`` (包装数量) and ``manifest_line.mismatch`` (the kinds of 第十八条 mismatch the
  receiver found: name, quantity, characteristics, form, packaging);
- ``manifest_event.event_time`` (the step's own time; ``time`` stays the entry time);
- ``manifest_draft``: a producer's saved, not yet submitted manifest (no number is allocated for a draft).

Revision ID: h6_manifest_web
Revises: h3_integrity
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "h6_manifest_web"
down_revision = "h3_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("manifest", schema=None) as b:
        b.add_column(sa.Column("permit_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        b.add_column(sa.Column("accepted_on", sa.Date(), nullable=True))
        b.add_column(sa.Column("shipped_entered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        b.add_column(sa.Column("received_entered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("manifest_line", schema=None) as b:
        b.add_column(sa.Column("container_count", sa.Integer(), nullable=True))
        b.add_column(sa.Column("mismatch", sa.JSON(), nullable=True))
    with op.batch_alter_table("manifest_event", schema=None) as b:
        b.add_column(sa.Column("event_time", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table(
        "manifest_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipper_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shipper_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("manifest_draft", schema=None) as b:
        b.create_index(b.f("ix_manifest_draft_shipper_id"), ["shipper_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("manifest_draft", schema=None) as b:
        b.drop_index(b.f("ix_manifest_draft_shipper_id"))
    op.drop_table("manifest_draft")
    with op.batch_alter_table("manifest_event", schema=None) as b:
        b.drop_column("event_time")
    with op.batch_alter_table("manifest_line", schema=None) as b:
        b.drop_column("mismatch")
        b.drop_column("container_count")
    with op.batch_alter_table("manifest", schema=None) as b:
        b.drop_column("received_entered_at")
        b.drop_column("shipped_entered_at")
        b.drop_column("accepted_on")
        b.drop_column("permit_no")
