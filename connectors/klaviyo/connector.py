"""The Klaviyo connector: profiles and events pulled incrementally, espd fields pushed as properties.

Options (`ConnectorSettings.options`): `profile_windows` (concurrent chains for a large profile range,
default 4), `order_integration` (whose "Placed Order" metric counts, default "shopify"), `currency`
(for orders without `$currency_code`), `events_page_size` (default 200), `event_windows` (concurrent
chains per metric for a range over a day, default 4), `small_batch` (below this
many records, push with profile-import; default 100), `job_poll_seconds` / `job_poll_max_seconds`,
`rate_scale`, `client_limits` (false: no client-side rate windows; see `connectors.http.window_limiter`),
`revision`, `max_connections`, `max_attempts`.
"""

from __future__ import annotations

import re
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
from connectors.klaviyo.api import JSONAPI, make_client
from connectors.klaviyo.erasure import KlaviyoErasureTarget
from connectors.klaviyo.events import EventsStream
from connectors.klaviyo.profiles import ProfilesStream
from connectors.klaviyo.push import BULK_PATH, KlaviyoPushTarget, PollPolicy

STREAMS = ("profiles", "events")
_SCOPE = re.compile(r"\b[a-z-]+:(?:read|write)\b")


class _Probe:
    """One request that proves scopes: a GET that reads one item, or a POST with an empty body that
    the API refuses (400) after checking the scopes, so it writes nothing."""

    def __init__(self, method: str, path: str, scopes: tuple[str, ...], params: dict[str, str] | None = None):
        self.method = method
        self.path = path
        self.scopes = scopes
        self.params = params


_READ_PROBES = (
    _Probe("GET", "/api/profiles", ("profiles:read",), {"page[size]": "1", "fields[profile]": "updated"}),
    _Probe("GET", "/api/metrics", ("metrics:read",), {"fields[metric]": "name"}),
    _Probe("GET", "/api/events", ("events:read",), {"page[size]": "1", "fields[event]": "datetime"}),
)
_WRITE_PROBES = (
    _Probe("POST", "/api/profile-import", ("profiles:write",)),
    _Probe("POST", BULK_PATH, ("profiles:write", "lists:write")),
)
_LIMIT_KEYS = {
    "/api/profiles": "get_profiles",
    "/api/metrics": "get_metrics",
    "/api/events": "get_events",
    "/api/profile-import": "create_or_update_profile",
    BULK_PATH: "bulk_import_profiles",
}


class KlaviyoConnector(Connector):
    type_name: ClassVar[str] = "klaviyo"
    stream_names = STREAMS

    def __init__(self, settings: ConnectorSettings, *, dry_run: bool = False, sink: EventSink | None = None):
        super().__init__(settings, dry_run=dry_run, sink=sink)
        self.client = make_client(settings, sink)

    async def check(self) -> CheckResult:
        """Prove the key and every scope espd uses; write scopes through refused empty POSTs (none
        in a dry run, which sends no non-GET request)."""
        probes = _READ_PROBES if self.dry_run else _READ_PROBES + _WRITE_PROBES
        missing: list[str] = []
        for probe in probes:
            try:
                await self.client.request(
                    probe.method,
                    probe.path,
                    params=probe.params,
                    content=b"{}" if probe.method == "POST" else None,
                    headers={"content-type": JSONAPI} if probe.method == "POST" else None,
                    limit_key=_LIMIT_KEYS[probe.path],
                )
            except AuthFailed as exc:
                if exc.status == 401:
                    return CheckResult(False, f"klaviyo rejected the API key: {exc.verdict.message}")
                named = _SCOPE.findall(exc.verdict.message)
                missing += [s for s in named or probe.scopes if s not in missing]
            except ApiError as exc:
                if probe.method == "GET" or exc.status != 400:
                    return CheckResult(False, f"klaviyo check failed on {probe.path}: {exc}")
        if missing:
            return CheckResult(False, f"the API key lacks scopes: {', '.join(missing)}", tuple(missing))
        note = " (write scopes not probed in a dry run)" if self.dry_run else ""
        return CheckResult(True, f"key accepted with every scope espd needs{note}")

    def streams(self) -> list[PullStream]:
        options, chosen = self.settings.options, self.settings.streams or STREAMS
        built: dict[str, PullStream] = {
            "profiles": ProfilesStream(
                self.client, self.name, self.settings.lookback, int(options.get("profile_windows", 4))
            ),
            "events": EventsStream(
                self.client,
                self.name,
                self.settings.lookback,
                order_integration=str(options.get("order_integration", "shopify")),
                currency=str(options.get("currency", "USD")),
                page_size=int(options.get("events_page_size", 200)),
                windows=int(options.get("event_windows", 4)),
            ),
        }
        return [built[name] for name in STREAMS if name in chosen]

    def push_target(self) -> PushTarget:
        options = self.settings.options
        poll = PollPolicy(
            initial=float(options.get("job_poll_seconds", 5.0)),
            maximum=float(options.get("job_poll_max_seconds", 15.0)),
        )
        return KlaviyoPushTarget(
            self.client, dry_run=self.dry_run, small_batch=int(options.get("small_batch", 100)), poll=poll
        )

    def erasure_target(self) -> ErasureTarget:
        return KlaviyoErasureTarget(self.client)

    async def aclose(self) -> None:
        await self.client.aclose()
