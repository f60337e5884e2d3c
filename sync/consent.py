"""Who espd may score: people that at least one connected platform reports subscribed to email marketing.

espd reads consent and never writes it. Scoring is profiling for marketing, so by default a person
no platform reports subscribed (unsubscribed, never subscribed, or a platform that does not say) is
left out of the scoring input altogether: their orders and events train no model and they get no
score. Their fields are not pushed either; where espd had pushed values to them before, those are
reset once to the fields' unknown values (see sync/push.py). Consent is given per platform and list,
so one platform's "subscribed" is enough: withdrawing it on one list does not withdraw another.
The operator can score everyone with `privacy.score_without_consent: true`; fields then still go only
to platforms that already hold the person, since espd never creates contacts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import pandas as pd
from sqlalchemy import Engine, select

from connectors.records import Consent
from engine.frames import ShopFrames
from sync import tables


def unconsented_profile_ids(engine: Engine) -> frozenset[int]:
    """Every customer no platform reports subscribed."""
    subscribed = select(tables.Identity.profile_id).where(
        tables.Identity.consent == Consent.SUBSCRIBED.value, tables.Identity.profile_id.is_not(None)
    )
    with engine.connect() as connection:
        rows = connection.execute(select(tables.Profile.id).where(tables.Profile.id.not_in(subscribed)))
        return frozenset(rows.scalars())


def without_customers(frames: ShopFrames, excluded: Collection[int]) -> ShopFrames:
    """The frames with every row of these customers dropped (customer ids in frames are profile ids)."""
    if not excluded:
        return frames
    dropped = {str(pid) for pid in excluded}

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame["customer_id"].isin(dropped)].reset_index(drop=True)

    return dataclasses.replace(
        frames,
        orders=keep(frames.orders),
        lines=keep(frames.lines),
        events=keep(frames.events),
        customers=keep(frames.customers),
    )
