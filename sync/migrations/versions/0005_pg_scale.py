"""pg scale: work leases for several daemons, monthly event partitions, indexes for the periodic queries

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-04 14:30:00

On PostgreSQL the events table becomes a table partitioned by month of `occurred_at` (see
sync/partitions.py): the existing rows are copied into one partition per month they cover, then the
old table is dropped. The partitioned table has no foreign key to profiles (see sync/partitions.py
for why). The copy runs in the migration's transaction, so a failure leaves the old table
as it was. SQLite keeps its single events table.
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
import sqlmodel
from alembic import op

import sync.tables
from sync.partitions import create_month_partition

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENT_COLUMNS = "source, vendor_id, profile_id, customer_vendor_id, kind, occurred_at, campaign_id, url"
# The raw-JSON retention purge (sync/privacy.py) runs every cycle over the rows whose raw JSON has
# an expiry; partial indexes keep it from scanning the rows already purged.
RAW_EXPIRY_INDEXES = {"identities": "ix_identities_raw_expires", "orders": "ix_orders_raw_expires"}


def upgrade() -> None:
    op.create_table(
        "work_leases",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("acquired_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    for table, name in RAW_EXPIRY_INDEXES.items():
        where = sa.text("raw_expires_at IS NOT NULL")
        op.create_index(name, table, ["raw_expires_at"], postgresql_where=where, sqlite_where=where)
    # Erasure (sync/privacy.py) and webhooks find a person's identities by email.
    op.create_index("ix_identities_email", "identities", ["email"])
    if op.get_bind().dialect.name == "postgresql":
        _partition_events()


def _partition_events() -> None:
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey")
    op.execute("ALTER INDEX ix_events_profile_time RENAME TO ix_events_unpartitioned_profile_time")
    op.execute(
        "CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at)"
    )
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (source, vendor_id, occurred_at)")
    # No foreign key to profiles: it would make attaching each new month lock profiles (sync/partitions.py).
    op.execute("CREATE INDEX ix_events_profile_time ON events (profile_id, occurred_at)")
    connection = op.get_bind()
    months = (
        connection.execute(
            sa.text("SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') FROM events_unpartitioned")
        )
        .scalars()
        .all()
    )
    for month in months:
        create_month_partition(connection, month.astimezone(UTC))
    op.execute(f"INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM events_unpartitioned")
    op.execute("DROP TABLE events_unpartitioned")


def _unpartition_events() -> None:
    op.execute("ALTER TABLE events RENAME TO events_partitioned")
    op.execute("ALTER INDEX events_pkey RENAME TO events_partitioned_pkey")
    op.execute("ALTER INDEX ix_events_profile_time RENAME TO ix_events_partitioned_profile_time")
    op.execute("CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (source, vendor_id)")
    op.execute("ALTER TABLE events ADD FOREIGN KEY (profile_id) REFERENCES profiles (id)")
    op.execute("CREATE INDEX ix_events_profile_time ON events (profile_id, occurred_at)")
    # Rows that differ only in occurred_at (possible only after partitioning) keep the latest.
    op.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) SELECT DISTINCT ON (source, vendor_id) {EVENT_COLUMNS}"
        " FROM events_partitioned ORDER BY source, vendor_id, occurred_at DESC"
    )
    op.execute("DROP TABLE events_partitioned")  # drops its partitions with it


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _unpartition_events()
    op.drop_index("ix_identities_email", table_name="identities")
    for table, name in RAW_EXPIRY_INDEXES.items():
        op.drop_index(name, table_name=table)
    op.drop_table("work_leases")
