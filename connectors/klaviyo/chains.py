"""Several cursor chains paged side by side, their pages handed out one at a time.

A Klaviyo cursor chain runs one request at a time, so its speed is capped by latency; running the
chains of several windows (profiles) or metrics (events) concurrently lets the rate limiter, not the
latency, set the pace. The consumer still sees one page at a time, so it can checkpoint each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

T = TypeVar("T")


async def merged(chains: Sequence[AsyncIterator[T]]) -> AsyncIterator[tuple[int, T | None]]:
    """(chain index, item) as items arrive, then (index, None) once that chain has ended.

    A chain's error is raised in the consumer; closing the consumer cancels every chain.
    """
    queue: asyncio.Queue[tuple[int, T | BaseException | None]] = asyncio.Queue(maxsize=2 * len(chains) + 1)

    async def pump(index: int, chain: AsyncIterator[T]) -> None:
        try:
            async for item in chain:
                await queue.put((index, item))
            await queue.put((index, None))
        except Exception as exc:  # handed to the consumer, which re-raises it in the caller's task
            await queue.put((index, exc))

    tasks = [asyncio.create_task(pump(i, chain)) for i, chain in enumerate(chains)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            remaining -= item is None
            yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
