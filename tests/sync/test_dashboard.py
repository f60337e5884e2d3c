"""The dashboard's routes over a store filled by one real cycle (espd demo's shop and simulators).

Every figure checked here is read back from the store independently of the dashboard's own queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session
from starlette.testclient import TestClient

import simulators
from engine.metrics import calibration_curve, gains_curve
from simulators import shops
from simulators.harness import Limits
from sync import tables
from sync.commands.common import read_config
from sync.commands.cycle import run_one_cycle
from sync.commands.demo import write_demo_config
from sync.config import Config
from sync.dashboard import create_app
from sync.health import HealthServer, HealthState
from sync.metrics import Metrics
from sync.store import open_engine, session_scope
from tests.support.store_queries import first_churn_score

SHOP_PEOPLE = 600
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def cycle_store(state_dir: Path) -> Config:
    """One full cycle of `espd demo` against every registered simulator; returns its config."""
    data = shops.generate(SHOP_PEOPLE, seed=7)
    with ExitStack() as stack:
        served = {}
        for vendor in simulators.VENDORS:
            simulator = simulators.build(vendor, data, limits=Limits(scale=50.0))
            server = simulator.serve()
            stack.callback(server.stop)
            served[vendor] = (simulator, server.url + simulator.base_path)
        config = read_config(write_demo_config(state_dir, served))
        report = run_one_cycle(config)
    assert report.counts()["pulled"] > SHOP_PEOPLE and report.counts()["pushed"] > 0, report.errors
    return config


def failing(engine: Engine) -> set[str]:
    """Connectors named in the last run's errors (the page must not call those ok)."""
    with Session(engine) as session:
        run = session.execute(select(tables.Run).order_by(tables.Run.id.desc())).scalars().first()
    return {e.split(":", 1)[0] for e in (run.errors or [])} if run else set()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Engine]]:
    config = cycle_store(tmp_path_factory.mktemp("dashboard") / "state")
    engine = open_engine(config.store_url)
    yield config, engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(store: tuple[Config, Engine]) -> TestClient:
    config, engine = store
    return TestClient(create_app(engine, config), follow_redirects=False)


