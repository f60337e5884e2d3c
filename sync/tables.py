"""The store's tables (SQLModel). Schema changes go through Alembic migrations in sync/migrations.

One customer is a `Profile` (linked across platforms by normalized email); each platform's record of
that customer is an `Identity`. Orders and events keep the vendor's id so re-pulling a page is an
idempotent upsert. Raw vendor JSON is kept with an expiry so retention can purge it without losing the
fields the engine uses. Secrets never live here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends (SQLite has no zone type and returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    email: str | None = Field(default=None, sa_column=Column(String(320), unique=True, nullable=True))
    country: str | None = Field(default=None, max_length=64)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Identity(SQLModel, table=True):
    __tablename__ = "identities"
    __table_args__ = (
        Index("ix_identities_profile", "profile_id"),
        Index("ix_identities_email", "email"),
        Index(
            "ix_identities_raw_expires",
            "raw_expires_at",
            postgresql_where=text("raw_expires_at IS NOT NULL"),
            sqlite_where=text("raw_expires_at IS NOT NULL"),
        ),
    )

    source: str = Field(primary_key=True, max_length=64)
    vendor_id: str = Field(primary_key=True, max_length=128)
    profile_id: int | None = Field(default=None, foreign_key="profiles.id")
    email: str | None = Field(default=None, max_length=320)
    external_id: str | None = Field(default=None, max_length=128)
    consent: str = Field(default="unknown", max_length=32)
    vendor_created_at: datetime | None = _ts()
    vendor_updated_at: datetime | None = _ts()
    properties: dict[str, Any] | None = _json()
    raw: dict[str, Any] | None = _json()
    raw_expires_at: datetime | None = _ts()
    pulled_at: datetime | None = _ts()


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_profile_time", "profile_id", "ordered_at"),
        Index(
            "ix_orders_raw_expires",
            "raw_expires_at",
            postgresql_where=text("raw_expires_at IS NOT NULL"),
            sqlite_where=text("raw_expires_at IS NOT NULL"),
        ),
    )

    source: str = Field(primary_key=True, max_length=64)
    vendor_id: str = Field(primary_key=True, max_length=128)
    profile_id: int | None = Field(default=None, foreign_key="profiles.id")
    customer_vendor_id: str | None = Field(default=None, max_length=128)
    ordered_at: datetime | None = _ts(nullable=False)
    updated_at: datetime | None = _ts()
    currency: str = Field(max_length=3)
    total: float
    discount_total: float = 0.0
    discount_code: str | None = Field(default=None, max_length=255)
    cancelled_at: datetime | None = _ts()
    raw: dict[str, Any] | None = _json()
    raw_expires_at: datetime | None = _ts()


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"

    source: str = Field(primary_key=True, max_length=64)
    order_vendor_id: str = Field(primary_key=True, max_length=128)
    vendor_id: str = Field(primary_key=True, max_length=128)
    product_id: str | None = Field(default=None, max_length=128)
    category: str | None = Field(default=None, max_length=255)
    quantity: int = 0
    unit_price: float = 0.0
    discount: float = 0.0


class Event(SQLModel, table=True):
    """An engagement event. On PostgreSQL the table is partitioned by month of `occurred_at`: its primary
    key also holds `occurred_at` and `profile_id` is not enforced as a foreign key there (migration 0005,
    sync/partitions.py says why)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_profile_time", "profile_id", "occurred_at"),)

    source: str = Field(primary_key=True, max_length=64)
    vendor_id: str = Field(primary_key=True, max_length=255)
    profile_id: int | None = Field(default=None, foreign_key="profiles.id")
    customer_vendor_id: str | None = Field(default=None, max_length=128)
    kind: str = Field(max_length=32)
    occurred_at: datetime | None = _ts(nullable=False)
    campaign_id: str | None = Field(default=None, max_length=128)
    url: str | None = Field(default=None, max_length=2048)


