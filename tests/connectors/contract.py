"""What a vendor adapter provides to the shared connector contract suite."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from connectors.base import Connector, ConnectorSettings, FieldSpec, FieldType
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, LoggedRequest, Simulator

CONTRACT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER, "probability of churning, 0 to 1"),
    FieldSpec("espd_next_order", FieldType.DATE, "expected date of the next order"),
    FieldSpec("espd_segment", FieldType.TEXT, "lifecycle stage"),
)


class VendorAdapter(abc.ABC):
    """How the contract suite builds, drives and inspects one vendor's simulator and connector."""

    vendor: str
    profile_stream: str  # the stream that yields Profile records (e.g. "profiles", "members", "customers")
    honours_retry_after: bool = True  # whether the vendor's 429 tells how long to wait

    @abc.abstractmethod
    def simulator(self, shop: ShopData, faults: Faults, limits: Limits) -> Simulator: ...

    connector_class: type[Connector]
    secret: str = "api_key"  # the credential the simulator hands out and the connector reads
    lookback: timedelta = timedelta(minutes=10)

    def options(self, simulator: Simulator) -> dict[str, Any]:
        """Vendor options for the contract runs (small pages so a small shop spans several)."""
        return {}

    def connector(
        self, simulator: Simulator, url: str, *, streams: Sequence[str], dry_run: bool = False
    ) -> Connector:
        """A connector named after the vendor, pointed at the simulator's base URL `url`."""
        settings = ConnectorSettings(
            name=self.vendor,
            base_url=url,
            credentials={self.secret: SecretStr(simulator.credentials[self.secret])},
            streams=tuple(streams),
            lookback=self.lookback,
            timeout_seconds=10.0,
            options=self.options(simulator),
        )
        return self.connector_class(settings, dry_run=dry_run)

    @abc.abstractmethod
    def people(self, simulator: Simulator) -> dict[str, str]:
        """Every person the simulator holds on its profile stream: normalized email -> vendor id."""

    @abc.abstractmethod
    def touch(self, simulator: Simulator, vendor_id: str) -> None:
        """Change one record at the vendor the way a user would (it must show up in the next pull)."""

    @abc.abstractmethod
    def updated_at(self, simulator: Simulator, vendor_id: str) -> datetime:
        """The record's last-modified time as the vendor reports it in pulls."""

    @abc.abstractmethod
    def stored_values(self, simulator: Simulator, vendor_id: str) -> dict[str, Any]:
        """The espd field values the vendor now holds for a profile, keyed as espd pushed them."""

    @abc.abstractmethod
    def consent_changes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        """The requests that could change subscription or consent state (must always be empty)."""

    def writes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        """Requests that write (GraphQL vendors override: every call there is a POST)."""
        return [r for r in requests if r.is_write]

    def reject_key(self, vendor_id: str, email: str) -> str:
        """What to put in `Faults.reject_records` so the simulator rejects this record's writes."""
        return email
