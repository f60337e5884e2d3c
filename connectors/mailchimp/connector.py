"""The Mailchimp connector: audiences' members, campaign email activity, store orders; merge-field push.

Options (`ConnectorSettings.options`): `list_id` (one audience; default every audience),
`max_connections` (default 8 of the account's 10), `page_size` (<= 1000), `settle_seconds` (T_end =
sync start minus this, default 120), `activity_days` (campaigns revisited, default 90),
`batch_threshold` (pushes larger than this go through `/batches`, default 1000).
Credentials: `api_key` (`<32 hex>-<dc>`; the dc picks the base URL unless `base_url` is set).
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
from connectors.http import ApiError, AuthFailed
from connectors.mailchimp.activity import EmailActivityStream
from connectors.mailchimp.api import MAX_PAGE, StreamContext, build_client, collect, get_json
from connectors.mailchimp.batches import BatchRunner
from connectors.mailchimp.erasure import MailchimpErasureTarget
from connectors.mailchimp.members import MembersStream
from connectors.mailchimp.orders import OrdersStream
from connectors.mailchimp.push import MergeFieldTarget

STREAMS = ("members", "email_activity", "orders")


class MailchimpConnector(Connector):
    type_name: ClassVar[str] = "mailchimp"
    stream_names = STREAMS

    def __init__(self, settings: ConnectorSettings, *, dry_run: bool = False, sink: EventSink | None = None):
        super().__init__(settings, dry_run=dry_run, sink=sink)
        options = settings.options
        page_size = int(options.get("page_size", MAX_PAGE))
        if not 10 <= page_size <= MAX_PAGE:
            raise ValueError(f"connector {settings.name}: options.page_size must be 10..{MAX_PAGE}")
        self.client, self.limiter = build_client(settings, sink)
        self.ctx = StreamContext(
            client=self.client,
            source=settings.name,
            lookback=settings.lookback,
            settle=timedelta(seconds=float(options.get("settle_seconds", 120))),
            page_size=page_size,
            list_id=options.get("list_id") or None,
        )
        self._target = MergeFieldTarget(
            self.client,
            self.ctx.list_id,
            dry_run=dry_run,
            batch_threshold=int(options.get("batch_threshold", 1000)),
            batches=BatchRunner(self.client),
        )

    async def check(self) -> CheckResult:
        """Ping proves the key and data center; one cheap read per configured need proves access."""
        needs = [("ping", "ping", {})]
        if self.ctx.list_id:
            needs.append(("audience", f"lists/{self.ctx.list_id}", {"fields": "id"}))
            needs.append(("merge fields", f"lists/{self.ctx.list_id}/merge-fields", {"count": 1}))
        else:
            needs.append(("audiences", "lists", {"count": 1, "fields": "lists.id,total_items"}))
        if "email_activity" in self.settings.streams:
            needs.append(("campaign reports", "campaigns", {"count": 1, "fields": "total_items"}))
        if "orders" in self.settings.streams:
            needs.append(("e-commerce stores", "ecommerce/stores", {"count": 1, "fields": "total_items"}))
        missing = []
        for label, path, params in needs:
            try:
                await get_json(self.client, path, **params)
            except AuthFailed as exc:
                if label == "ping":
                    return CheckResult(False, f"{self.name}: {exc.verdict.message}", ("api_key",))
                missing.append(label)
            except ApiError as exc:
                return CheckResult(False, f"{self.name}: {label} unreadable: {exc.verdict.message}")
        if missing:
            return CheckResult(
                False, f"{self.name}: the key cannot read {', '.join(missing)}", tuple(missing)
            )
        if not self.ctx.list_id and not await collect(self.client, "lists", "lists", fields="lists.id"):
            return CheckResult(False, f"{self.name}: the account has no audience")
        return CheckResult(True, f"{self.name}: key valid, {len(needs) - 1} resource(s) readable")

    def streams(self) -> list[PullStream]:
        built: dict[str, PullStream] = {
            "members": MembersStream(self.ctx, parallel=self.limiter.limit),
            "email_activity": EmailActivityStream(
                self.ctx, int(self.settings.options.get("activity_days", 90))
            ),
            "orders": OrdersStream(self.ctx),
        }
        return [built[name] for name in STREAMS if name in self.settings.streams]

    def push_target(self) -> PushTarget:
        return self._target

    def erasure_target(self) -> ErasureTarget:
        return MailchimpErasureTarget(self.client, self.ctx.list_id)

    async def aclose(self) -> None:
        await self.client.aclose()
