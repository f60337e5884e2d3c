"""The Brevo connector: contacts and orders by `modifiedSince`; typed `ESPD_*` attribute push.

Options (`ConnectorSettings.options`): `plan` (general | advanced | extended: the rate windows from
`connectors.limits.BREVO`, default general), `rate_scale` and `client_limits` (multiply or switch off
those windows; see `connectors.http.window_limiter`), `page_size` (contacts per page, <= 1000, default 1000),
`parallel` (contact pages in flight, default 8), `settle_seconds` (T_start = sync start minus this,
default 120), `marketing_list_ids` (lists whose members count as subscribed; default any list),
`currency` (Brevo orders carry none; default EUR), `push_concurrency` (PUTs in
flight, default 16). Credentials: `api_key`.

Stream `campaign_stats` (opt-in: list it in `streams`): per-contact campaignStats costs one
contacts-bucket request per contact, so each run reads only `campaign_stats_contacts` (default 200)
recently modified contacts; a full pass over 100k contacts would take ~3 h of the whole budget.
Marketing events with timestamps for everyone come only from webhooks, which espd does not serve.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorSettings,
    ErasureTarget,
    EventSink,
    PullStream,
    PushTarget,
)
from connectors.brevo.api import CONTACTS, OTHER, build_client, get_json
from connectors.brevo.erasure import BrevoErasureTarget
from connectors.brevo.incremental import StreamContext
from connectors.brevo.push import AttributeTarget
from connectors.brevo.stats import CampaignStatsStream
from connectors.brevo.streams import CONTACTS_MAX_LIMIT, ContactsStream, OrdersStream
from connectors.http import ApiError, AuthFailed

STREAMS = ("contacts", "orders", "campaign_stats")


class BrevoConnector(Connector):
    type_name: ClassVar[str] = "brevo"
    stream_names = STREAMS

    def __init__(self, settings: ConnectorSettings, *, dry_run: bool = False, sink: EventSink | None = None):
        super().__init__(settings, dry_run=dry_run, sink=sink)
        options = settings.options
        self.page_size = int(options.get("page_size", CONTACTS_MAX_LIMIT))
        if not 2 <= self.page_size <= CONTACTS_MAX_LIMIT:  # pages meet on one shared row
            raise ValueError(f"connector {settings.name}: options.page_size must be 2..{CONTACTS_MAX_LIMIT}")
        self.client = build_client(settings, sink)
        self.ctx = StreamContext(
            client=self.client,
            source=settings.name,
            lookback=settings.lookback,
            settle=timedelta(seconds=float(options.get("settle_seconds", 120))),
        )
        self._target = AttributeTarget(
            self.client, dry_run=dry_run, concurrency=int(options.get("push_concurrency", 16))
        )

    async def check(self) -> CheckResult:
        """One cheap read per need; contacts (the key itself) from the contacts bucket, not /account."""
        needs = [
            ("contacts", "contacts", CONTACTS, {"limit": 1}),
            ("attributes", "contacts/attributes", CONTACTS, {}),
        ]
        if "orders" in self.settings.streams:
            needs.append(("orders", "orders", OTHER, {"limit": 1}))
        missing = []
        for label, path, family, params in needs:
            try:
                await get_json(self.client, path, family=family, **params)
            except AuthFailed as exc:
                if label == "contacts":
                    return CheckResult(False, f"{self.name}: {exc.verdict.message}", ("api_key",))
                missing.append(label)
            except ApiError as exc:
                return CheckResult(False, f"{self.name}: {label} unreadable: {exc.verdict.message}")
        if missing:
            return CheckResult(
                False, f"{self.name}: the key cannot read {', '.join(missing)}", tuple(missing)
            )
        return CheckResult(True, f"{self.name}: key valid; {', '.join(n[0] for n in needs)} readable")

    def streams(self) -> list[PullStream]:
        options = self.settings.options
        built: dict[str, PullStream] = {
            "contacts": ContactsStream(
                self.ctx,
                limit=self.page_size,
                parallel=int(options.get("parallel", 8)),
                marketing_lists=frozenset(int(i) for i in options.get("marketing_list_ids") or ()),
            ),
            "orders": OrdersStream(self.ctx, currency=str(options.get("currency", "EUR"))),
            "campaign_stats": CampaignStatsStream(
                self.ctx, max_contacts=int(options.get("campaign_stats_contacts", 200))
            ),
        }
        return [built[name] for name in STREAMS if name in self.settings.streams]

    def push_target(self) -> PushTarget:
        return self._target

    def erasure_target(self) -> ErasureTarget:
        return BrevoErasureTarget(self.client)

    async def aclose(self) -> None:
        await self.client.aclose()
