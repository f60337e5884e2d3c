"""Erasure propagation against the real simulators over loopback, on SQLite and PostgreSQL.

`espd forget` deletes locally, queues one sealed request per platform configured with `erase: true`
and asks the vendors at once; what a vendor could not answer stays pending for the next drain. The
store never holds the erased person's address in clear, and a stale vendor page cannot bring them
back.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select
from sqlmodel import Session
from typer.testing import CliRunner

from simulators import brevo, klaviyo, mailchimp, shops
from simulators.dataset import ShopData
from simulators.harness import Simulator, SimulatorServer
from simulators.shopify.webhooks import send_compliance_webhooks
from sync import tables
from sync.cli import app
from sync.config import ConfigError, load_config
from sync.daemon import record_erasure_metrics
from sync.erasure import ErasureReport, drain, enqueue, erasing_connectors, propagate, targets_of
from sync.health import HealthServer, HealthState
from sync.ingest import IngestPolicy
from sync.leases import LeaseBook, erase_key, lease_book
from sync.metrics import Metrics
from sync.pipeline import run_cycle
from sync.privacy import erasure_key, forget
from sync.pull import pull_all
from sync.store import migrate, open_engine
from sync.webhooks import ShopifyComplianceWebhook
from sync.wiring import build_connector

VENDORS = ("klaviyo", "mailchimp", "brevo")


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return shops.generate(120, seed=5)


@dataclass
class Vendors:
    sims: dict[str, Simulator]
    servers: dict[str, SimulatorServer]

    def held(self, vendor: str, email: str) -> bool:
        """Whether the vendor still holds the person (read from its state, not through espd)."""
        state = self.sims[vendor].state
        if vendor == "klaviyo":
            return state.find_profile(email=email) is not None  # applies deletions that came due
        if vendor == "mailchimp":
            return hashlib.md5(email.encode()).hexdigest() in state.audience.members
        return email in state.contacts.by_email

    def writes(self, vendor: str) -> list[str]:
        return [f"{e.method} {e.path}" for e in self.sims[vendor].log.writes()]


@pytest.fixture
def vendors(shop: ShopData) -> Iterator[Vendors]:
    sims = {
        "klaviyo": klaviyo.build(shop, deletion_delay_seconds=0.0),
        "mailchimp": mailchimp.build(shop),
        "brevo": brevo.build(shop),
    }
    servers = {name: sim.serve() for name, sim in sims.items()}
    try:
        yield Vendors(sims, servers)
    finally:
        for server in servers.values():
            server.stop()


def _config(
    tmp_path: Path, vendors: Vendors, store_url: str, erase: dict[str, bool], key: str = "api_key"
) -> Path:
    lines = [f"state_dir: {tmp_path / 'state'}", "store:", f"  url: {store_url}", "connectors:"]
    for name in VENDORS:
        sim = vendors.sims[name]
        lines += [
            f"  {name}:",
            f"    type: {name}",
            f"    base_url: {sim.base_url(vendors.servers[name])}",
            f"    api_key: {sim.credentials.get(key, sim.credentials['api_key'])}",
            f"    erase: {'true' if erase.get(name) else 'false'}",
        ]
    path = tmp_path / "espd.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _everywhere(shop: ShopData) -> str:
    """A person every one of the three ESPs holds."""
    return next(p.email for p in shop.people if {"klaviyo", "mailchimp", "brevo"} <= p.platforms)


def _forget(config: Path, email: str) -> str:
    result = CliRunner().invoke(app, ["forget", email, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def _pull(config: Path, engine: Engine, names: tuple[str, ...]) -> None:
    loaded = load_config(config)
    started = datetime.now(UTC)
    policy = IngestPolicy(timedelta(days=30), started, erasure_key(loaded.state_dir))

    async def run() -> None:
        connectors = [build_connector(n, loaded.connectors[n]) for n in names]
        try:
            reports = await pull_all(connectors, engine, policy, started)
        finally:
            for connector in connectors:
                await connector.aclose()
        assert not [r.error for r in reports if r.error]

    asyncio.run(run())


def _brevo_outage(vendors: Vendors) -> None:
    """Brevo answers its next three contact requests 503: more than one forget's tries."""
    faults = vendors.sims["brevo"].faults
    faults.error_status, faults.error_burst, faults.error_path_prefix = 503, 3, "/v3/contacts/"


