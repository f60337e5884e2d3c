"""One erasure call on the shared HTTP layer, and what the vendor's answer means for the request.

Every vendor's deletion is one request whose 2xx means "taken", whose 404 means "not there" (done:
there is nothing to delete) and whose other record-level refusals (Brevo's 405 for the account's own
address, a 400 on an identifier the vendor will not accept) are final: asking again cannot help, so
they are reported as refused instead of retried. Anything transient (5xx, timeouts, throttling past
a few tries, revoked credentials) propagates as `ApiError`; the caller's durable queue retries it.
"""

from __future__ import annotations

from typing import Any

from connectors.base import ErasureOutcome, ErasureResult
from connectors.http import HttpClient, RecordRejected
from connectors.limits import ERASURE_ATTEMPTS


async def request_erasure(
    client: HttpClient, method: str, path: str, *, limit_key: str, **kwargs: Any
) -> ErasureResult:
    """Send one deletion through the connector's client (its limiter, classifier and retries)."""
    try:
        await client.request(method, path, limit_key=limit_key, attempts=ERASURE_ATTEMPTS, **kwargs)
    except RecordRejected as exc:
        if exc.status == 404:
            return ErasureResult(ErasureOutcome.NOT_FOUND, exc.verdict.message)
        return ErasureResult(ErasureOutcome.REFUSED, exc.verdict.message)
    return ErasureResult(ErasureOutcome.ERASED)


def combined(results: list[ErasureResult]) -> ErasureResult:
    """One person's verdict over several calls (Mailchimp audiences): a refusal anywhere wins, then
    any deletion; only when every call found nobody is the person not found."""
    for outcome in (ErasureOutcome.REFUSED, ErasureOutcome.ERASED):
        found = [r for r in results if r.outcome is outcome]
        if found:
            return ErasureResult(outcome, "; ".join(sorted({r.detail for r in found if r.detail})))
    return ErasureResult(ErasureOutcome.NOT_FOUND)
