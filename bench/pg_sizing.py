"""What a shop costs in PostgreSQL: rows and bytes per table, scaled to one million customers.

    .venv/bin/python bench/pg_sizing.py --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/pg_sizing.py --people 5000          # URL from ESPD_TEST_POSTGRES_URL

A synthetic shop (simulators.shops) is written through ingest (`sync.ingest.write_page`, the way pulls
write it) into a new database on the server, migrated to head (events partitioned by month), then
VACUUM ANALYZEd. Sizes are `pg_total_relation_size` (heap + TOAST + indexes) summed over each table's
partitions; the per-million figures are linear scalings of the measured shop, which holds because
every table grows with customers. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchlib import emit
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from connectors.base import Page
from connectors.records import EngagementEvent, Order, OrderLine, Profile
from simulators import shops
from sync.ingest import IngestPolicy, write_page
from sync.store import migrate, open_engine, session_scope

PAGE = 1000
TABLES = ("profiles", "identities", "orders", "order_lines", "events")
AT = datetime(2026, 11, 23, 6, tzinfo=UTC)


def _records(people: int, seed: int) -> dict[str, list[Any]]:
    shop = shops.generate(people, seed=seed).frames()
    emails = shop.people.set_index("person_id")["email"]
    lines = {oid: group for oid, group in shop.order_lines.groupby("order_id")}
    profiles = [
        Profile(source="shop", vendor_id=str(p.person_id), email=p.email, country=p.country,
                timezone=p.timezone, created_at=p.created_at, updated_at=AT, raw={"id": p.person_id})
        for p in shop.people.itertuples()
    ]  # fmt: skip
    orders = [
        Order(source="shop", vendor_id=o.order_id, customer_vendor_id=str(o.person_id),
              email=emails[o.person_id], ordered_at=o.ordered_at, updated_at=AT, currency="EUR",
              total=o.total, discount_total=o.discount_total, raw={"id": o.order_id},
              lines=tuple(OrderLine(vendor_id=str(ln.line_id), product_id=str(ln.product_id),
                                    category=ln.category, quantity=ln.quantity, unit_price=ln.unit_price,
                                    discount=ln.discount)
                          for ln in lines[o.order_id].itertuples()) if o.order_id in lines else ())
        for o in shop.orders.itertuples()
    ]  # fmt: skip
    events = [
        EngagementEvent(source="klaviyo", vendor_id=e.event_id, email=emails[e.person_id], kind=e.kind,
                        occurred_at=e.occurred_at, campaign_id=e.campaign_id)
        for e in shop.events.itertuples()
        if e.kind in ("received", "opened", "clicked")
    ]  # fmt: skip
    return {"customers": profiles, "orders": orders, "events": events}


def _load(engine: Engine, records: dict[str, list[Any]]) -> float:
    policy = IngestPolicy(raw_retention=timedelta(days=30), now=AT)
    started = time.perf_counter()
    for stream, items in records.items():
        for start in range(0, len(items), PAGE):
            with session_scope(engine) as session:
                write_page(session, "bench", stream, Page(items[start : start + PAGE], {}), policy)
    return time.perf_counter() - started


def _sizes(engine: Engine) -> dict[str, dict[str, int]]:
    sizes = {}
    with engine.connect() as connection:
        for table in TABLES:
            total, indexes = connection.execute(
                text(
                    "SELECT sum(pg_total_relation_size(relid)), sum(pg_indexes_size(relid))"
                    " FROM (SELECT relid FROM pg_partition_tree(:table)"
                    " UNION SELECT CAST(:table AS regclass)) AS parts"
                ),
                {"table": table},
            ).one()
            rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            sizes[table] = {"rows": int(rows), "bytes": int(total), "index_bytes": int(indexes)}
        sizes["events"]["partitions"] = int(
            connection.execute(
                text("SELECT count(*) FROM pg_partition_tree('events') WHERE isleaf")
            ).scalar_one()
        )
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ESPD_TEST_POSTGRES_URL"))
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database for EXPLAIN by hand")
    args = parser.parse_args()
    if not args.url:
        parser.error(
            "give --url or set ESPD_TEST_POSTGRES_URL (a server where this role may CREATE DATABASE)"
        )
    admin_url = make_url(args.url)
    name = f"espd_sizing_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = open_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(engine)
        records = _records(args.people, args.seed)
        seconds = _load(engine, records)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        sizes = _sizes(engine)
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    customers = sizes["profiles"]["rows"]
    scale = 1_000_000 / customers
    total = sum(t["bytes"] for t in sizes.values())
    per_million = {
        t: {"rows": round(v["rows"] * scale), "gb": round(v["bytes"] * scale / 1e9, 3)}
        for t, v in sizes.items()
    }
    records_written = sum(len(v) for v in records.values())
    summary = [
        f"{customers} customers into {name}{' (kept)' if args.keep else ''}: "
        f"{records_written} records in {seconds:.1f} s ({records_written / seconds:.0f}/s)"
    ]
    for table, v in sizes.items():
        million = per_million[table]
        summary.append(
            f"  {table:12} {v['rows']:>9} rows {v['bytes'] / 1e6:8.1f} MB"
            f" (indexes {v['index_bytes'] / 1e6:6.1f} MB)"
            f"  -> per 1M customers: {million['rows']:>12,} rows {million['gb']:7.2f} GB"
        )
    summary.append(f"  total {total / 1e6:.1f} MB -> {total * scale / 1e9:.2f} GB per 1M customers")
    emit(
        "pg_sizing",
        {
            "command": f"bench/pg_sizing.py --people {args.people} --seed {args.seed}",
            "customers": customers,
            "load_seconds": round(seconds, 1),
            "tables": sizes,
            "per_million_customers": per_million,
            "total_gb_per_million": round(total * scale / 1e9, 2),
        },
        summary,
    )


if __name__ == "__main__":
    main()
