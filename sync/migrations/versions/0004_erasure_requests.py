"""erasure requests: the durable queue of deletions owed by other platforms

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("sealed_email", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("email_hash", "connector"),
    )
    op.create_index(
        "ix_erasure_requests_connector_status", "erasure_requests", ["connector", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_erasure_requests_connector_status", table_name="erasure_requests")
    op.drop_table("erasure_requests")
