"""`/batches`: many member PATCHes in one asynchronous job, each mapped back to its record.

Every operation carries an `operation_id` of `<run token>:<index>`; when the job is `finished` the
gzipped tar behind `response_body_url` (a signed link fetched without the API key) holds one
`{status_code, operation_id, response}` per operation, so each record gets its own verdict. A job the
API refuses as a whole (400 on the request body) is bisected until the offending operation is alone,
so the good ones still land. `POST /batches` is not idempotent: it is retried only on 429 (not taken).
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.http import FatalApiError, HttpClient, Outcome, RecordRejected, Verdict
from connectors.mailchimp.api import LIMIT_KEY, MEMBER_GONE, describe_body, get_json

OpResult = tuple[bool, str | None]


@dataclass(frozen=True, slots=True)
class Operation:
    path: str  # relative to the API root, e.g. lists/abc/members/<md5>
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchSettings:
    chunk: int = 5000  # operations per job (notes: keep a job to a few thousand ops)
    first_poll_seconds: float = 0.5
    # A poll holds one of the 10 connections for one request; waiting up to 10 s to notice a finished
    # job cost a push of a few thousand operations ~10 % of its time (Mailchimp runs them serially).
    max_poll_seconds: float = 2.0
    timeout_seconds: float = 3600.0


def _operation_json(operation: Operation, operation_id: str) -> dict[str, Any]:
    return {
        "method": "PATCH",
        "path": "/" + operation.path,
        "params": {"skip_merge_validation": "true"},
        "operation_id": operation_id,
        "body": json.dumps(operation.body),  # the API wants a JSON string, not an object
    }


def parse_archive(archive: bytes, token: str) -> dict[int, OpResult]:
    """Verdicts by operation index from a results tar.gz (files of JSON arrays)."""
    found: dict[int, OpResult] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            for result in json.loads(handle.read() or b"[]"):
                run, _, index = str(result.get("operation_id") or "").partition(":")
                if run == token and index.isdigit():
                    found[int(index)] = _verdict(int(result.get("status_code") or 0), result.get("response"))
    return found


def _verdict(status: int, response: Any) -> OpResult:
    if 200 <= status < 300:
        return True, None
    if status == 404:
        return False, MEMBER_GONE
    return False, f"HTTP {status}: {describe_body(response)}"


class BatchRunner:
    def __init__(self, client: HttpClient, settings: BatchSettings = BatchSettings()) -> None:
        self.client = client
        self.settings = settings

    async def run(self, operations: Sequence[Operation]) -> list[OpResult]:
        token = secrets.token_hex(6)
        indexed = list(enumerate(operations))
        size = self.settings.chunk
        chunks = [indexed[i : i + size] for i in range(0, len(indexed), size)]
        found: dict[int, OpResult] = {}
        for part in await asyncio.gather(*(self._submit(chunk, token) for chunk in chunks)):
            found.update(part)
        missing = (False, "no result for this operation in the batch results")
        return [found.get(i, missing) for i in range(len(operations))]

    async def _submit(self, indexed: list[tuple[int, Operation]], token: str) -> dict[int, OpResult]:
        payload = {"operations": [_operation_json(op, f"{token}:{i}") for i, op in indexed]}
        try:
            response = await self.client.request(
                "POST", "batches", json=payload, limit_key=LIMIT_KEY, idempotent=False
            )
        except RecordRejected as exc:
            if len(indexed) == 1:
                return {indexed[0][0]: (False, exc.verdict.message)}
            middle = len(indexed) // 2
            left, right = await asyncio.gather(
                self._submit(indexed[:middle], token), self._submit(indexed[middle:], token)
            )
            return left | right
        batch_id = str(response.json()["id"])
        return parse_archive(await self._results(batch_id), token)

    async def _finished(self, batch_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.timeout_seconds
        wait = self.settings.first_poll_seconds
        while True:
            batch = await get_json(self.client, f"batches/{batch_id}")
            if batch.get("status") == "finished" and batch.get("response_body_url"):
                return batch
            if time.monotonic() > deadline:
                message = f"batch {batch_id} not finished after {self.settings.timeout_seconds:.0f} s"
                raise FatalApiError(self.client.name, Verdict(Outcome.FATAL, None, message))
            await asyncio.sleep(wait)
            wait = min(self.settings.max_poll_seconds, wait * 1.5)

    async def _results(self, batch_id: str) -> bytes:
        """Download the archive; a link that expired meanwhile is fetched again once."""
        for attempt in (1, 2):
            url = str((await self._finished(batch_id))["response_body_url"])
            try:
                response = await self.client.request("GET", url, auth=None, limit_key=LIMIT_KEY)
                return response.content
            except FatalApiError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
