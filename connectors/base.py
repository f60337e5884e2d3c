"""The connector contract: what every platform module provides to the daemon.

A connector is built from `ConnectorSettings` (the daemon turns its YAML into these, so connectors
never parse config), proves its credentials with `check()`, offers `PullStream`s that yield pages of
canonical records with the checkpoint that follows each page, and optionally a `PushTarget` that
writes espd's fields, and optionally an `ErasureTarget` that asks the platform to delete a person.
Connectors are found by type name through the `espd.connectors` entry-point
group, so a fifth platform is one new module and one line in pyproject.toml.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr

from connectors.records import EngagementEvent, FieldUpdate, Order, Profile

ENTRY_POINT_GROUP = "espd.connectors"
PulledRecord = Profile | Order | EngagementEvent
Checkpoint = dict[str, Any]
"""A stream's JSON-serializable position; the daemon stores it in the same transaction as the page."""


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    name: str
    base_url: str | None
    credentials: Mapping[str, SecretStr]
    streams: tuple[str, ...]
    lookback: timedelta = timedelta(minutes=10)
    timeout_seconds: float = 30.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def secret(self, key: str) -> str:
        try:
            return self.credentials[key].get_secret_value()
        except KeyError:
            raise KeyError(f"connector {self.name}: credential {key!r} is not configured") from None


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A vendor record that could not become a canonical one. Never carries an email."""

    stream: str
    vendor_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    records: Sequence[PulledRecord]
    checkpoint: Checkpoint
    skipped: Sequence[SkippedRecord] = ()


class PullStream(abc.ABC):
    """One incremental stream. `read` resumes from `checkpoint` (None: from the beginning).

    `sync_started_at` caps every checkpoint the stream emits (minus a safety margin), so records
    that change while the sync runs are read again next time rather than skipped.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]: ...


class FieldType(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    DATE = "date"
    TEXT = "text"
    BOOLEAN = "boolean"
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field espd writes, in vendor-neutral terms; each connector renders it its own way."""

    name: str  # already prefixed, e.g. espd_churn_risk
    type: FieldType
    description: str = ""
    allowed_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnsureReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The vendor's verdict on one pushed record. Only `ok` results may enter the push ledger."""

    customer_vendor_id: str
    ok: bool
    error: str | None = None


class PushTarget(abc.ABC):
    max_batch_size: ClassVar[int]

    @abc.abstractmethod
    async def list_fields(self) -> dict[str, str]:
        """The custom fields the platform has now: name -> vendor type."""

    @abc.abstractmethod
    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> EnsureReport:
        """Create the missing definitions; never delete or retype a field that exists."""

    @abc.abstractmethod
    async def push(self, batch: Sequence[FieldUpdate]) -> list[RecordResult]:
        """Write one batch; return one result per record, in order."""


class ErasureOutcome(StrEnum):
    ERASED = "erased"  # the vendor took the deletion (Klaviyo's job runs later, on its side)
    NOT_FOUND = "not_found"  # the person is not there: nothing to delete, so done
    REFUSED = "refused"  # the vendor will not delete this person; asking again cannot help


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """The vendor's final word on one erasure. A transient failure is an `ApiError` instead, so the
    caller keeps the request pending and asks again later."""

    outcome: ErasureOutcome
    detail: str = ""


class ErasureTarget(abc.ABC):
    """Deletes one person at a platform, by email (the only identifier an erased person leaves).

    `per_cycle` bounds how many requests one daemon cycle sends, sized from the vendor's documented
    deletion rate (connectors.limits) so a backlog never starves the pull that follows.
    """

    per_cycle: ClassVar[int]

    @abc.abstractmethod
    async def erase(self, email: str) -> ErasureResult:
        """Ask the platform to delete the person; raise `ApiError` when it could not answer."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    message: str
    missing_permissions: tuple[str, ...] = ()


class EventSink(Protocol):
    """Where the HTTP layer reports what it did (the daemon counts these as metrics)."""

    def __call__(self, event: str, **fields: Any) -> None: ...


class Connector(abc.ABC):
    type_name: ClassVar[str]
    stream_names: ClassVar[tuple[str, ...]]
    """Every stream the connector can pull; settings naming any other are refused at construction."""

    def __init__(self, settings: ConnectorSettings, *, dry_run: bool = False, sink: EventSink | None = None):
        unknown = sorted(set(settings.streams) - set(self.stream_names))
        if unknown:
            raise ValueError(
                f"connector {settings.name}: unknown {self.type_name} stream(s) {unknown}; "
                f"known: {list(self.stream_names)}"
            )
        self.settings = settings
        self.dry_run = dry_run
        self.sink = sink

    @property
    def name(self) -> str:
        return self.settings.name

    @abc.abstractmethod
    async def check(self) -> CheckResult:
        """Prove the credentials work and carry every permission espd needs (name what is missing)."""

    @abc.abstractmethod
    def streams(self) -> list[PullStream]:
        """The configured streams, in the order they should be pulled."""

    def push_target(self) -> PushTarget | None:
        """The write side, or None for a platform espd only reads."""
        return None

    def erasure_target(self) -> ErasureTarget | None:
        """The delete side, or None for a platform espd never asks to delete anyone."""
        return None

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def connector_class(type_name: str) -> type[Connector]:
    """Find the connector registered for `type_name` in the `espd.connectors` entry points."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if type_name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise LookupError(f"no connector of type {type_name!r} (known: {known})")
    cls = found[type_name].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"entry point {type_name!r} does not name a Connector subclass")
    return cls
