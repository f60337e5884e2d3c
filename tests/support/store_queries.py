"""Small reads of the store that several tests need."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import Session

from sync import tables


def first_churn_score(engine: Engine) -> tables.Score:
    """A customer's stored churn_risk score (one that has a value), to look that customer up by."""
    with Session(engine) as session:
        score = (
            session.execute(
                select(tables.Score).where(
                    tables.Score.output == "churn_risk", tables.Score.value_num.is_not(None)
                )
            )
            .scalars()
            .first()
        )
    assert score is not None, "no customer has a churn_risk score"
    return score
