"""The synthetic shop (`simulators.shops`) as engine frames, the way the daemon will build them.

Cancelled orders are left out, as the truth's labels leave them out. Person ids go in as they are
(integers): validation turns them into the text ids once per person.
"""

from __future__ import annotations

import pandas as pd

from engine.frames import ShopFrames, make_frames
from simulators.dataset import ShopData


def shop_frames(shop: ShopData) -> ShopFrames:
    raw = shop.frames()
    orders = raw.orders[raw.orders["cancelled_at"].isna()]
    lines = raw.order_lines[raw.order_lines["order_id"].isin(orders["order_id"])]
    frames, report = make_frames(
        orders=pd.DataFrame(
            {
                "customer_id": orders["person_id"],
                "order_id": orders["order_id"],
                "ordered_at": orders["ordered_at"],
                "amount": orders["total"],
                "discount": orders["discount_total"],
            }
        ),
        lines=pd.DataFrame(
            {
                "order_id": lines["order_id"],
                "product_id": lines["product_id"],
                "category": lines["category"],
                "quantity": lines["quantity"],
                "price": lines["unit_price"] * lines["quantity"] - lines["discount"],
                "discount": lines["discount"],
            }
        ),
        events=pd.DataFrame(
            {
                "customer_id": raw.events["person_id"],
                "kind": raw.events["kind"],
                "occurred_at": raw.events["occurred_at"],
                "campaign_id": raw.events["campaign_id"],
            }
        ),
        customers=pd.DataFrame(
            {
                "customer_id": raw.people["person_id"],
                "created_at": raw.people["created_at"],
                "timezone": raw.people.get("timezone"),
            }
        ),
        # Streamed `large` shops (bench/scale.py) carry no campaign table.
        campaigns=None if raw.campaigns.empty else raw.campaigns,
    )
    if report.dropped:
        raise AssertionError(f"the synthetic shop has malformed rows: {report.summary()}")
    return frames
