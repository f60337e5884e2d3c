"""Shopify connector throughput against the simulator at a plan's documented limits; prints ONE JSON line.

    .venv/bin/python bench/shopify_throughput.py [--plan plus] [--people 12000] [--push 4000]

Pull: the customers stream from empty. Push: espd's 3 contract fields via metafieldsSet. Ceilings from
../shared/notes/README.md: customers 15·R/min (4 points each), pushes 60·(R/10)·⌊25/k⌋/min. The bucket
starts full, as on a shop nobody else is using, so bucket-adjusted ceilings are also given: the best
rate possible when the first `maximumAvailable` points are free, for the pull (espd's query, its own
points per customer) and the push (10 points per call). They are null when the whole run fits in the
bucket: then no steady state was reached and the raw fraction only shows the burst. A push that
outlasts the bucket waits for it to refill after the pull first. `--push` larger than the pulled
customers cycles through them again, so a push can outlast the bucket on a small shop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType
from connectors.records import FieldUpdate
from connectors.shopify import ShopifyConnector, documents
from simulators import shopify, shops
from simulators.shopify.cost import PLANS

FIELDS = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.TEXT),
)


def _connector(server_url: str, token: str, plan: str, events: Counter[str]) -> ShopifyConnector:
    settings = ConnectorSettings(
        name="bench",
        base_url=server_url,
        credentials={"access_token": SecretStr(token)},
        streams=("customers",),
        options={"plan": plan},
    )

    def sink(event: str, **fields: Any) -> None:
        events[event if event != "http_request" else f"http_{fields.get('status')}"] += 1

    return ShopifyConnector(settings, sink=sink)


async def _run(
    connector: ShopifyConnector, push: int, refill: tuple[float, float]
) -> tuple[int, float, int, float]:
    async with connector:
        started = time.perf_counter()
        pulled: list[str] = []
        async for page in connector.streams()[0].read(None, datetime.now(UTC)):
            pulled += [r.vendor_id for r in page.records]
        pull_seconds = time.perf_counter() - started
        target = connector.push_target()
        assert target is not None
        await target.ensure_fields(FIELDS)
        updates = [
            FieldUpdate(
                destination="bench",
                customer_vendor_id=vendor_id,
                values={
                    "espd_churn_risk": i % 100 / 100,
                    "espd_next_order": "2026-12-24",
                    "espd_segment": "loyal",
                },
            )
            for i, vendor_id in enumerate(itertools.islice(itertools.cycle(pulled), push))
        ]
        if push_points(push) > refill[0]:  # start from a full bucket, as the adjusted ceiling assumes
            await asyncio.sleep(refill[0] / refill[1])
        started = time.perf_counter()
        results = []
        for start in range(0, len(updates), target.max_batch_size):
            results += await target.push(updates[start : start + target.max_batch_size])
        push_seconds = time.perf_counter() - started
        assert all(r.ok for r in results)
        return len(pulled), pull_seconds, len(results), push_seconds


def push_points(customers: int) -> int:
    """Points a push of espd's fields costs: one mutation per ⌊25/k⌋ customers."""
    return documents.MUTATION_COST * math.ceil(customers / (25 // len(FIELDS)))


def bucket_adjusted(records: int, points: float, bucket: float, rate: float) -> float | None:
    """Records/s possible when the first `bucket` points are free; None when the run fits the bucket."""
    return records / ((points - bucket) / rate) if points > bucket else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", default="plus", choices=sorted(PLANS))
    parser.add_argument("--people", type=int, default=12_000)
    parser.add_argument("--push", type=int, default=4_000)
    args = parser.parse_args()
    rate, bucket = PLANS[args.plan]
    sim = shopify.build(shops.generate(args.people, seed=3), plan=args.plan)
    server = sim.serve()
    events: Counter[str] = Counter()
    try:
        connector = _connector(server.url, sim.credentials["access_token"], args.plan, events)
        pulled, pull_s, pushed, push_s = asyncio.run(_run(connector, args.push, (bucket, rate)))
    finally:
        server.stop()
    k = len(FIELDS)
    pull_ceiling = 15 * rate / 60
    per_customer = documents.CUSTOMERS.cost / documents.CUSTOMER_PAGE  # espd's query: ~3 points, not 4
    points = pulled * per_customer
    push_ceiling = (rate / 10) * (25 // k)
    pull_adjusted = bucket_adjusted(pulled, points, bucket, rate)
    push_adjusted = bucket_adjusted(pushed, push_points(pushed), bucket, rate)
    print(
        json.dumps(
            {
                "vendor": "shopify",
                "plan": args.plan,
                "restore_rate": rate,
                "pull_records": pulled,
                "pull_per_s": round(pulled / pull_s, 1),
                "pull_ceiling_per_s": pull_ceiling,
                "pull_fraction": round(pulled / pull_s / pull_ceiling, 3),
                "pull_points_per_customer": round(per_customer, 3),
                "pull_bucket_adjusted_ceiling": pull_adjusted and round(pull_adjusted, 1),
                "pull_fraction_bucket_adjusted": pull_adjusted and round(pulled / pull_s / pull_adjusted, 3),
                "push_records": pushed,
                "push_fields": k,
                "push_per_s": round(pushed / push_s, 1),
                "push_ceiling_per_s": push_ceiling,
                "push_fraction": round(pushed / push_s / push_ceiling, 3),
                "push_points": push_points(pushed),
                "push_bucket_adjusted_ceiling": push_adjusted and round(push_adjusted, 1),
                "push_fraction_bucket_adjusted": push_adjusted and round(pushed / push_s / push_adjusted, 3),
                "throttled": events["rate_limit_wait"],
                "http_429": events["http_429"],
            }
        )
    )


if __name__ == "__main__":
    main()
