"""`POST /contacts/import` and `/processes`: Brevo's asynchronous import lifecycle.

An import answers 202 with a processId; the process is `queued`, then `in_process`, then
`completed` as the run's `JobClock` says (there is no failed state). Its rows are applied when it
completes, and the import is NOT consent-neutral: it creates contacts that do not exist (an erased
contact comes back) and adds every row to the given lists, which is why espd must never push through
it — tests use this endpoint to prove that. Unknown attributes are ignored, as Brevo documents.
On completion the `notifyUrl` is called (POST, JSON) from a background task; the outcome is kept in
`state.notifications`.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from simulators.brevo.context import Context
from simulators.brevo.errors import BrevoError, invalid
from simulators.brevo.params import json_object, page_params
from simulators.brevo.state import Process

_PHASES = {"queued": "queued", "processing": "in_process", "done": "completed"}
_background: set[asyncio.Task[None]] = set()


async def import_contacts(ctx: Context, request: Request) -> JSONResponse:
    raw = await request.body()
    if len(raw) > ctx.options.import_max_bytes:
        raise invalid(
            f"Request body exceeds the maximum allowed size of {ctx.options.import_max_bytes} bytes"
        )
    body = await json_object(request)
    rows = _rows(body)
    state = ctx.state
    with state.lock:
        list_ids = _target_lists(ctx, body)
        process = Process(
            id=max(state.processes, default=0) + 1,
            name="IMPORTUSER",
            created=state.monotonic(),
            rows=rows,
            list_ids=list_ids,
            options={
                key: body.get(key) for key in ("updateExistingContacts", "emailBlacklist", "smsBlacklist")
            },
            notify_url=body.get("notifyUrl"),
        )
        state.processes[process.id] = process
    if process.notify_url and ctx.options.call_notify_url:
        task = asyncio.get_running_loop().create_task(_notify_when_done(ctx, process))
        _background.add(task)
        task.add_done_callback(_background.discard)
    return JSONResponse({"processId": process.id}, status_code=202)


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    sources = [key for key in ("fileUrl", "fileBody", "jsonBody") if body.get(key) is not None]
    if len(sources) != 1:
        raise BrevoError(400, "missing_parameter", "Exactly one of fileUrl, fileBody or jsonBody is required")
    if sources[0] == "fileUrl":
        raise invalid("fileUrl imports are not supported by the simulator: send fileBody or jsonBody")
    if sources[0] == "fileBody":
        return _csv_rows(body["fileBody"])
    rows = body["jsonBody"]
    if not isinstance(rows, list):
        raise invalid("jsonBody must be an array")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("attributes", {}), dict):
            raise invalid(f"jsonBody[{index}] must be an object with an attributes object")
    return rows


def _csv_rows(text: Any) -> list[dict[str, Any]]:
    """`fileBody`: `;`-separated CSV with a header row naming EMAIL and attribute columns."""
    if not isinstance(text, str):
        raise invalid("fileBody must be a string")
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    if not reader.fieldnames or "EMAIL" not in [f.upper() for f in reader.fieldnames]:
        raise invalid("fileBody must have a header row with an EMAIL column")
    rows = []
    for record in reader:
        values = {key.upper(): value for key, value in record.items() if key}
        email = values.pop("EMAIL", "")
        rows.append({"email": email, "attributes": {k: v for k, v in values.items() if v != ""}})
    return rows


def _target_lists(ctx: Context, body: dict[str, Any]) -> list[int]:
    """`listIds`, or a `newList` created now; one of the two is mandatory."""
    list_ids = body.get("listIds")
    new_list = body.get("newList")
    if list_ids:
        unknown = sorted(set(list_ids) - set(ctx.state.lists))
        if unknown:
            raise invalid(f"listIds {unknown} do not exist")
        return list(list_ids)
    if isinstance(new_list, dict) and new_list.get("listName"):
        list_id = max(ctx.state.lists) + 1
        ctx.state.lists[list_id] = str(new_list["listName"])
        return [list_id]
    raise BrevoError(400, "missing_parameter", "listIds is mandatory unless newList.listName is given")


def advance(ctx: Context) -> None:
    """Apply every import whose clock says it is complete (called before each request)."""
    with ctx.state.lock:
        for process in ctx.state.processes.values():
            if not process.applied and _phase(ctx, process) == "completed":
                _apply(ctx, process)


def _phase(ctx: Context, process: Process) -> str:
    return _PHASES[ctx.options.job_clock.phase(process.created, ctx.state.monotonic())]


def _apply(ctx: Context, process: Process) -> None:
    state = ctx.state
    update_existing = process.options.get("updateExistingContacts") is not False
    for row in process.rows:
        email = row.get("email")
        if not isinstance(email, str) or "@" not in email or email in ctx.faults.reject_records:
            continue
        cid = state.contacts.by_email.get(email.lower())
        if cid is None:
            contact = state.contacts.create(email, state.monotonic())
        elif update_existing:
            contact = state.contacts.by_id[cid]
        else:
            continue
        for name, value in row.get("attributes", {}).items():
            definition = state.attributes.get(name.upper())
            if definition is not None and definition.fits(value):
                contact.attributes[definition.name] = value
        if process.options.get("emailBlacklist"):
            contact.email_blacklisted = True
        if process.options.get("smsBlacklist"):
            contact.sms_blacklisted = True
        contact.list_ids = sorted(set(contact.list_ids) | set(process.list_ids))
        state.contacts.touch(contact)
    process.applied = True


async def _notify_when_done(ctx: Context, process: Process) -> None:
    """Poll the (possibly injected) job clock until the process completes, then call its URL."""
    while True:
        advance(ctx)
        if process.applied:
            break
        await asyncio.sleep(0.05)
    url = process.notify_url or ""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(url, json={"processId": process.id, "status": "completed"})
        outcome = f"http {response.status_code}"
    except httpx.HTTPError as exc:
        outcome = f"failed: {type(exc).__name__}"
    with ctx.state.lock:
        ctx.state.notifications.append((url, process.id, outcome))


def _process_json(ctx: Context, process: Process) -> dict[str, Any]:
    return {"id": process.id, "status": _phase(ctx, process), "name": process.name}


async def get_process(ctx: Context, request: Request) -> JSONResponse:
    raw = request.path_params["processId"]
    if not raw.isdigit():
        raise invalid("processId is invalid")
    with ctx.state.lock:
        process = ctx.state.processes.get(int(raw))
        if process is None:
            raise BrevoError(404, "invalid_parameter", "processId is invalid")
        return JSONResponse(_process_json(ctx, process))


async def list_processes(ctx: Context, request: Request) -> JSONResponse:
    page = page_params(request, cap=50, default=10)
    with ctx.state.lock:
        ids = sorted(ctx.state.processes)
        chosen = page.cut(ids)
        rows = [_process_json(ctx, ctx.state.processes[pid]) for pid in chosen]
    return JSONResponse({"processes": rows, "count": len(ids)})
