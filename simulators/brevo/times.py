"""Brevo date-times: how the simulator writes them and how strictly it reads them.

Brevo documents `YYYY-MM-DDTHH:mm:ss.SSSZ` but real answers may carry milliseconds and a non-Z
offset, so the simulator renders every timestamp with milliseconds in a configurable offset
(`+02:00` by default): a client that only handles `Z` fails here before it fails in production.

Query filters (`modifiedSince`, `createdSince`, campaign `startDate`/`endDate`) must be full
date-times with a zone. An unencoded `+02:00` reaches the server as a space (`+` means space in a
query string), which the real API cannot parse either: that is a 400, not a silent UTC guess.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from simulators.brevo.errors import invalid

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def truncate_ms(moment: datetime) -> datetime:
    """Brevo keeps millisecond precision; comparing at finer precision would invent orderings."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_time(moment: datetime, offset: timedelta) -> str:
    """`2024-05-02T10:00:00.123+02:00` (or `...Z` when the offset is zero)."""
    local = moment.astimezone(timezone(offset))
    text = local.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_datetime_param(name: str, raw: str) -> datetime:
    """A zone-qualified date-time query value, or a 400 naming the parameter."""
    if " " in raw:
        raise invalid(f"{name} is not a valid date-time: '+' in the offset must be URL-encoded as %2B")
    if not _DATETIME.match(raw):
        raise invalid(f"{name} is not a valid date-time (expected YYYY-MM-DDTHH:mm:ss.SSSZ or an offset)")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"{name} is not a valid date-time: {exc}") from None
    return truncate_ms(parsed.astimezone(UTC))


def parse_date_param(name: str, raw: str) -> date:
    if not _DATE.match(raw):
        raise invalid(f"{name} must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name} is not a valid date") from None


def is_date_value(value: object) -> bool:
    """Whether a pushed attribute value fits a `date` attribute (YYYY-MM-DD)."""
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
