"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:25:38.671719
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import sync.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_definitions",
        sa.Column("destination", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("vendor_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vendor_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("destination", "name"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("output", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("train_from", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("train_to", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_models_output"), ["output"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("order_vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.Column("discount", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("source", "order_vendor_id", "vendor_id"),
    )
    op.create_table(
        "profiles",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("started_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sync_state",
        sa.Column("connector", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("stream", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("updated_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector", "stream"),
    )
    op.create_table(
        "events",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("customer_vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("occurred_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
        ),
        sa.PrimaryKeyConstraint("source", "vendor_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_profile_time", ["profile_id", "occurred_at"], unique=False)

    op.create_table(
        "identities",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("consent", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("vendor_created_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("vendor_updated_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("raw_expires_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("pulled_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
        ),
        sa.PrimaryKeyConstraint("source", "vendor_id"),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_profile", ["profile_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("customer_vendor_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("ordered_at", sync.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("discount_total", sa.Float(), nullable=False),
        sa.Column("discount_code", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("cancelled_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("raw_expires_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
        ),
        sa.PrimaryKeyConstraint("source", "vendor_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_profile_time", ["profile_id", "ordered_at"], unique=False)

    op.create_table(
        "push_ledger",
        sa.Column("destination", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("confirmed_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("rejected_runs", sa.Integer(), nullable=False),
        sa.Column("parked", sa.Boolean(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
        ),
        sa.PrimaryKeyConstraint("destination", "profile_id"),
    )
    op.create_table(
        "scores",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("output", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.Column("value_text", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("model_kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("scored_at", sync.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
        ),
        sa.PrimaryKeyConstraint("profile_id", "output", "model_version"),
    )


def downgrade() -> None:
    op.drop_table("scores")
    op.drop_table("push_ledger")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_profile_time")

    op.drop_table("orders")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_profile")

    op.drop_table("identities")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_profile_time")

    op.drop_table("events")
    op.drop_table("sync_state")
    op.drop_table("runs")
    op.drop_table("profiles")
    op.drop_table("order_lines")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_output"))

    op.drop_table("models")
    op.drop_table("field_definitions")
