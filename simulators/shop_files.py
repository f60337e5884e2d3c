"""Stream a shop too big for memory (`large`, 1M people) to disk, chunk by chunk, and read it back.

Layout of the directory (gzip CSV, no extra dependency; times are integer Unix seconds, UTC):

    manifest.json                    size, seed, as_of, tables, row counts, column lists
    people.csv.gz  products.csv.gz  orders.csv.gz  order_lines.csv.gz  campaigns.csv.gz  events.csv.gz
    truth/people.csv.gz  truth/orders.csv.gz  [truth/exposures.csv.gz]

Only one chunk of CHUNK_SIZE people is in memory at a time; every table file is an appended gzip
stream (one member per chunk), which gzip readers treat as one file. Event ids and click URLs are
derived from (campaign, person, kind), so events.csv.gz omits them and `read_table` adds them back.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from simulators.shop_chunk import (
    CURRENCY,
    ShopChunk,
    default_as_of,
    iter_chunks,
    public_campaigns,
    shop_plan,
    shop_size,
)
from simulators.shop_email import add_event_ids_and_urls

PUBLIC_TABLES = ("people", "orders", "order_lines", "events")
TRUTH_TABLES = ("truth/people", "truth/orders")
TIME_COLUMNS = ("created_at", "updated_at", "ordered_at", "cancelled_at", "occurred_at", "sent_at")


def write_large(
    path: Path,
    size: str | int = "large",
    seed: int = 7,
    as_of: datetime | None = None,
    exposures: bool = False,
) -> dict[str, object]:
    """Write the shop and its truth under `path`; return the manifest (also saved as manifest.json).

    `exposures=True` also writes the per-receipt conversion odds the oracle uses (tens of millions
    of rows for `large`).
    """
    stamp = default_as_of(as_of)
    n = shop_size(size)
    path.mkdir(parents=True, exist_ok=True)
    (path / "truth").mkdir(exist_ok=True)
    products, campaigns = plan = shop_plan(seed, stamp)
    tables = PUBLIC_TABLES + TRUTH_TABLES + (("truth/exposures",) if exposures else ())
    counts = dict.fromkeys(tables, 0)
    columns: dict[str, list[str]] = {}
    for index, chunk in enumerate(iter_chunks(n, seed, stamp, plan)):
        for table in tables:
            frame = _chunk_table(chunk, table)
            _append(path / f"{table}.csv.gz", frame, header=index == 0)
            counts[table] += len(frame)
            columns[table] = list(frame.columns)
    for table, frame in (("products", products), ("campaigns", public_campaigns(campaigns, stamp))):
        _append(path / f"{table}.csv.gz", frame, header=True)
        counts[table], columns[table] = len(frame), list(frame.columns)
    manifest = {
        "people": n,
        "seed": seed,
        "as_of": stamp.isoformat(),
        "currency": CURRENCY,
        "time_unit": "unix seconds UTC",
        "rows": counts,
        "columns": columns,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def read_table(path: Path, table: str, chunk_rows: int = 500_000) -> Iterator[pd.DataFrame]:
    """Read one table back in chunks, with times as aware UTC timestamps."""
    file = path / f"{table}.csv.gz"
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such table in the streamed shop")
    for frame in pd.read_csv(file, chunksize=chunk_rows):
        for column in TIME_COLUMNS:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        yield add_event_ids_and_urls(frame) if table == "events" else frame


def _chunk_table(chunk: ShopChunk, table: str) -> pd.DataFrame:
    frames = {
        "people": chunk.people,
        "orders": chunk.orders,
        "order_lines": chunk.lines,
        "events": chunk.events,
        "truth/people": chunk.truth,
        "truth/orders": chunk.all_orders,
        "truth/exposures": chunk.exposures,
    }
    return _unix_seconds(frames[table])


def _unix_seconds(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as integer seconds: compact and much faster to write and parse than ISO strings."""
    out = frame.copy()
    for column in TIME_COLUMNS:
        if column in out:
            naive = out[column].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
            seconds = pd.array(naive.astype("int64"), dtype="Int64")
            seconds[np.isnat(naive)] = pd.NA
            out[column] = seconds
    return out


def _append(file: Path, frame: pd.DataFrame, header: bool) -> None:
    with gzip.open(file, "wb" if header else "ab", compresslevel=1) as handle:
        frame.to_csv(handle, index=False, header=header)
