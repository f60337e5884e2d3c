"""Brevo erasure: `DELETE /contacts/{email}?identifierType=email_id` (notes sec. 2, "Deletion").

204 deletes, 404 means the contact is not there; 405 is Brevo refusing to delete the account's own
registered address, which no retry changes, so it is reported as refused. The call spends the
contacts family's budget, shared with pull and push through the one limiter key.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from connectors.base import ErasureResult, ErasureTarget
from connectors.brevo.api import CONTACTS
from connectors.erasure import request_erasure
from connectors.http import HttpClient
from connectors.limits import BREVO_ERASURES_PER_CYCLE


class BrevoErasureTarget(ErasureTarget):
    per_cycle: ClassVar[int] = BREVO_ERASURES_PER_CYCLE

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def erase(self, email: str) -> ErasureResult:
        return await request_erasure(
            self.client,
            "DELETE",
            f"contacts/{quote(email, safe='@')}",
            limit_key=CONTACTS,
            params={"identifierType": "email_id"},
        )
