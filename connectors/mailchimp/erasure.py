"""Mailchimp erasure: permanent delete in every audience espd knows (notes sec. 2, "Deletion").

`POST /lists/{id}/members/{md5}/actions/delete-permanent` erases the member's personal data for
good (a plain DELETE only archives). The path takes the subscriber hash only, never the raw email.
The audiences are the configured one or every audience of the account, read once per target.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import ClassVar

from connectors.base import ErasureResult, ErasureTarget
from connectors.erasure import combined, request_erasure
from connectors.http import HttpClient
from connectors.limits import MAILCHIMP_ERASURES_PER_CYCLE
from connectors.mailchimp.api import LIMIT_KEY, audience_ids
from connectors.mailchimp.push import member_path


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


class MailchimpErasureTarget(ErasureTarget):
    per_cycle: ClassVar[int] = MAILCHIMP_ERASURES_PER_CYCLE

    def __init__(self, client: HttpClient, list_id: str | None) -> None:
        self.client = client
        self.list_id = list_id
        self._audiences: list[str] | None = None
        self._lock = asyncio.Lock()

    async def audiences(self) -> list[str]:
        async with self._lock:
            if self._audiences is None:
                self._audiences = await audience_ids(self.client, self.list_id)
            return self._audiences

    async def erase(self, email: str) -> ErasureResult:
        member = subscriber_hash(email)
        results = [
            await request_erasure(
                self.client,
                "POST",
                member_path(list_id, member) + "/actions/delete-permanent",
                limit_key=LIMIT_KEY,
            )
            for list_id in await self.audiences()
        ]
        return combined(results)