class SyncState(SQLModel, table=True):
    """Where each stream of each connector has got to; written with the page it follows."""

    __tablename__ = "sync_state"

    connector: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=64)
    cursor: dict[str, Any] | None = _json()
    updated_at: datetime | None = _ts()


class Score(SQLModel, table=True):
    __tablename__ = "scores"

    profile_id: int = Field(primary_key=True, foreign_key="profiles.id")
    output: str = Field(primary_key=True, max_length=64)
    model_version: str = Field(primary_key=True, max_length=64)
    value_num: float | None = None
    value_text: str | None = Field(default=None, max_length=255)
    model_kind: str = Field(max_length=32)
    reasons: list[str] | None = _json()
    scored_at: datetime | None = _ts()


class PushLedger(SQLModel, table=True):
    """Per destination and customer: the fingerprint of the values the vendor confirmed."""

    __tablename__ = "push_ledger"

    destination: str = Field(primary_key=True, max_length=64)
    profile_id: int = Field(primary_key=True, foreign_key="profiles.id")
    fingerprint: str | None = Field(default=None, max_length=64)
    confirmed_at: datetime | None = _ts()
    rejected_runs: int = 0
    parked: bool = False
    last_error: str | None = Field(default=None, max_length=1024)


class FieldDefinition(SQLModel, table=True):
    __tablename__ = "field_definitions"

    destination: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=128)
    vendor_type: str = Field(max_length=64)
    vendor_ref: str | None = Field(default=None, max_length=255)
    created_at: datetime | None = _ts()


class Model(SQLModel, table=True):
    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    output: str = Field(max_length=64, index=True)
    version: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    artifact: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    features: list[str] | None = _json()
    metrics: dict[str, Any] | None = _json()
    train_from: datetime | None = _ts()
    train_to: datetime | None = _ts()
    promoted: bool = False
    created_at: datetime | None = _ts()


class Run(SQLModel, table=True):
    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="cycle", max_length=32)
    started_at: datetime | None = _ts(nullable=False)
    finished_at: datetime | None = _ts()
    status: str = Field(default="running", max_length=16)
    counts: dict[str, Any] | None = _json()
    errors: list[str] | None = _json()


class Erasure(SQLModel, table=True):
    """That a person was erased, and nothing else: a keyed hash of their email, never the email.

    Ingest checks every incoming email against these so a stale vendor page cannot bring an
    erased customer back.
    """

    __tablename__ = "erasures"

    email_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime | None = _ts(nullable=False)
    reason: str = Field(max_length=64)


class SegmentAudit(SQLModel, table=True):
    """Per run: segment sizes, drift since the previous audit, composition over sensitive attributes."""

    __tablename__ = "segment_audits"

    run_id: int = Field(primary_key=True, foreign_key="runs.id")
    created_at: datetime | None = _ts()
    customers: int = 0
    sizes: list[dict[str, Any]] | None = _json()
    stability: dict[str, Any] | None = _json()
    composition: list[dict[str, Any]] | None = _json()


class ErasureRequest(SQLModel, table=True):
    """An erasure one platform still owes (or has settled), for one person.

    The person's address is needed only until the platform answered, and only sealed: AES-GCM under a
    key derived from the install's key file in the state directory (sync/erasure.py), so a stolen
    database reveals neither who was erased nor who is about to be. Settled rows drop the sealed
    address and keep only the keyed hash, the outcome and when.
    """

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_connector_status", "connector", "status"),)

    email_hash: str = Field(primary_key=True, max_length=64)
    connector: str = Field(primary_key=True, max_length=64)
    sealed_email: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1024)
    reason: str = Field(max_length=64)
    requested_at: datetime | None = _ts(nullable=False)
    updated_at: datetime | None = _ts()


class WorkLease(SQLModel, table=True):
    """Who works a unit of work (a stream's pull, a destination's push) until when; see sync/leases.py."""

    __tablename__ = "work_leases"

    key: str = Field(primary_key=True, max_length=200)
    owner: str | None = Field(default=None, max_length=200)
    acquired_at: datetime | None = _ts()
    expires_at: datetime | None = _ts(nullable=False)
