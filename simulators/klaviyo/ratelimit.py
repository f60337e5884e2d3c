"""Klaviyo's per-operation rate limits: a fixed 1 s burst window and a fixed 60 s steady window.

Success responses carry `RateLimit-Limit/Remaining/Reset` for the steady window; an over-limit request
raises `Throttled` with the seconds until the window that refused it resets (the app answers 429 with
`Retry-After`). The clock is injected so tests cross a 60 s window without sleeping.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

from simulators.harness import FixedWindowLimiter, Limits
from simulators.klaviyo.operations import Operation


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled for {retry_after:.2f}s")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._windows: dict[str, tuple[FixedWindowLimiter, FixedWindowLimiter]] = {}
        self._lock = threading.Lock()

    def _scaled(self, limit: int) -> int:
        return max(1, int(limit * self.limits.scale))

    def _pair(self, operation: Operation) -> tuple[FixedWindowLimiter, FixedWindowLimiter]:
        with self._lock:
            pair = self._windows.get(operation.operation_id)
            if pair is None:
                pair = (
                    FixedWindowLimiter(self._scaled(operation.burst), 1.0, self.clock),
                    FixedWindowLimiter(self._scaled(operation.steady), 60.0, self.clock),
                )
                self._windows[operation.operation_id] = pair
            return pair

    def check(self, operations: Sequence[Operation]) -> dict[str, str]:
        """Count one request against every listed bucket (tightest first); return the RateLimit-* headers
        of the first one, or raise `Throttled`."""
        if not self.limits.enabled:
            steady = self._scaled(operations[0].steady)
            return {
                "RateLimit-Limit": str(steady),
                "RateLimit-Remaining": str(steady),
                "RateLimit-Reset": "60",
            }
        headers: dict[str, str] = {}
        for operation in operations:
            burst, steady = self._pair(operation)
            for window in (burst, steady):
                allowed, reset_in, remaining = window.hit()
                if not allowed:
                    raise Throttled(reset_in)
                if window is steady and not headers:
                    headers = {
                        "RateLimit-Limit": str(steady.limit),
                        "RateLimit-Remaining": str(remaining),
                        "RateLimit-Reset": str(max(1, math.ceil(reset_in))),
                    }
        return headers
