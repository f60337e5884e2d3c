"""`/batches`: asynchronous bulk operations with the real lifecycle.

A batch sits `pending` until the single worker takes it (one batch runs at a time, as the spec says),
then goes `preprocessing` -> `started` (operations run one by one through the same routes a direct
call would hit, so every rule applies; `finished_operations` moves as they complete) -> `finalizing`
(the results archive is built) -> `finished`. The results are a real gzipped tar of JSON arrays served
from a signed URL outside the API that expires, like the S3 link the real API hands out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import math
import secrets
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.mailchimp.context import context, json_body
from simulators.mailchimp.errors import ApiError, invalid_resource, not_found
from simulators.mailchimp.query import PAGING, checked_query, iso, page_of, project

Executor = Callable[[str, str, dict[str, Any], str | None], Awaitable[tuple[int, str]]]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass
class BatchOptions:
    phase_seconds: float = 0.5  # time spent in each of pending, preprocessing and finalizing
    op_seconds: float = 0.01  # processing time per operation (the serial rate R of notes sec. 6)
    url_ttl_seconds: float = 600.0
    max_pending: int = 500
    results_per_file: int = 500


@dataclass
class Batch:
    id: str
    operations: list[dict[str, Any]]
    submitted_at: datetime
    status: str = "pending"
    finished_operations: int = 0
    errored_operations: int = 0
    completed_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    archive: bytes = b""
    cancelled: bool = False

    def to_json(self, url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "total_operations": len(self.operations),
            "finished_operations": self.finished_operations,
            "errored_operations": self.errored_operations,
            "submitted_at": iso(self.submitted_at),
            "completed_at": iso(self.completed_at) if self.completed_at else "",
            "response_body_url": url,
            "_links": [],
        }


def _archive(batch: Batch, per_file: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index in range(0, max(len(batch.results), 1), per_file):
            data = json.dumps(batch.results[index : index + per_file]).encode()
            info = tarfile.TarInfo(f"{batch.id}/{index // per_file}.json")
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class BatchQueue:
    options: BatchOptions
    clock: Callable[[], datetime]
    batches: dict[str, Batch] = field(default_factory=dict)
    executor: Executor | None = None
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    _task: asyncio.Task[None] | None = None

    def pending_count(self) -> int:
        return sum(1 for b in self.batches.values() if b.status != "finished")

    def submit(self, operations: list[dict[str, Any]]) -> Batch:
        if self.pending_count() >= self.options.max_pending:
            raise ApiError(
                429,
                "Too Many Requests",
                f"You have exceeded the limit of {self.options.max_pending} pending batches.",
            )
        batch = Batch(id=secrets.token_hex(5), operations=operations, submitted_at=self.clock())
        self.batches[batch.id] = batch
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._work())
        return batch

    async def _work(self) -> None:
        while batch := next((b for b in self.batches.values() if b.status == "pending"), None):
            await self._process(batch)

    async def _process(self, batch: Batch) -> None:
        phase = self.options.phase_seconds
        await asyncio.sleep(phase)
        for status in ("preprocessing", "started"):
            batch.status = status
            await asyncio.sleep(phase if status == "preprocessing" else 0)
        started = time.monotonic()
        for done, operation in enumerate(batch.operations, start=1):
            if batch.cancelled:
                return
            await self._run_operation(batch, operation, started + done * self.options.op_seconds)
        batch.status = "finalizing"
        batch.archive = _archive(batch, self.options.results_per_file)
        await asyncio.sleep(phase)
        batch.completed_at = self.clock()
        batch.status = "finished"

    async def _run_operation(self, batch: Batch, operation: dict[str, Any], due: float) -> None:
        """Run one operation no earlier than `due`: operations are paced to R = 1 / op_seconds on a
        schedule, so sleep granularity and the operation's own work do not slow the modelled rate."""
        assert self.executor is not None, "the app wires the executor"
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        status, text = await self.executor(
            operation["method"], operation["path"], operation.get("params") or {}, operation.get("body")
        )
        batch.results.append(
            {"status_code": status, "operation_id": operation.get("operation_id"), "response": text}
        )
        batch.finished_operations += 1
        if status >= 400:
            batch.errored_operations += 1

    def signature(self, batch_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{batch_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, request: Request, batch: Batch) -> str:
        if batch.status != "finished":
            return ""
        expires = math.ceil(time.time() + self.options.url_ttl_seconds)
        origin = f"{request.url.scheme}://{request.url.netloc}"
        signature = self.signature(batch.id, expires)
        return f"{origin}/batch-results/{batch.id}.tar.gz?Expires={expires}&Signature={signature}"


def _validate_operations(body: dict[str, Any]) -> list[dict[str, Any]]:
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise invalid_resource(
            "The resource submitted could not be validated.",
            [{"field": "operations", "message": "Required array."}],
        )
    errors: list[dict[str, str]] = []
    for index, op in enumerate(operations):
        where = f"operations.item:{index}"
        if not isinstance(op, dict):
            errors.append({"field": where, "message": "Schema describes object, other found instead"})
            continue
        if op.get("method") not in METHODS:
            errors.append({"field": f"{where}.method", "message": f"Must be one of {', '.join(METHODS)}."})
        if not isinstance(op.get("path"), str) or not op["path"]:
            errors.append({"field": f"{where}.path", "message": "Required string."})
        if "body" in op and not isinstance(op["body"], str):
            kind = type(op["body"]).__name__.replace("dict", "object").replace("list", "array")
            errors.append(
                {"field": f"{where}.body", "message": f"Schema describes string, {kind} found instead"}
            )
        if "params" in op and not isinstance(op["params"], dict):
            errors.append({"field": f"{where}.params", "message": "Schema describes object."})
        if "operation_id" in op and not isinstance(op["operation_id"], str):
            errors.append({"field": f"{where}.operation_id", "message": "Schema describes string."})
    if errors:
        raise invalid_resource("Schema describes string, object found instead", errors)
    return operations


async def post_batch(request: Request) -> Response:
    checked_query(request, ())
    body = await json_body(request)
    queue = context(request).batches
    batch = queue.submit(_validate_operations(body))
    return JSONResponse(batch.to_json(""))


def _batch(request: Request) -> Batch:
    batch = context(request).batches.batches.get(request.path_params["batch_id"])
    if batch is None:
        raise not_found()
    return batch


async def get_batch(request: Request) -> Response:
    query = checked_query(request, {"fields", "exclude_fields"})
    batch = _batch(request)
    return JSONResponse(project(batch.to_json(context(request).batches.signed_url(request, batch)), query))


async def list_batches(request: Request) -> Response:
    query = checked_query(request, PAGING)
    queue = context(request).batches
    batches = list(queue.batches.values())
    items = [b.to_json(queue.signed_url(request, b)) for b in page_of(query).cut(batches)]
    return JSONResponse(project({"batches": items, "total_items": len(batches), "_links": []}, query))


async def delete_batch(request: Request) -> Response:
    checked_query(request, ())
    batch = _batch(request)
    batch.cancelled = True
    del context(request).batches.batches[batch.id]
    return Response(status_code=204)


def _s3_error(code: str, message: str) -> Response:
    xml = f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code><Message>{message}</Message>"
    xml += "</Error>"
    return Response(xml, status_code=403, media_type="application/xml")


async def batch_results(request: Request) -> Response:
    """The signed archive URL: no API auth, 403 (S3 style) once expired or tampered with."""
    queue: BatchQueue = request.app.state.mailchimp.batches
    batch = queue.batches.get(request.path_params["batch_id"])
    try:
        expires = int(request.query_params.get("Expires", ""))
    except ValueError:
        return _s3_error("AccessDenied", "Query-string authentication requires the Expires parameter")
    if batch is None or not hmac.compare_digest(
        queue.signature(batch.id, expires), request.query_params.get("Signature", "")
    ):
        return _s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match.")
    if time.time() > expires:
        return _s3_error("AccessDenied", "Request has expired")
    return Response(batch.archive, media_type="application/x-gzip")
