"""Drives the Klaviyo simulator for the shared connector contract suite."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.klaviyo import KlaviyoConnector
from simulators import klaviyo
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, LoggedRequest, Simulator
from tests.connectors.contract import VendorAdapter

# Paths through which a Klaviyo write could touch consent or list membership.
_CONSENT_PATHS = (
    "/api/profile-subscription-bulk-create-jobs",
    "/api/profile-subscription-bulk-delete-jobs",
    "/api/lists",
)


class KlaviyoAdapter(VendorAdapter):
    vendor = "klaviyo"
    profile_stream = "profiles"

    def simulator(self, shop: ShopData, faults: Faults, limits: Limits) -> Simulator:
        return klaviyo.build(
            shop,
            faults=faults,
            limits=limits,
            keep_bodies=True,
            job_queued_seconds=0.05,
            job_processing_seconds=0.1,
        )

    connector_class = KlaviyoConnector

    def options(self, simulator: Simulator) -> dict[str, Any]:
        return {"job_poll_seconds": 0.1, "job_poll_max_seconds": 0.5}

    def people(self, simulator: Simulator) -> dict[str, str]:
        state = simulator.state
        with state.lock:
            return {p.get("email"): p.id for p in state.profiles.values() if p.get("email")}

    def touch(self, simulator: Simulator, vendor_id: str) -> None:
        simulator.state.touch_profile(vendor_id, touched_by_test=True)

    def updated_at(self, simulator: Simulator, vendor_id: str) -> datetime:
        return simulator.state.find_profile(id=vendor_id).updated

    def stored_values(self, simulator: Simulator, vendor_id: str) -> dict[str, Any]:
        return dict(simulator.state.find_profile(id=vendor_id).properties)

    def consent_changes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        return [r for r in requests if r.is_write and _touches_consent(r)]

    def reject_key(self, vendor_id: str, email: str) -> str:
        return vendor_id  # espd addresses Klaviyo profiles by id, never by email


def _touches_consent(request: LoggedRequest) -> bool:
    if request.path.startswith(_CONSENT_PATHS):
        return True
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return True  # an unreadable write cannot be shown to be consent-safe
    text = json.dumps(body)
    return any(word in text for word in ('"subscriptions"', '"relationships"', '"lists"', '"consent"'))


ADAPTER = KlaviyoAdapter()
