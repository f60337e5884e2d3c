"""The push ledger: what each destination has confirmed, so espd writes only what changed.

Per destination and customer the ledger keeps a fingerprint of the values the vendor *confirmed*.
A value set is pushed only when its fingerprint differs; the fingerprint is written only after the
vendor confirmed the record (for async jobs, after the job reported it), so a crash between send and
confirm re-sends at most that batch. Stamps that change on every run without changing meaning
(`espd_scored_at`) are left out of the fingerprint; otherwise every cycle would rewrite everyone.
A record rejected in `PARK_AFTER` consecutive runs is parked and reported instead of retried forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from connectors.records import FieldValue
from sync import tables
from sync.store import upsert

PARK_AFTER = 3
ERROR_MAX_CHARS = 1024


def fingerprint(values: Mapping[str, FieldValue], volatile: Collection[str] = ()) -> str:
    """A stable digest of the values that matter (key order and float noise do not)."""
    stable = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items() if k not in volatile}
    encoded = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


class PushLedger:
    def __init__(self, session: Session, destination: str, volatile: Collection[str] = ()) -> None:
        self.session = session
        self.destination = destination
        self.volatile = frozenset(volatile)

    def _rows(self, profile_ids: Collection[int]) -> dict[int, tables.PushLedger]:
        rows: dict[int, tables.PushLedger] = {}
        ids = sorted(profile_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            statement = select(tables.PushLedger).where(
                tables.PushLedger.destination == self.destination, tables.PushLedger.profile_id.in_(chunk)
            )
            rows.update({row.profile_id: row for row in self.session.execute(statement).scalars()})
        return rows

    def _states(self) -> dict[int, tuple[str | None, bool]]:
        """profile id -> (fingerprint, parked) for the whole destination, as plain rows (one query;
        ORM objects for every customer cost seconds per cycle)."""
        columns = tables.PushLedger.__table__.c  # type: ignore[attr-defined]
        statement = select(columns.profile_id, columns.fingerprint, columns.parked).where(
            columns.destination == self.destination
        )
        return {pid: (digest, bool(parked)) for pid, digest, parked in self.session.execute(statement)}

    def changed(self, desired: Mapping[int, Mapping[str, FieldValue]]) -> dict[int, Mapping[str, FieldValue]]:
        """The customers whose desired values differ from what the destination confirmed (parked excluded)."""
        states = self._states()
        result = {}
        for profile_id, values in desired.items():
            state = states.get(profile_id)
            if state is not None and (state[1] or state[0] == fingerprint(values, self.volatile)):
                continue
            result[profile_id] = values
        return result

    def confirm(self, confirmed: Mapping[int, Mapping[str, FieldValue]], at: datetime) -> None:
        """Record values the vendor confirmed; clears any earlier rejection streak."""
        upsert(
            self.session,
            tables.PushLedger,
            [
                {
                    "destination": self.destination,
                    "profile_id": pid,
                    "fingerprint": fingerprint(values, self.volatile),
                    "confirmed_at": at,
                    "rejected_runs": 0,
                    "parked": False,
                    "last_error": None,
                }
                for pid, values in confirmed.items()
            ],
        )

    def reject(self, errors: Mapping[int, str]) -> list[int]:
        """Count one more rejected run per customer; return the ones parked by it."""
        rows = self._rows(errors.keys())
        newly_parked = []
        for profile_id, error in errors.items():
            row = rows.get(profile_id) or tables.PushLedger(
                destination=self.destination, profile_id=profile_id
            )
            row.rejected_runs += 1
            row.last_error = error[:ERROR_MAX_CHARS]
            if row.rejected_runs >= PARK_AFTER and not row.parked:
                row.parked = True
                newly_parked.append(profile_id)
            self.session.add(row)
        return newly_parked

    def parked(self) -> list[tables.PushLedger]:
        statement = select(tables.PushLedger).where(
            tables.PushLedger.destination == self.destination, tables.PushLedger.parked.is_(True)
        )
        return list(self.session.execute(statement).scalars())
