"""`espd fields`, `espd explain`, `espd uplift`, `espd audit` on a real (SQLite) store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from sync import tables
from sync.audit import audit_run
from sync.cli import app
from sync.config import load_config
from sync.scoring import score_store
from sync.store import migrate, open_engine, session_scope
from tests.sync.shop_store import AT, fill_store

CONFIG = """\
state_dir: {state}
connectors:
  shop: {{type: shopify, shop: x.myshopify.com, access_token: t, push: true}}
  mc: {{type: mailchimp, api_key: k, push: true}}
  brevo: {{type: brevo, api_key: k, push: true}}
engine: {{min_buyers: 100000, sensitive_attributes: [country]}}
fields:
  destinations:
    mc: [churn_risk, lifecycle_stage, control_group]
segments:
  control_group: {{share: 0.3, salt: cli}}
"""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    path = state / "espd.yaml"
    path.write_text(CONFIG.format(state=state), encoding="utf-8")
    config = load_config(path)
    engine = open_engine(config.store_url)
    migrate(engine)
    fill_store(engine, people=120)
    score = score_store(engine, {"shop": "shopify"}, config.engine, AT, config.segments)
    with session_scope(engine) as session:
        run = tables.Run(kind="cycle", started_at=AT, status="ok")
        session.add(run)
        session.flush()
        run_id = int(run.id or 0)
    audit_run(engine, run_id, score, config)
    engine.dispose()
    return path


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_fields_lists_vendor_names_and_types(config_path: Path) -> None:
    mailchimp = _run("fields", "--destination", "mc", str(config_path))
    assert "ESPD_CHURN" in mailchimp and "ESPD_LIFEC" in mailchimp and "ESPD_CONTR" in mailchimp
    tags = re.findall(r"\bESPD_[A-Z0-9_]+\b", mailchimp)
    assert len(tags) == len(set(tags)) == 5 and all(len(t) <= 10 for t in tags)
    assert "espd_clv_365" not in mailchimp, "only the outputs configured for mc"
    brevo = _run("fields", "--destination", "brevo", str(config_path))
    assert "ESPD_NEXT_BEST_CATEGORY" in brevo and "float" in brevo and "boolean" in brevo


def test_explain_by_profile_id_shows_values_and_model(config_path: Path) -> None:
    engine = open_engine(load_config(config_path).store_url)
    with Session(engine) as session:
        score = session.exec(select(tables.Score).where(tables.Score.output == "lifecycle_stage")).first()
    engine.dispose()
    assert score is not None
    out = _run("explain", str(score.profile_id), str(config_path))
    assert f"Customer {score.profile_id}" in out and str(score.value_text) in out
    assert "@" not in out, "no emails"


def test_explain_unknown_customer_fails(config_path: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "no-such-id", str(config_path)])
    assert result.exit_code == 1 and "no customer" in result.output


def test_uplift_reports_both_groups_with_an_interval(config_path: Path) -> None:
    out = _run("uplift", str(config_path), "--days", "400")
    assert "treated" in out and "control" in out and "CI [" in out and "Newcombe" in out


def test_audit_shows_sizes(config_path: Path) -> None:
    out = _run("audit", str(config_path))
    assert "lifecycle_stage" in out and "stability (PSI)" in out
