"""segment audits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:00:10.356368
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_audits",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("sizes", sa.JSON(), nullable=True),
        sa.Column("stability", sa.JSON(), nullable=True),
        sa.Column("composition", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
        ),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("segment_audits")
