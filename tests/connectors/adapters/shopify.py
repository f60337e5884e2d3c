"""Drives the Shopify simulator for the shared connector contract suite.

Every Shopify call is a POST to one GraphQL endpoint, so writes and consent changes are found by
parsing the logged request bodies (the simulator keeps them) and looking at the operations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

from connectors.records import normalize_email
from connectors.shopify import ShopifyConnector
from simulators import shopify
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, LoggedRequest, Simulator
from tests.connectors.contract import VendorAdapter

# Mutations that can change a customer's email/SMS marketing consent or create customers.
CONSENT_MUTATIONS = frozenset(
    {
        "customerEmailMarketingConsentUpdate",
        "customerSmsMarketingConsentUpdate",
        "customerUpdate",
        "customerCreate",
        "customerSet",
        "customerMerge",
        "bulkOperationRunMutation",
    }
)
DECIMAL_TYPES = {"number_decimal"}


def mutation_fields(request: LoggedRequest) -> list[str]:
    """The root fields of every mutation in a logged GraphQL request (unparseable bodies count as one)."""
    try:
        body = json.loads(request.body or b"{}")
        document = parse(body.get("query") or "")
    except (ValueError, GraphQLError, AttributeError):
        return ["<unparseable>"] if request.is_write else []
    return [
        selection.name.value
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode) and definition.operation == OperationType.MUTATION
        for selection in definition.selection_set.selections
        if isinstance(selection, FieldNode)
    ]


def customer_number(vendor_id: str) -> int:
    return int(vendor_id.rsplit("/", 1)[1])


class ShopifyAdapter(VendorAdapter):
    vendor = "shopify"
    profile_stream = "customers"

    def simulator(self, shop: ShopData, faults: Faults, limits: Limits) -> Simulator:
        return shopify.build(shop, faults=faults, limits=limits, keep_bodies=True)

    connector_class = ShopifyConnector
    secret = "access_token"
    lookback = timedelta(minutes=15)

    def options(self, simulator: Simulator) -> dict[str, Any]:
        return {"api_version": simulator.credentials["api_version"], "bulk_poll_seconds": 0.05}

    def people(self, simulator: Simulator) -> dict[str, str]:
        state = simulator.state
        with state.lock:
            return {normalize_email(c.email): c.gid for c in state.customers.values()}

    def touch(self, simulator: Simulator, vendor_id: str) -> None:
        simulator.state.touch_customer(customer_number(vendor_id))

    def updated_at(self, simulator: Simulator, vendor_id: str) -> datetime:
        return simulator.state.customer(customer_number(vendor_id)).updated_at

    def stored_values(self, simulator: Simulator, vendor_id: str) -> dict[str, Any]:
        state = simulator.state
        with state.lock:
            found = [m for m in state.metafields_of(vendor_id) if m.namespace == "espd"]
        return {m.key: float(m.value) if m.type in DECIMAL_TYPES else m.value for m in found}

    def consent_changes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        return [r for r in requests if CONSENT_MUTATIONS & set(mutation_fields(r))]

    def writes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        return [r for r in requests if mutation_fields(r)]

    def reject_key(self, vendor_id: str, email: str) -> str:
        return vendor_id  # espd addresses Shopify customers by GID, never by email


ADAPTER = ShopifyAdapter()
