"""The push ledger writes only what changed and parks what keeps failing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from sync import tables
from sync.ledger import PARK_AFTER, PushLedger, fingerprint
from sync.store import session_scope, upsert

AT = datetime(2026, 11, 2, tzinfo=UTC)
VOLATILE = ("espd_scored_at",)


def _profiles(engine: Engine, n: int) -> list[int]:
    with session_scope(engine) as session:
        upsert(
            session,
            tables.Profile,
            [{"email": f"p{i}@example.com"} for i in range(n)],
            conflict_columns=("email",),
        )
    with Session(engine) as session:
        return sorted(session.execute(select(tables.Profile.id)).scalars())


def test_fingerprint_ignores_order_float_noise_and_volatile_stamps() -> None:
    a = {"espd_churn_risk": 0.1 + 0.2, "espd_segment": "vip", "espd_scored_at": "2026-11-01"}
    b = {"espd_segment": "vip", "espd_churn_risk": 0.3, "espd_scored_at": "2026-11-02"}
    assert fingerprint(a, VOLATILE) == fingerprint(b, VOLATILE)
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint({**b, "espd_segment": "lost"}, VOLATILE) != fingerprint(b, VOLATILE)


def test_only_changed_values_are_pushed_after_confirmation(store_engine: Engine) -> None:
    ids = _profiles(store_engine, 4)
    desired = {pid: {"espd_churn_risk": 0.5, "espd_scored_at": "t1"} for pid in ids}
    with session_scope(store_engine) as session:
        ledger = PushLedger(session, "klaviyo", VOLATILE)
        assert set(ledger.changed(desired)) == set(ids)
        ledger.confirm({pid: desired[pid] for pid in ids[:3]}, AT)  # the 4th was never confirmed
    rescored = {pid: {"espd_churn_risk": 0.5, "espd_scored_at": "t2"} for pid in ids}
    rescored[ids[0]] = {"espd_churn_risk": 0.9, "espd_scored_at": "t2"}
    with session_scope(store_engine) as session:
        assert set(PushLedger(session, "klaviyo", VOLATILE).changed(rescored)) == {ids[0], ids[3]}
        assert set(PushLedger(session, "mailchimp", VOLATILE).changed(rescored)) == set(ids)


def test_a_record_rejected_in_three_runs_is_parked_and_a_success_resets_the_streak(
    store_engine: Engine,
) -> None:
    bad, flaky = _profiles(store_engine, 2)
    values = {"espd_churn_risk": 0.2}
    for run in range(PARK_AFTER):
        with session_scope(store_engine) as session:
            ledger = PushLedger(session, "brevo")
            parked = ledger.reject(
                {bad: "422 invalid value", flaky: "timeout"} if run < 2 else {bad: "422 again"}
            )
            if run == 1:
                ledger.confirm({flaky: values}, AT)
    assert parked == [bad]
    with session_scope(store_engine) as session:
        ledger = PushLedger(session, "brevo")
        assert [row.profile_id for row in ledger.parked()] == [bad]
        assert ledger.parked()[0].last_error == "422 again"
        assert ledger.changed({bad: values, flaky: values}) == {}
