"""Canonical records: the only shapes that leave a connector.

Every connector turns vendor JSON into these frozen models and everything downstream (the store, the
engine's frames, the push ledger) speaks only these. Each record keeps the vendor's id, the connector
instance it came from, a normalized email where the vendor has one, and the raw vendor JSON beside it
so a mapping bug can be fixed later without pulling again.

Validation happens here, once: a record that does not fit raises `pydantic.ValidationError`, which
the connector turns into a counted, logged skip (never the email) instead of a crashed run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-14:00: pydantic only turns ValueError into a skip
        raise ValueError("timestamp out of range in UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timestamp that must carry a zone and is stored as UTC (naive times are rejected, not guessed)."""


def normalize_email(value: str) -> str:
    """Lowercase and strip an address; reject what cannot be one.

    Identities across vendors are linked by this form, so every connector must use this function.
    """
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    # `split()` breaks on exactly what `str.isspace` calls whitespace, in C: one piece means none
    # (a character-by-character scan was a tenth of parsing a Klaviyo events page).
    if not at or not local or "." not in domain or len(email.split(maxsplit=1)) != 1:
        raise ValueError("not an email address")
    return email


Email = Annotated[str, AfterValidator(normalize_email)]


class Consent(StrEnum):
    """Email marketing consent as the vendor reports it; espd reads it and never writes it."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    NEVER_SUBSCRIBED = "never_subscribed"
    UNKNOWN = "unknown"


class EventKind(StrEnum):
    RECEIVED = "received"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    MARKED_SPAM = "marked_spam"
    VIEWED_PRODUCT = "viewed_product"
    ADDED_TO_CART = "added_to_cart"
    STARTED_CHECKOUT = "started_checkout"


class Canonical(BaseModel):
    """Shared rules: immutable, no unknown keys, no infinite or NaN numbers, and only text that every
    store can hold (PostgreSQL refuses NUL characters; pydantic already refuses lone surrogates)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text contains a NUL character")
        return value


class Record(Canonical):
    source: str = Field(min_length=1, description="connector instance name from the config")
    vendor_id: str = Field(min_length=1, description="the record's id at the vendor")
    raw: dict[str, Any] = Field(default_factory=dict, repr=False, description="vendor JSON as received")


class Profile(Record):
    email: Email | None = None
    external_id: str | None = None
    country: str | None = None
    timezone: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime
    consent: Consent = Consent.UNKNOWN
    properties: dict[str, Any] = Field(
        default_factory=dict, description="custom field values the vendor holds (espd's own fields included)"
    )


class OrderLine(Canonical):
    vendor_id: str = Field(min_length=1)
    product_id: str | None = None
    category: str | None = None
    quantity: int = Field(ge=0)
    unit_price: float = Field(ge=0)
    discount: float = Field(default=0.0, ge=0)


class Order(Record):
    customer_vendor_id: str | None = None
    email: Email | None = None
    ordered_at: UtcDatetime
    updated_at: UtcDatetime
    currency: str = Field(min_length=3, max_length=3)
    total: float = Field(ge=0)
    discount_total: float = Field(default=0.0, ge=0)
    discount_code: str | None = None
    cancelled_at: UtcDatetime | None = None
    lines: tuple[OrderLine, ...] = ()

    @field_validator("currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.upper()


class EngagementEvent(Record):
    customer_vendor_id: str | None = None
    email: Email | None = None
    kind: EventKind
    occurred_at: UtcDatetime
    campaign_id: str | None = None
    url: str | None = None


FieldValue = float | int | str | bool | None


class FieldUpdate(BaseModel):
    """Values espd wants one destination profile to hold, keyed by the vendor-side field name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    destination: str = Field(min_length=1)
    customer_vendor_id: str = Field(min_length=1)
    email: Email | None = None
    values: dict[str, FieldValue]


def utcnow() -> datetime:
    return datetime.now(UTC)
