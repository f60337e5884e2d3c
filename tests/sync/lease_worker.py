"""A separate OS process for the lease tests: `python -m tests.sync.lease_worker MODE URL OWNER ...`.

`contend KEYS ROUNDS SEED GO_FILE`: once GO_FILE exists, claim the keys over and over, and for every
claim won record the interval it was held (by the database's clock) in `lease_intervals`.
`hold KEY TTL`: claim KEY, keep it renewed and print `held` until killed.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from sync.leases import LeaseBook
from sync.store import open_engine


def contend(book: LeaseBook, keys: list[str], rounds: int, seed: int, go_file: Path) -> None:
    rng = random.Random(seed)
    print("ready", flush=True)
    while not go_file.exists():
        time.sleep(0.01)
    won = refused = 0
    for _ in range(rounds):
        for key in rng.sample(keys, len(keys)):
            lease = book.claim(key)
            if lease is None:
                refused += 1
                continue
            won += 1
            with book.engine.begin() as connection:
                interval = connection.execute(
                    text(
                        "INSERT INTO lease_intervals (key, owner, started) "
                        "VALUES (:key, :owner, clock_timestamp()) RETURNING id"
                    ),
                    {"key": key, "owner": book.owner},
                ).scalar_one()
            time.sleep(rng.uniform(0.002, 0.02))
            with book.engine.begin() as connection:
                connection.execute(
                    text("UPDATE lease_intervals SET ended = clock_timestamp() WHERE id = :id"),
                    {"id": interval},
                )
            book.release(lease)
    print(f"done won={won} refused={refused}", flush=True)


async def hold(book: LeaseBook, key: str) -> None:
    async with book.hold(key) as lease:
        if lease is None:
            print("refused", flush=True)
            return
        print(f"held {lease.expires_at.isoformat()}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    mode, url, owner = argv[:3]
    engine = open_engine(url)
    if mode == "contend":
        keys, rounds, seed, go_file = argv[3].split(","), int(argv[4]), int(argv[5]), Path(argv[6])
        contend(LeaseBook(engine, owner), keys, rounds, seed, go_file)
    elif mode == "hold":
        key, ttl = argv[3], timedelta(seconds=float(argv[4]))
        asyncio.run(hold(LeaseBook(engine, owner, ttl), key))
    else:
        raise SystemExit(f"unknown mode {mode!r}: use contend or hold")


if __name__ == "__main__":
    main(sys.argv[1:])
