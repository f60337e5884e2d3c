"""What every route handler reaches through `request.app.state`: the vendor state and the faults."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from simulators.harness import Faults
from simulators.mailchimp.errors import ApiError, not_found
from simulators.mailchimp.members_state import Audience

if TYPE_CHECKING:
    from simulators.mailchimp.batches import BatchQueue
    from simulators.mailchimp.ecommerce import Store
    from simulators.mailchimp.reports import Reports


@dataclass
class MailchimpState:
    """Everything one simulated Mailchimp account holds; tests read and mutate it directly."""

    audience: Audience
    reports: Reports
    store: Store
    batches: BatchQueue
    faults: Faults
    dc: str
    _page_records: int = field(default=0, repr=False)

    def corrupt_every_nth(self, items: list[dict[str, Any]]) -> None:
        """`Faults.malformed_every`: every Nth record served is broken the way a bad row would be."""
        every = self.faults.malformed_every
        if not every:
            return
        for item in items:
            self._page_records += 1
            if self._page_records % every == 0:
                item["email_address"] = None
                item["last_changed"] = "0000-00-00 00:00:00"


def context(request: Request) -> MailchimpState:
    return request.app.state.mailchimp


def list_audience(request: Request) -> Audience:
    audience = context(request).audience
    if request.path_params.get("list_id") != audience.list_id:
        raise not_found("The requested resource could not be found.")
    return audience


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "JSON Parse Error", "The request body must be a JSON object.")
    return body
