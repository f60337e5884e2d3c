"""The field table, its guide, config checks, and the score stage's segment outputs on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import Order
from sync import tables
from sync.audit import audit_run, load_audit
from sync.config import Config, ConfigError, EngineConfig, SegmentsConfig, load_config
from sync.field_table import OUTPUTS
from sync.fields import field_values, render
from sync.frames import load_attributes, load_frames
from sync.guide import GUIDE_PATH, render_guide
from sync.ingest import IngestPolicy, write_page
from sync.scoring import score_store
from sync.store import session_scope
from tests.sync.shop_store import fill_store

NOW = datetime(2026, 11, 23, 6, tzinfo=UTC)
SEGMENTS = SegmentsConfig.model_validate(
    {
        "rules": [
            {"name": "big_spenders", "when": "clv_365 >= 100"},
            {
                "name": "eu_active",
                "when": "lifecycle_stage in ('active', 'loyal') and country in ('DE', 'FR')",
            },
        ],
        "control_group": {"share": 0.2},
    }
)


def test_committed_field_guide_is_generated_from_the_table() -> None:
    assert GUIDE_PATH.read_text(encoding="utf-8") == render_guide(), "run `espd field-guide` and commit"


def test_every_field_has_an_explicit_unknown() -> None:
    values = field_values("espd_", OUTPUTS, None, NOW.date(), "v1")
    assert set(values) == {"espd_" + f.output for f in OUTPUTS} | {"espd_scored_at", "espd_model_version"}
    assert all(render(f, None) == f.unknown for f in OUTPUTS)
    assert values["espd_control_group"] is False and values["espd_lifecycle_stage"] == "unknown"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "espd.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_rules_and_output_names_are_checked_at_load_with_positions(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "fields:\n  outputs: [churn_risk, churn_rsik]\nsegments:\n  rules:\n"
        '    - name: vip\n      when: "churn_risk > 0.6 and clv > 200"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    issues = [str(i) for i in caught.value.issues]
    assert any(f"{path}:2:25 fields.outputs[1]: unknown output 'churn_rsik'" in i for i in issues), issues
    # `clv` is character 22 of the expression, which starts at column 14, after the quote.
    assert any(i.startswith(f"{path}:6:35 segments.rules[0].when:") and "clv" in i for i in issues), issues


def test_too_many_fields_for_mailchimp_is_a_load_error(tmp_path: Path) -> None:
    rules = "".join(f"    - name: r{i}\n      when: churn_risk > 0.{i}\n" for i in range(1, 4))
    path = _write(
        tmp_path,
        "connectors:\n  mc:\n    type: mailchimp\n    api_key: k\n    push: true\n"
        f"segments:\n  rules:\n{rules}",
    )
    with pytest.raises(ConfigError, match=r"espd\.yaml:5:5 connectors\.mc\.push: 27 fields"):
        load_config(path)


def test_score_stage_writes_every_output_and_keeps_cluster_ids(store_engine: Engine) -> None:
    fill_store(store_engine)
    settings = EngineConfig(min_buyers=100_000, sensitive_attributes=["country", "timezone"])
    first = score_store(store_engine, {"shop": "shopify"}, settings, NOW, SEGMENTS)
    assert first.scored > 0 and not first.reused
    frame = pd.DataFrame.from_dict(first.scores, orient="index")
    for output in ("lifecycle_stage", "rfm_segment", "microsegment", "control_group", "seg_big_spenders"):
        assert frame[output].notna().any(), output
    assert frame["control_group"].notna().all(), "every customer gets a control-group flag"
    assert 0.1 < frame["control_group"].mean() < 0.3
    buyers = frame["churn_risk"].notna()
    assert ((frame.loc[buyers, "clv_365"] >= 100) == (frame.loc[buyers, "seg_big_spenders"] > 0)).all()
    countries = load_attributes(store_engine, ["country"])["country"]
    countries.index = countries.index.astype("int64")
    expected = frame["lifecycle_stage"].isin(["active", "loyal"]) & countries.reindex(frame.index).isin(
        ["DE", "FR"]
    )
    assert expected.any() and (expected == (frame["seg_eu_active"] > 0)).all()

    again = score_store(store_engine, {"shop": "shopify"}, settings, NOW, SEGMENTS)
    assert again.reused and again.scores == first.scores

    with session_scope(store_engine) as session:  # force a retrain on the same data
        session.execute(delete(tables.Score))
    retrained = score_store(store_engine, {"shop": "shopify"}, settings, NOW, SEGMENTS)
    ids = {pid: s.get("microsegment_id") for pid, s in first.scores.items()}
    assert ids == {pid: s.get("microsegment_id") for pid, s in retrained.scores.items()}

    frames, _ = load_frames(store_engine, {"shop": "shopify"}, settings.sensitive_attributes)
    for sensitive in settings.sensitive_attributes:
        for f in (frames.orders, frames.lines, frames.events, frames.customers):
            assert sensitive not in f.columns or f[sensitive].isna().all(), sensitive


def test_audit_is_stored_per_run_with_drift_and_composition(store_engine: Engine) -> None:
    fill_store(store_engine, people=150)
    config = load_config_for(sensitive=["country"])
    score = score_store(store_engine, {"shop": "shopify"}, config.engine, NOW, config.segments)
    runs = []
    with session_scope(store_engine) as session:
        for _ in range(2):
            run = tables.Run(kind="cycle", started_at=NOW, status="ok")
            session.add(run)
            session.flush()
            runs.append(int(run.id or 0))
    audit_run(store_engine, runs[0], score, config)
    score.scores = {pid: s for pid, s in score.scores.items() if pid % 2}  # half the customers leave
    audit_run(store_engine, runs[1], score, config)
    latest = load_audit(store_engine)
    assert latest is not None and latest.run_id == runs[1]
    stages = [
        r for r in latest.sizes or [] if r["segment_field"] == "lifecycle_stage" and r["status"] == "kept"
    ]
    assert stages and all(r["previous_size"] >= r["size"] for r in stages)
    assert {r["attribute"] for r in latest.composition or []} == {"country"}
    with Session(store_engine) as session:
        assert len(session.execute(select(tables.SegmentAudit)).all()) == 2


def load_config_for(sensitive: list[str]) -> Config:
    return Config.model_validate({"engine": {"min_buyers": 100_000, "sensitive_attributes": sensitive}})


def test_same_day_rescore_changes_only_customers_whose_data_changed(store_engine: Engine) -> None:
    fill_store(store_engine, people=150)
    settings = EngineConfig(min_buyers=100_000)
    before = score_store(store_engine, {"shop": "shopify"}, settings, NOW, SEGMENTS)
    with Session(store_engine) as session:
        rows = session.execute(
            select(tables.Identity.vendor_id, tables.Identity.profile_id, tables.Identity.email).limit(5)
        ).all()
    new_orders = [
        Order(source="shop", vendor_id=f"extra-{vid}", customer_vendor_id=vid, email=email,
              ordered_at=NOW - timedelta(days=2), updated_at=NOW, currency="EUR", total=80.0)
        for vid, _, email in rows
    ]  # fmt: skip
    with session_scope(store_engine) as session:
        write_page(session, "shop", "orders", Page(new_orders, {}), IngestPolicy(timedelta(days=1), NOW))
    after = score_store(store_engine, {"shop": "shopify"}, settings, NOW + timedelta(hours=1), SEGMENTS)
    assert not after.reused and after.version != before.version
    moved = _changed(before.scores, after.scores)
    assert moved == {pid for _, pid, _ in rows}
    next_day = score_store(store_engine, {"shop": "shopify"}, settings, NOW + timedelta(days=1), SEGMENTS)
    assert len(_changed(after.scores, next_day.scores)) > len(moved), (
        "a new day refreshes everyone whose values move"
    )


def _changed(old: dict[int, dict[str, object]], new: dict[int, dict[str, object]]) -> set[int]:
    """Customers whose pushed values differ between two scorings."""

    def visible(scores: dict[str, object] | None) -> dict[str, object]:
        return field_values("espd_", OUTPUTS, scores, NOW.date(), "")

    return {pid for pid in new if visible(new[pid]) != visible(old.get(pid))}
