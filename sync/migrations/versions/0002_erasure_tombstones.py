"""erasure tombstones

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:50:24.480884
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import sync.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("erased_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("email_hash"),
    )


def downgrade() -> None:
    op.drop_table("erasures")