def _row(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(1)


def _cell(row: str, css: str) -> str:
    found = re.search(rf'class="n {css}">([^<]*)<', row)
    assert found, f"no {css} cell in {row[:200]}"
    return found.group(1)


def _scalar(engine: Engine, statement: object) -> int:
    with Session(engine) as session:
        return int(session.execute(statement).scalar_one())


def test_overview_shows_every_connector_ok_with_what_the_store_holds_and_the_run_counts(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    config, engine = store
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>espd · Overview</title>" in page.text
    assert len(config.connectors) == len(simulators.VENDORS)
    for name in config.connectors:
        row = _row(page.text, "data-connector", name)
        assert (">ok<" in row) == (name not in failing(engine))
        held = _scalar(engine, select(func.count()).where(tables.Identity.source == name))
        assert _cell(row, "identities") == f"{held:,}"
    with Session(engine) as session:
        run = session.execute(select(tables.Run).order_by(tables.Run.id.desc())).scalars().first()
    assert run is not None and run.counts
    row = _row(page.text, "data-run", str(run.id))
    for column in ("pulled", "pushed", "parked"):
        assert _cell(row, column) == f"{int(run.counts[column]):,}"
    assert run.counts["pulled"] > SHOP_PEOPLE


def test_models_page_counts_scored_customers_per_output_and_says_what_is_not_stored(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    _, engine = store
    page = client.get("/models")
    assert page.status_code == 200
    scored = _scalar(
        engine, select(func.count()).select_from(tables.Score).where(tables.Score.output == "churn_risk")
    )
    assert scored > 0
    assert _cell(_row(page.text, "data-output", "churn_risk"), "customers") == f"{scored:,}"
    assert 'data-output="input_digest"' not in page.text
    with Session(engine) as session:
        judged = [
            m for m in session.execute(select(tables.Model)).scalars() if (m.metrics or {}).get("holdout")
        ]
    assert ('id="no-models"' in page.text) == (not judged)


def test_a_stored_model_shows_its_holdout_beside_the_baseline_and_its_curves(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    _, engine = store
    rng = np.random.default_rng(3)
    p = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p).astype(float)
    calibration = calibration_curve(y, p)
    gains = gains_curve(y * 10, p)
    metrics = {
        "holdout": {
            "lightgbm": {"auc": 0.7312, "log_loss": 0.51},
            "baseline": {"auc": 0.6604, "log_loss": 0.58},
        },
        "reason": "LightGBM beat the baseline on the holdout",
        "calibration": {k: calibration[k].tolist() for k in ("mean_p", "rate")},
        "gains": {k: gains[k].tolist() for k in ("customers", "captured")},
        "importance": {"recency_days": 0.4, "n_orders": 0.35, "opened_90": 0.25},
    }
    with session_scope(engine) as session:
        session.add(
            tables.Model(
                output="test_purchase", version="t1", kind="lightgbm", metrics=metrics, promoted=True
            )
        )
    try:
        page = client.get("/models").text
    finally:
        with session_scope(engine) as session:
            session.execute(delete(tables.Model).where(tables.Model.output == "test_purchase"))
    row = _row(page, "data-metric", "auc")
    assert _cell(row, "lightgbm") == "0.7312" and _cell(row, "baseline") == "0.6604"
    for chart, curve in (("calibration", calibration), ("gains", gains)):
        svg = re.search(rf'id="{chart}-test_purchase".*?</svg>', page, re.S)
        assert svg, chart
        lines = re.findall(r'class="series" points="([^"]*)"', svg.group(0))
        assert [len(line.split()) for line in lines] == [2, len(curve)]
    assert "40.0%" in re.search(r'id="importance-test_purchase".*?</svg>', page, re.S).group(0)
    assert "Not stored for this model: training window" in page


def test_segments_page_matches_the_ledger_and_the_scores(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    config, engine = store
    page = client.get("/segments")
    assert page.status_code == 200
    for name in config.connectors:
        confirmed = _scalar(
            engine,
            select(func.count()).where(
                tables.PushLedger.destination == name, tables.PushLedger.confirmed_at.is_not(None)
            ),
        )
        row = _row(page.text, "data-destination", name)
        assert _cell(row, "confirmed") == f"{confirmed:,}"
        assert confirmed > 0 or name in failing(engine)
    churn = re.search(r'id="dist-churn_risk".*?</svg>', page.text, re.S).group(0)
    counts = [int(n.replace(",", "")) for n in re.findall(r'class="bar-value"[^>]*>([\d,]+)<', churn)]
    scored = _scalar(
        engine,
        select(func.count()).where(tables.Score.output == "churn_risk", tables.Score.value_num.is_not(None)),
    )
    assert sum(counts) == scored


def _some_identity(engine: Engine, source: str) -> tables.Identity:
    with Session(engine) as session:
        return (
            session.execute(
                select(tables.Identity).where(
                    tables.Identity.source == source, tables.Identity.profile_id.is_not(None)
                )
            )
            .scalars()
            .first()
        )


def test_lookup_by_profile_or_vendor_id_shows_the_customers_field_values(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    _, engine = store
    score = first_churn_score(engine)
    with Session(engine) as session:
        identity = (
            session.execute(select(tables.Identity).where(tables.Identity.profile_id == score.profile_id))
            .scalars()
            .first()
        )
    found = client.post("/customer", data={"kind": "profile", "key": str(score.profile_id)})
    assert found.status_code == 303 and found.headers["location"] == f"/customer/{score.profile_id}"
    by_vendor = client.post("/customer", data={"kind": "vendor", "key": identity.vendor_id})
    assert by_vendor.status_code == 303 and by_vendor.headers["location"].endswith(f"/{score.profile_id}")
    page = client.get(found.headers["location"])
    assert page.status_code == 200
    assert f"<title>espd · Customer {score.profile_id}</title>" in page.text
    value = re.search(
        r'data-field="espd_churn_risk"><td><code>[^<]*</code></td><td class="value">([^<]*)<', page.text
    )
    assert value and float(value.group(1)) == round(score.value_num, 4)


def test_unknown_customers_are_404_and_emails_are_refused(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    _, engine = store
    missing = _scalar(engine, select(func.max(tables.Profile.id))) + 1
    assert client.get(f"/customer/{missing}").status_code == 404
    assert client.post("/customer", data={"kind": "vendor", "key": "no-such-vendor-id"}).status_code == 404
    refused = client.post("/customer", data={"kind": "vendor", "key": "someone@example.com"})
    assert refused.status_code == 400 and "not by email" in refused.text
    assert "someone@example.com" not in refused.text
    assert client.post("/customer", data={"kind": "profile", "key": "abc"}).status_code == 400


def test_no_page_shows_an_email_and_nothing_references_another_origin(
    client: TestClient, store: tuple[Config, Engine]
) -> None:
    _, engine = store
    with Session(engine) as session:
        profiles = session.execute(select(tables.Profile.id).limit(25)).scalars().all()
    paths = ["/", "/models", "/segments", "/customer", *(f"/customer/{p}" for p in profiles)]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert not EMAIL.search(response.text), path
        assert not re.search(r'(src|href|action)="(https?:)?//', response.text), path
        assert "default-src 'none'" in response.headers["content-security-policy"]
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and "url(" not in css.text


def test_mounted_behind_the_servers_token(store: tuple[Config, Engine]) -> None:
    config, engine = store
    server = HealthServer(
        state=HealthState(), metrics=Metrics(), store_ping=lambda: None, port=0, token="s3cret-token"
    )
    server.mount("/dashboard", create_app(engine, config))
    with server:
        assert httpx.get(f"{server.url}/dashboard/").status_code == 401
        assert (
            httpx.get(f"{server.url}/dashboard/models", headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        page = httpx.get(f"{server.url}/dashboard/", headers={"Authorization": "Bearer s3cret-token"})
        assert page.status_code == 200
        assert 'href="/dashboard/models"' in page.text
        assert httpx.get(f"{server.url}/healthz").status_code == 200
