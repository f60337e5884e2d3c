"""The dashboard in a real headless Chromium, after `espd demo --serve` ran a full cycle.

It checks the figures on each page against the demo's store, that every request the browser made
went to 127.0.0.1 (Chromium's performance log carries the DevTools network events), and saves one
screenshot per page under artifacts/screenshots/ (their paths are printed for CI). Chromium and
chromedriver come from Debian (scripts/ensure-browser installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from sync import tables
from sync.store import open_engine
from tests.support.store_queries import first_churn_score

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,1600",
)
DEMO = (sys.executable, "-m", "sync", "demo", "--shop", "600", "--limit-scale", "50")
pytestmark = pytest.mark.timeout(600)


def _start_demo(state_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*DEMO, "--state-dir", str(state_dir), "--serve", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/dashboard/)", line)
        if found:
            return process, found.group(1)
    raise AssertionError("espd demo --serve never printed a dashboard URL:\n" + "".join(lines[-40:]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    state_dir = tmp_path_factory.mktemp("browser") / "demo"
    process, url = _start_demo(state_dir)
    engine = open_engine(f"sqlite:///{state_dir / 'espd.sqlite'}")
    try:
        yield url, engine
    finally:
        engine.dispose()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "run scripts/ensure-browser first (installs chromium and chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _visit(browser: webdriver.Chrome, url: str, name: str) -> str:
    browser.get(url)
    assert "espd ·" in browser.title, f"{url} did not render a dashboard page: {browser.title!r}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"dashboard-{name}.png"
    browser.find_element(By.TAG_NAME, "body").screenshot(str(shot))
    print(f"screenshot: {shot}")
    return browser.page_source


def _requested_hosts(browser: webdriver.Chrome) -> set[str]:
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            parts = urlsplit(message["params"]["request"]["url"])
            hosts.add(parts.hostname or parts.scheme)
    return hosts


def _count(engine: Engine, statement: object) -> int:
    with Session(engine) as session:
        return int(session.execute(statement).scalar_one())


def test_each_page_in_chromium_shows_the_stores_figures_and_fetches_nothing_from_elsewhere(
    demo: tuple[str, Engine], browser: webdriver.Chrome
) -> None:
    url, engine = demo
    overview = _visit(browser, url, "overview")
    with Session(engine) as session:
        run = session.execute(select(tables.Run).order_by(tables.Run.id.desc())).scalars().first()
        names = [n for (n,) in session.execute(select(tables.SyncState.connector).distinct())]
    assert run is not None and run.counts
    failing = {e.split(":", 1)[0] for e in run.errors or []}
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-run="{run.id}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.pulled").text == f"{run.counts['pulled']:,}"
    assert row.find_element(By.CSS_SELECTOR, "td.pushed").text == f"{run.counts['pushed']:,}"
    assert len(names) == 4
    for name in names:
        connector = browser.find_element(By.CSS_SELECTOR, f'tr[data-connector="{name}"]')
        state = connector.find_element(By.CSS_SELECTOR, "td.state").text
        assert (state == "ok") == (name not in failing), (name, state, run.errors)
        held = _count(engine, select(func.count()).where(tables.Identity.source == name))
        assert connector.find_element(By.CSS_SELECTOR, "td.identities").text == f"{held:,}"
    assert "@" not in overview

    _visit(browser, url + "models", "models")
    scored = _count(engine, select(func.count()).where(tables.Score.output == "churn_risk"))
    cell = browser.find_element(By.CSS_SELECTOR, 'tr[data-output="churn_risk"] td.customers')
    assert cell.text == f"{scored:,}" and scored > 0

    segments = _visit(browser, url + "segments", "segments")
    for name in names:
        confirmed = _count(
            engine,
            select(func.count()).where(
                tables.PushLedger.destination == name, tables.PushLedger.confirmed_at.is_not(None)
            ),
        )
        cell = browser.find_element(By.CSS_SELECTOR, f'tr[data-destination="{name}"] td.confirmed')
        assert cell.text == f"{confirmed:,}" and (confirmed > 0 or name in failing)
    assert segments.count("<svg") >= 3

    _visit(browser, url + "customer", "lookup")
    score = first_churn_score(engine)
    browser.find_element(By.ID, "key").send_keys(str(score.profile_id))
    browser.find_element(By.CSS_SELECTOR, "form#lookup button").click()
    WebDriverWait(browser, 10).until(
        expected_conditions.url_matches(rf"/dashboard/customer/{score.profile_id}$")
    )
    customer = _visit(browser, browser.current_url, "customer")
    value = browser.find_element(By.CSS_SELECTOR, 'tr[data-field="espd_churn_risk"] td.value').text
    assert float(value) == round(score.value_num, 4)
    assert "@" not in customer and "@" not in browser.title

    hosts = _requested_hosts(browser)
    assert hosts == {"127.0.0.1"}, f"the browser requested {sorted(hosts)}"