def _requests(engine: Engine) -> dict[str, tables.ErasureRequest]:
    with Session(engine) as session:
        rows = session.execute(select(tables.ErasureRequest)).scalars().all()
    return {row.connector: row for row in rows}


def _clear_copies(engine: Engine, email: str) -> list[str]:
    """Every table and column where the address appears in clear, whatever its type."""
    metadata = MetaData()
    metadata.reflect(engine)
    found = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for column, value in row._mapping.items():
                    text = (
                        bytes(value).decode("latin-1")
                        if isinstance(value, bytes | memoryview)
                        else str(value)
                    )
                    if email in text.lower():
                        found.append(f"{table.name}.{column}")
    return found


def _profile_count(engine: Engine, email: str) -> int:
    with Session(engine) as session:
        return len(session.execute(select(tables.Profile).where(tables.Profile.email == email)).all())


def test_forget_erases_at_each_enabled_vendor_leaves_the_others_and_no_stale_pull_brings_them_back(
    tmp_path: Path, store_url: str, store_engine: Engine, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    config = _config(tmp_path, vendors, store_url, {"klaviyo": True, "brevo": True})
    engine = store_engine
    _pull(config, engine, VENDORS)
    assert _profile_count(engine, email) == 1

    output = _forget(config, email)

    assert "klaviyo: erased" in output and "brevo: erased" in output
    assert not vendors.held("klaviyo", email) and not vendors.held("brevo", email)
    assert vendors.held("mailchimp", email)  # erase: false: untouched, not even asked
    assert vendors.writes("mailchimp") == []
    requests = _requests(engine)
    assert set(requests) == {"klaviyo", "brevo"}
    assert {r.status for r in requests.values()} == {"erased"}
    assert all(r.sealed_email is None and r.attempts == 1 for r in requests.values())

    _pull(config, engine, ("mailchimp",))  # Mailchimp still lists them: a stale source
    assert _profile_count(engine, email) == 0
    assert _clear_copies(engine, email) == []
    if engine.dialect.name == "sqlite":  # nor in the file's free pages, once the WAL is checkpointed
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database = Path(str(engine.url.database))
        assert email.encode() not in database.read_bytes()


def test_mailchimp_deletes_permanently_in_the_audience(
    tmp_path: Path, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    config = _config(tmp_path, vendors, f"sqlite:///{tmp_path / 'espd.sqlite'}", {"mailchimp": True})

    output = _forget(config, email)

    assert "mailchimp: erased" in output
    assert not vendors.held("mailchimp", email)
    hashed = hashlib.md5(email.encode()).hexdigest()
    assert vendors.writes("mailchimp") == [
        f"POST /3.0/lists/{vendors.sims['mailchimp'].state.audience.list_id}/members/{hashed}"
        "/actions/delete-permanent"
    ]
    assert vendors.writes("klaviyo") == vendors.writes("brevo") == []
    _forget(config, email)  # asked again: the member is gone, which counts as done
    assert _requests(open_engine(f"sqlite:///{tmp_path / 'espd.sqlite'}"))["mailchimp"].status == "not_found"


def test_a_vendor_outage_leaves_the_request_pending_and_sealed_until_the_next_drain(
    tmp_path: Path, store_url: str, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    config = _config(tmp_path, vendors, store_url, {"brevo": True})
    _brevo_outage(vendors)

    output = _forget(config, email)

    assert "brevo: still pending" in output
    assert vendors.held("brevo", email)
    engine = open_engine(store_url)
    pending = _requests(engine)["brevo"]
    assert pending.status == "pending" and pending.attempts == 1 and "503" in (pending.last_error or "")
    assert pending.sealed_email and email.encode() not in pending.sealed_email
    assert _clear_copies(engine, email) == []  # only sealed: a stolen database does not say who
    metrics = Metrics()
    record_erasure_metrics(metrics, engine)
    assert b'espd_erasures_pending{connector="brevo"} 1.0' in metrics.exposition()[0]
    status = CliRunner().invoke(app, ["status", str(config)], env={"COLUMNS": "200"})
    assert status.exit_code == 0 and "Erasures owed" in status.output

    loaded = load_config(config)
    (report,) = asyncio.run(propagate(loaded, engine, erasure_key(loaded.state_dir)))

    assert (report.erased, report.pending) == (1, 0)
    assert not vendors.held("brevo", email)
    done = _requests(engine)["brevo"]
    assert done.status == "erased" and done.attempts == 2 and done.sealed_email is None
    record_erasure_metrics(metrics, engine)
    assert b'espd_erasures_pending{connector="brevo"} 0.0' in metrics.exposition()[0]
    engine.dispose()


def test_brevo_refusing_to_delete_the_account_owner_is_recorded_as_refused_not_retried(
    tmp_path: Path, vendors: Vendors
) -> None:
    url = f"sqlite:///{tmp_path / 'espd.sqlite'}"
    config = _config(tmp_path, vendors, url, {"brevo": True})

    output = _forget(config, brevo.DEFAULT_ACCOUNT_EMAIL)

    assert "brevo: refused" in output
    assert len(vendors.writes("brevo")) == 1  # one DELETE, answered 405, never repeated
    refused = _requests(open_engine(url))["brevo"]
    assert refused.status == "refused" and refused.sealed_email is None
    assert "not allowed to delete" in (refused.last_error or "")


def test_shopify_cannot_be_configured_to_erase(tmp_path: Path) -> None:
    path = tmp_path / "espd.yaml"
    path.write_text(
        "connectors:\n  shop:\n    type: shopify\n    shop: a.myshopify.com\n    access_token: t\n"
        "    erase: true\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "espd.yaml:6:5 connectors.shop.erase: espd never deletes Shopify customers" in str(error.value)


def test_a_verified_redact_webhook_queues_the_erasure_for_the_next_drain(
    tmp_path: Path, store_url: str, store_engine: Engine, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    config = load_config(_config(tmp_path, vendors, store_url, {"brevo": True}))
    key = erasure_key(config.state_dir)
    webhook = ShopifyComplianceWebhook(
        "shop", [b"secret"], store_engine, key, config.state_dir, erase_to=lambda: erasing_connectors(config)
    )
    server = HealthServer(state=HealthState(), metrics=Metrics(), store_ping=lambda: None, port=0)
    server.add_route("/webhooks/shopify/shop", webhook.__call__, methods=("POST",), public=True)
    with server:
        url = f"{server.url}/webhooks/shopify/shop"
        common = {"secret": "secret", "shop_domain": "espd-demo.myshopify.com", "attempts": 1}
        redact = send_compliance_webhooks(url, customer={"id": 1, "email": email}, **common)
        assert [d.statuses[-1] for d in redact] == [200, 200, 200]  # data_request, redact, shop/redact

    queued = _requests(store_engine)
    assert set(queued) == {"brevo"} and queued["brevo"].status == "pending"
    assert vendors.held("brevo", email) and _clear_copies(store_engine, email) == []

    (report,) = asyncio.run(propagate(config, store_engine, key))  # what the daemon's cycle runs first

    assert report.erased == 1 and not vendors.held("brevo", email)


def test_a_cycle_drains_owed_erasures_before_it_pulls(
    tmp_path: Path, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    url = f"sqlite:///{tmp_path / 'espd.sqlite'}"
    config_path = _config(tmp_path, vendors, url, {"brevo": True})
    config = load_config(config_path)
    config = config.model_copy(update={"connectors": {"brevo": config.connectors["brevo"]}})
    engine = open_engine(url)
    migrate(engine)
    key = erasure_key(config.state_dir)
    enqueue(engine, key, email, ["brevo"], reason="test")  # as `espd forget` did before an outage
    forget(engine, key, email, reason="test")
    vendors.sims["brevo"].log.clear()

    report = asyncio.run(run_cycle(config, engine))

    assert report.counts()["erasures_settled"] == 1 and not vendors.held("brevo", email)
    entries = vendors.sims["brevo"].log.entries()
    first_delete = next(i for i, e in enumerate(entries) if e.method == "DELETE")
    first_pull = next(i for i, e in enumerate(entries) if e.method == "GET" and e.path == "/v3/contacts")
    assert first_delete < first_pull
    assert _profile_count(engine, email) == 0


def test_a_key_without_the_deletion_scope_keeps_the_request_pending_and_says_why(
    tmp_path: Path, vendors: Vendors, shop: ShopData
) -> None:
    url = f"sqlite:///{tmp_path / 'espd.sqlite'}"
    config = _config(tmp_path, vendors, url, {"klaviyo": True}, key="read_only_api_key")

    output = _forget(config, _everywhere(shop))

    assert "klaviyo: still pending" in output
    pending = _requests(open_engine(url))["klaviyo"]
    assert pending.status == "pending" and pending.sealed_email is not None
    assert "auth_failed (HTTP 403)" in (pending.last_error or "")
    assert "data-privacy:write" in (pending.last_error or "")  # the operator learns which scope


def test_a_forget_killed_while_the_vendor_is_answering_leaves_the_request_for_the_next_drain(
    tmp_path: Path, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    url = f"sqlite:///{tmp_path / 'espd.sqlite'}"
    config_path = _config(tmp_path, vendors, url, {"brevo": True})
    brevo_sim = vendors.sims["brevo"]
    brevo_sim.faults.hang_seconds, brevo_sim.faults.hang_count = 8.0, 1  # longer than the kill takes
    process = subprocess.Popen(
        [sys.executable, "-m", "sync", "forget", email, "--config", str(config_path)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while brevo_sim.log.in_flight == 0:  # the DELETE is on its way: local erasure is done
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=30)

    engine = open_engine(url)
    owed = _requests(engine)["brevo"]
    assert owed.status == "pending" and owed.attempts == 0 and owed.sealed_email is not None
    config = load_config(config_path)
    (report,) = asyncio.run(propagate(config, engine, erasure_key(config.state_dir)))
    assert report.erased + report.not_found == 1 and not vendors.held("brevo", email)


def test_a_platform_another_daemon_is_draining_is_left_to_it(
    tmp_path: Path, store_url: str, vendors: Vendors, shop: ShopData
) -> None:
    email = _everywhere(shop)
    config = _config(tmp_path, vendors, store_url, {"brevo": True})
    _brevo_outage(vendors)
    _forget(config, email)  # the outage leaves it owed
    loaded = load_config(config)
    engine = open_engine(store_url)
    other, mine = LeaseBook(engine, "other-daemon"), lease_book(engine, loaded)
    held = other.claim(erase_key("brevo"))
    assert held is not None
    writes_before = len(vendors.writes("brevo"))

    async def drain_with_my_leases() -> list[ErasureReport]:
        connectors = [build_connector("brevo", loaded.connectors["brevo"])]
        try:
            return await drain(
                engine, erasure_key(loaded.state_dir), targets_of(loaded, connectors), leases=mine
            )
        finally:
            await connectors[0].aclose()

    (refused,) = asyncio.run(drain_with_my_leases())
    assert refused.held_elsewhere and refused.erased == 0
    assert len(vendors.writes("brevo")) == writes_before and _requests(engine)["brevo"].status == "pending"

    other.release(held)
    (report,) = asyncio.run(drain_with_my_leases())
    assert not report.held_elsewhere and report.erased == 1 and not vendors.held("brevo", email)
    engine.dispose()
