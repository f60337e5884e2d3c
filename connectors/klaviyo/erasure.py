"""Klaviyo erasure: a data-privacy deletion job by email (notes section 2.6).

`POST /api/data-privacy-deletion-jobs` answers 202 with no body and deletes every profile matching
the identifier later, on Klaviyo's side; there is no endpoint to poll it, so 202 is final. It is
the slowest Klaviyo bucket (3/s, 60/min), which the shared limiter enforces.
"""

from __future__ import annotations

import json
from typing import ClassVar

from connectors.base import ErasureResult, ErasureTarget
from connectors.erasure import request_erasure
from connectors.http import HttpClient
from connectors.klaviyo.api import JSONAPI
from connectors.limits import KLAVIYO_ERASURES_PER_CYCLE

DELETION_PATH = "/api/data-privacy-deletion-jobs"


def deletion_body(email: str) -> bytes:
    """Exactly one identifier (email): giving more than one is a 400 at Klaviyo."""
    profile = {"data": {"type": "profile", "attributes": {"email": email}}}
    return json.dumps(
        {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": profile}}}
    ).encode()


class KlaviyoErasureTarget(ErasureTarget):
    per_cycle: ClassVar[int] = KLAVIYO_ERASURES_PER_CYCLE

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def erase(self, email: str) -> ErasureResult:
        return await request_erasure(
            self.client,
            "POST",
            DELETION_PATH,
            limit_key="request_profile_deletion",
            content=deletion_body(email),
            headers={"content-type": JSONAPI},
        )
