"""Integrity and confidentiality (issue 17 items 9-11): server-side web sessions, a shared rate-limit
counter, a keyed MAC on every audit entry, and ``audit_entry`` append-only on PostgreSQL.

- ``web_session``: the page cookie carries a random session id (its SHA-256 is stored), never the API token;
  logging out revokes the row, revoking the token ends every session made with it.
- ``rate_limit``: fixed-window counters (key, window number) shared by every thread and process of the service.
- ``audit_entry.mac``: HMAC-SHA256 of the entry's digest under a key kept outside the database
  (``NOFEI_AUDIT_KEY`` / ``NOFEI_AUDIT_KEY_FILE``): rewriting an entry and recomputing the chain no longer
  verifies without the key. Entries written before this revision have an empty MAC and are reported.
- PostgreSQL: a row trigger refuses UPDATE and DELETE on ``audit_entry`` (SQLSTATE 42501). ``TRUNCATE`` is
  not a row event: it stays an administrator's act (the test suite truncates every table between tests);
  truncation of the chain's tail is what ``nofei audit checkpoint`` / ``verify --checkpoint`` detect.

Revision ID: h3_integrity
Revises: h5_unit_type
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "h3_integrity"
down_revision = "h5_unit_type"
branch_labels = None
depends_on = None

_APPEND_ONLY_FN = """
CREATE FUNCTION nofei_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('%s of audit entry %s refused: the audit trail is append-only', lower(TG_OP), OLD.seq),
        TABLE = 'audit_entry';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("api_token.id"), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_session_token_id", "web_session", ["token_id"])
    op.create_table(
        "rate_limit",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window"),
    )
    op.create_index("ix_rate_limit_window", "rate_limit", ["window"])
    with op.batch_alter_table("audit_entry") as b:
        b.add_column(sa.Column("mac", sa.String(length=64), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FN)
        op.execute("CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
                   "FOR EACH ROW EXECUTE FUNCTION nofei_audit_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION nofei_audit_append_only()")
    with op.batch_alter_table("audit_entry") as b:
        b.drop_column("mac")
    op.drop_index("ix_rate_limit_window", "rate_limit")
    op.drop_table("rate_limit")
    op.drop_index("ix_web_session_token_id", "web_session")
    op.drop_table("web_session")
