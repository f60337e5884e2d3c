"""chunk indexes: read a large shop's rows one customer chunk at a time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:45:00

Scoring a large shop reads it in chunks of customers (sync/frames.py, `StoreChunks`): chunk i of n
holds the rows whose `profile_id % 1024` is i modulo n. These indexes on exactly that expression let
the database fetch one chunk's rows instead of scanning the whole table once per chunk. On PostgreSQL
the index on the partitioned events table is created on every monthly partition, present and future.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Must match sync.frames.CHUNK_BUCKETS and its expression, or the planner will not use them.
CHUNK_INDEXES = {
    "orders": ("ix_orders_chunk", "profile_id"),
    "events": ("ix_events_chunk", "profile_id"),
    "profiles": ("ix_profiles_chunk", "id"),
}


def upgrade() -> None:
    for table, (name, column) in CHUNK_INDEXES.items():
        op.create_index(name, table, [sa.text(f"({column} % 1024)")])


def downgrade() -> None:
    for table, (name, _) in CHUNK_INDEXES.items():
        op.drop_index(name, table_name=table)
