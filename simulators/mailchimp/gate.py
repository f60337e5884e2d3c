"""The account edge: API-key authentication and the 10-simultaneous-connections cap.

Runs inside the harness middleware (so rejected requests are still logged) and only in front of the
API prefix (the signed batch-results URL is fetched without credentials). The cap counts requests the
account has in flight; the 11th gets 429 with Mailchimp's exact wording, or, in chaos mode, every Nth
rejection is the bare 403 without a JSON body that Mailchimp's edge sometimes sends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.harness import Limits
from simulators.mailchimp.errors import problem

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}-([a-z]+[0-9]+)$")
CONNECTIONS_PER_ACCOUNT = 10
INVALID_KEY = "Your API key may be invalid, or you've attempted to access the wrong datacenter."


@dataclass
class GateOptions:
    api_key: str
    dc: str
    limits: Limits
    api_prefix: str = "/3.0"
    latency_seconds: float = 0.0  # server-side time per request, so concurrency can build up
    bare_403_every: int | None = None  # chaos: every Nth over-limit rejection is a bare 403


def _key_from(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


class AccountGate:
    def __init__(self, app: ASGIApp, options: GateOptions) -> None:
        self.app = app
        self.options = options
        self.in_flight = 0
        self.rejections = 0

    @property
    def max_connections(self) -> int:
        return max(1, round(CONNECTIONS_PER_ACCOUNT * self.options.limits.scale))

    def _auth_error(self, scope: Scope) -> Response | None:
        headers = dict(scope["headers"])
        header = headers.get(b"authorization", b"").decode("latin-1")
        if not header:
            return problem(401, "API Key Missing", "Your request did not include an API key.")
        key = _key_from(header)
        match = KEY_PATTERN.match(key or "")
        if not match or match[1] != self.options.dc or key != self.options.api_key:
            return problem(401, "API Key Invalid", INVALID_KEY)
        return None

    def _over_limit(self) -> Response:
        self.rejections += 1
        every = self.options.bare_403_every
        if every and self.rejections % every == 0:
            return Response(b"", status_code=403, media_type="text/html")
        return problem(
            429,
            "Too Many Requests",
            f"You have exceeded the limit of {self.max_connections} simultaneous connections.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.options.api_prefix):
            await self.app(scope, receive, send)
            return
        rejection = self._auth_error(scope)
        if rejection is None and self.options.limits.enabled and self.in_flight >= self.max_connections:
            rejection = self._over_limit()
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, self._answer_after_latency(send))
        finally:
            self.in_flight -= 1

    def _answer_after_latency(self, send: Send) -> Send:
        """Hold the answer until `latency_seconds` after arrival (the notes' L_p, per connection).

        The simulator builds every answer in one process, so sleeping *then* building made ten
        concurrent pages queue for its CPU: a round took L plus ten pages of simulator time, slower
        than Mailchimp, whose connections do not wait for each other. Building during the wait
        keeps each request at L as long as the simulator keeps up.
        """
        if not self.options.latency_seconds:
            return send
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.latency_seconds

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(max(0.0, deadline - loop.time()))
            await send(message)

        return held
