"""Brevo in the connector contract suite: the strict simulator and the attribute-PUT connector."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.brevo import BrevoConnector
from simulators import brevo
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, LoggedRequest, Simulator
from tests.connectors.contract import VendorAdapter


def _body(entry: LoggedRequest) -> Any:
    try:
        return json.loads(entry.body or b"null")
    except ValueError:
        return None


def consent_safe(entry: LoggedRequest) -> bool:
    """The only writes espd may send: attribute definitions, and a contact PUT whose body is
    `{"attributes": {...}}` naming espd's own ESPD_* attributes (no EMAIL, SMS, lists, blacklists)."""
    path = entry.path.removeprefix(brevo.BASE_PATH)
    if entry.method == "POST" and path.startswith("/contacts/attributes/"):
        return True
    if entry.method == "PUT" and path.startswith("/contacts/") and path.count("/") == 2:
        body = _body(entry)
        if not isinstance(body, dict) or set(body) != {"attributes"}:
            return False
        return all(str(name).startswith("ESPD_") for name in body["attributes"])
    return False


class BrevoAdapter(VendorAdapter):
    vendor = "brevo"
    profile_stream = "contacts"
    honours_retry_after = True  # a Brevo 429 says how long in x-sib-ratelimit-reset

    def simulator(self, shop: ShopData, faults: Faults, limits: Limits) -> Simulator:
        return brevo.build(shop, faults=faults, limits=limits, keep_bodies=True)

    connector_class = BrevoConnector

    def options(self, simulator: Simulator) -> dict[str, Any]:
        # Small pages so the 600-person shop spans several; the recipe's 2-minute settle stays.
        return {"page_size": 100, "parallel": 4}

    def people(self, simulator: Simulator) -> dict[str, str]:
        with simulator.state.lock:
            contacts = list(simulator.state.contacts.by_id.values())
        return {c.email.lower(): str(c.id) for c in contacts if c.email}

    def touch(self, simulator: Simulator, vendor_id: str) -> None:
        simulator.state.touch(int(vendor_id))

    def updated_at(self, simulator: Simulator, vendor_id: str) -> datetime:
        with simulator.state.lock:
            return simulator.state.contacts.by_id[int(vendor_id)].modified_at

    def stored_values(self, simulator: Simulator, vendor_id: str) -> dict[str, Any]:
        with simulator.state.lock:
            attributes = dict(simulator.state.contacts.by_id[int(vendor_id)].attributes)
        return {name.lower(): value for name, value in attributes.items() if name.startswith("ESPD_")}

    def consent_changes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        return [e for e in requests if e.is_write and not consent_safe(e)]


ADAPTER = BrevoAdapter()
