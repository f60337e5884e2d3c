"""The Shopify connector: customers and orders in, espd fields out as customer metafields.

Options (`ConnectorSettings.options`): `shop` (the `*.myshopify.com` domain, used when `base_url` is
not set), `api_version` (default 2026-04), `plan` (standard/advanced/plus/enterprise: the restore
rate the bucket starts from until the first answer tells the real one), `push` (default true: then
`write_customers` is required), `bulk_threshold` (orders at or above which the first backfill is a
bulk query; default 10,000) and `bulk_poll_seconds`.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.base import CheckResult, Connector, ConnectorSettings, EventSink, PullStream, PushTarget
from connectors.http import AuthFailed
from connectors.shopify import documents
from connectors.shopify.api import ShopifyApi
from connectors.shopify.bulk import BulkBackfillOrdersStream
from connectors.shopify.push import ShopifyPushTarget
from connectors.shopify.streams import CustomersStream

log = logging.getLogger("espd.connectors.shopify")
API_VERSION = "2026-04"
STREAMS = ("customers", "orders")


class ShopifyConnector(Connector):
    type_name = "shopify"
    stream_names = STREAMS

    def __init__(self, settings: ConnectorSettings, *, dry_run: bool = False, sink: EventSink | None = None):
        super().__init__(settings, dry_run=dry_run, sink=sink)
        options: dict[str, Any] = dict(settings.options)
        base = settings.base_url or _shop_url(settings.name, options.get("shop"))
        version = options.get("api_version", API_VERSION)
        self.push_enabled = bool(options.get("push", True))
        self.bulk_threshold = int(options.get("bulk_threshold", 10_000))
        self.bulk_poll_seconds = float(options.get("bulk_poll_seconds", 1.0))
        self.api = ShopifyApi(
            name=settings.name,
            endpoint=f"{base.rstrip('/')}/admin/api/{version}/graphql.json",
            token=settings.secret("access_token"),
            plan=options.get("plan", "standard"),
            timeout_seconds=settings.timeout_seconds,
            sink=sink,
        )
        self._target: ShopifyPushTarget | None = None

    async def check(self) -> CheckResult:
        try:
            data = await self.api.call(documents.ACCESS_SCOPES)
        except AuthFailed as exc:
            return CheckResult(False, f"{self.name}: {exc.verdict.message}")
        granted = {s["handle"] for s in data["currentAppInstallation"]["accessScopes"]}
        granted |= {s.replace("write_", "read_") for s in granted if s.startswith("write_")}
        needed = ["read_customers"]
        needed += ["read_orders"] if "orders" in self.settings.streams else []
        needed += ["write_customers"] if self.push_enabled else []
        missing = tuple(s for s in needed if s not in granted)
        if missing:
            return CheckResult(False, f"{self.name}: the token lacks scopes {', '.join(missing)}", missing)
        message = f"{self.name}: token valid, scopes {', '.join(needed)} granted"
        if "orders" in self.settings.streams and "read_all_orders" not in granted:
            log.warning("event=orders_window_limited connector=%s days=60", self.name)
            message += "; read_all_orders missing: only the last 60 days of orders are visible"
        return CheckResult(True, message)

    def streams(self) -> list[PullStream]:
        lag = self.settings.lookback
        chosen: list[PullStream] = []
        for name in self.settings.streams:
            if name == "customers":
                chosen.append(CustomersStream(self.api, self.name, lag))
            else:
                chosen.append(
                    BulkBackfillOrdersStream(
                        self.api,
                        self.name,
                        lag,
                        threshold=self.bulk_threshold,
                        poll_seconds=self.bulk_poll_seconds,
                        allow_mutations=not self.dry_run,
                    )
                )
        return chosen

    def push_target(self) -> PushTarget | None:
        if not self.push_enabled:
            return None
        if self._target is None:
            self._target = ShopifyPushTarget(self.api, self.name, self.dry_run)
        return self._target

    async def aclose(self) -> None:
        await self.api.aclose()


def _shop_url(name: str, shop: Any) -> str:
    if not isinstance(shop, str) or not shop.endswith(".myshopify.com"):
        raise ValueError(f"connector {name}: options.shop must be a *.myshopify.com domain (or set base_url)")
    return f"https://{shop}"
