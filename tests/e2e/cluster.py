"""The four simulators behind one espd config: what end-to-end tests run `espd` processes against."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, Simulator, SimulatorServer
from tests.connectors.adapters import klaviyo, mailchimp, shopify
from tests.connectors.contract import VendorAdapter

REPO = Path(__file__).resolve().parents[2]
ADAPTERS: dict[str, VendorAdapter] = {
    a.vendor: a for a in (klaviyo.ADAPTER, mailchimp.ADAPTER, shopify.ADAPTER)
}
try:
    from tests.connectors.adapters import brevo

    ADAPTERS["brevo"] = brevo.ADAPTER
except ImportError:  # the Brevo connector is not registered yet
    pass
SECRET_KEYS = {"shopify": "access_token"}


def registered_vendors() -> list[str]:
    names = {ep.name for ep in entry_points(group="espd.connectors")}
    return [v for v in ("shopify", "klaviyo", "mailchimp", "brevo") if v in names and v in ADAPTERS]


@dataclass
class Cluster:
    """Simulators seeded with one shop, served on loopback, and the config pointing espd at them."""

    shop: ShopData
    state_dir: Path
    # The documented limits ×20: these tests are about crash safety and correctness, not pacing
    # (the connector and limits tests run at the documented limits), and Shopify's Standard-plan
    # cost bucket alone would take minutes over a few hundred customers' orders.
    limits: Limits = field(default_factory=lambda: Limits(scale=20.0))
    sims: dict[str, Simulator] = field(default_factory=dict)
    servers: dict[str, SimulatorServer] = field(default_factory=dict)

    def start(self, vendors: list[str]) -> Cluster:
        for vendor in vendors:
            sim = ADAPTERS[vendor].simulator(self.shop, Faults(), self.limits)
            self.sims[vendor] = sim
            self.servers[vendor] = sim.serve()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    @property
    def config_path(self) -> Path:
        return self.state_dir.parent / "espd.yaml"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "COLUMNS": "200"}
        for vendor, sim in self.sims.items():
            env[f"ESPD_E2E_{vendor.upper()}_SECRET"] = sim.credentials[SECRET_KEYS.get(vendor, "api_key")]
        return env

    def write_config(self, extra: str = "") -> Path:
        lines = [f"state_dir: {self.state_dir}", "connectors:"]
        for vendor, sim in self.sims.items():
            url = sim.base_url(self.servers[vendor])
            secret = SECRET_KEYS.get(vendor, "api_key")
            lines += [f"  {vendor}:", f"    type: {vendor}", f"    base_url: {url}", "    push: true"]
            lines.append(f"    {secret}: ${{ESPD_E2E_{vendor.upper()}_SECRET}}")
            if vendor == "shopify":
                lines.append(f"    shop: {sim.credentials['shop']}")
        lines += ["engine:", "  min_buyers: 100", extra]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path

    def espd(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sync", *args],
            cwd=REPO,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def once(self, timeout: float = 600) -> dict[str, object]:
        """Run `espd once --json` to the end; return its summary."""
        process = self.espd("once", "--json", "--log-level", "INFO", str(self.config_path))
        out, err = process.communicate(timeout=timeout)
        self.last_stderr = err
        assert process.returncode == 0, f"espd once failed ({process.returncode}):\n{out}\n{err[-4000:]}"
        return json.loads(out.strip().splitlines()[-1])

    def kill_when(self, condition: Callable[[], bool], timeout: float = 300) -> str:
        """Start `espd once`, SIGKILL it as soon as `condition()` holds; return what it logged."""
        process = self.espd("once", "--log-level", "INFO", str(self.config_path))
        deadline = time.monotonic() + timeout
        while not condition():
            if process.poll() is not None:
                raise AssertionError("espd finished before the kill point was reached")
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("the kill point was never reached")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=30)
        return err
