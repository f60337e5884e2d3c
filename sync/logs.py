"""Structured logging for the daemon: JSON lines for machines, rich lines for people, never a secret.

Every record goes through one handler on the root logger. Its `RedactionFilter` is the last line of
defence (the real defence is not logging such values at all): it masks anything shaped like an email
address (also URL-encoded, as httpx logs request URLs) and every value given to `register_secret`, in
the message, its arguments, extra fields and formatted tracebacks. Records carry the run id of the
`run_context` they were logged in; contextvars follow asyncio tasks and `asyncio.to_thread` calls, so
a connector's log lines belong to the run that started it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from pydantic import BaseModel
from rich.console import Console
from rich.logging import RichHandler

EMAIL_MASK = "[email]"
SECRET_MASK = "[secret]"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: they would mangle every log line and protect nothing."""

RESERVED_FIELDS = frozenset({"ts", "level", "logger", "msg", "event", "run_id", "exc"})

# Local part, then "@" or its URL encoding, then a dotted domain. Broad on purpose: a false positive
# costs a masked word, a false negative leaks a customer.
_EMAIL = re.compile(r"[\w.!#$%&*+^~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# Record attributes that are not fields: logging's own, and uvicorn's ANSI-coloured message copy.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_EVENT_ATTRIBUTE = "espd_event"
_FIELDS_ATTRIBUTE = "espd_fields"
_HANDLER_MARK = "_espd_handler"

_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("espd_run_id", default=None)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None


class _HasSecret(Protocol):
    def get_secret_value(self) -> str: ...


def register_secret(value: str | _HasSecret | None) -> None:
    """Mask `value` (a str or a pydantic SecretStr) wherever it would appear in a log line."""
    global _secret_pattern
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if not isinstance(raw, str) or len(raw) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.add(raw)
        # Longest first, so a secret containing another one is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets_in(value: Any) -> int:
    """Register every SecretStr found in `value` (a loaded config, say): models, dicts, lists.

    Returns how many were found, so a caller can tell that the walk reached the secrets.
    """
    if hasattr(value, "get_secret_value"):
        register_secret(value)
        return 1
    if isinstance(value, BaseModel):
        return sum(register_secrets_in(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return sum(register_secrets_in(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(register_secrets_in(v) for v in value)
    return 0


def redact(text: str) -> str:
    """`text` with registered secrets and email-shaped substrings masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(SECRET_MASK, text)
    return _EMAIL.sub(EMAIL_MASK, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside `value`; anything that is not JSON-shaped becomes its redacted str()."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return redact(str(value))


def current_run_id() -> str | None:
    return _run_id.get()


@contextmanager
def run_context(run_id: str | None = None) -> Iterator[str]:
    """Tag every record logged inside the block (and in tasks it starts) with `run_id`.

    A new random id is made when none is given; the block receives the id in use.
    """
    run_id = run_id or uuid.uuid4().hex[:12]
    token = _run_id.set(run_id)
    try:
        yield run_id
    finally:
        _run_id.reset(token)


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event=<event> key=value ...`, keeping the fields as structured data for JSON output."""
    clashes = RESERVED_FIELDS & fields.keys()
    if clashes:
        raise ValueError(f"log_event({event!r}): field name(s) {sorted(clashes)} are reserved")
    if not logger.isEnabledFor(level):
        return
    message = " ".join([f"event={event}", *(f"{k}={_logfmt(v)}" for k, v in fields.items())])
    logger.log(level, "%s", message, extra={_EVENT_ATTRIBUTE: event, _FIELDS_ATTRIBUTE: fields})


def _logfmt(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: `log_event` fields plus any `extra=` attributes."""
    fields = dict(getattr(record, _FIELDS_ATTRIBUTE, None) or {})
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRIBUTES and key not in (_EVENT_ATTRIBUTE, _FIELDS_ATTRIBUTE, "run_id"):
            fields[key] = value
    return fields


class RedactionFilter(logging.Filter):
    """Masks emails and secrets in a record before any formatter sees it, and stamps the run id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(_message(record))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        fields = getattr(record, _FIELDS_ATTRIBUTE, None)
        if fields:
            setattr(record, _FIELDS_ATTRIBUTE, redact_value(fields))
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRIBUTES and key not in (_EVENT_ATTRIBUTE, _FIELDS_ATTRIBUTE):
                setattr(record, key, redact_value(getattr(record, key)))
        record.run_id = current_run_id()
        return True


def _message(record: logging.LogRecord) -> str:
    """The formatted message; a wrong format string must not turn a log call into a crash."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg!s} (log arguments did not match the format)"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, run_id, msg, fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, _EVENT_ATTRIBUTE, None)
        if event is not None:
            payload["event"] = event
        run_id = getattr(record, "run_id", None)
        if run_id is not None:
            payload["run_id"] = run_id
        payload["msg"] = record.getMessage()
        payload.update({k: v for k, v in extra_fields(record).items() if k not in RESERVED_FIELDS})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False, default=str)


class RunIdFormatter(logging.Formatter):
    """The rich handler's message: `run=<id> ` in front when a run is in progress."""

    def format(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", None)
        text = record.getMessage() if run_id is None else f"run={run_id} {record.getMessage()}"
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return text


def configure_logging(level: str = "INFO", json_lines: bool | None = None) -> None:
    """Send every log record to stderr through the redaction filter; safe to call again (SIGHUP).

    `json_lines=None` picks JSON when stderr is not a terminal (journald, Docker, files).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler: logging.Handler
    if json_lines:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
        handler.setFormatter(RunIdFormatter())
    handler.addFilter(RedactionFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    # httpx logs every request at INFO; espd's own http_request events already count them.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
