"""What the bench scripts share: the machine a figure was measured on, the one-JSON-line output, and
the four simulators served with an espd config pointing at them.

Bench scripts run as `python bench/<name>.py`, so this directory is on sys.path and they import this
module as `benchlib`; `ROOT` is put on sys.path here so they can import espd's packages too.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from simulators.dataset import ShopData
    from simulators.harness import Limits, Simulator
    from sync.config import Config

ALL_VENDORS = ("klaviyo", "mailchimp", "brevo", "shopify")


def machine() -> dict[str, Any]:
    """Where and when a figure was measured; the box is shared, so the load average matters."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (the simulators run inside it too)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(bench: str, result: dict[str, Any], summary: list[str]) -> None:
    """Print the human summary, then the ONE JSON line (last, so `tail -1` finds it)."""
    for line in summary:
        print(line)
    print(json.dumps({"bench": bench, **result, "machine": machine()}, default=str))


@contextmanager
def served_simulators(
    shop: ShopData | None, state_dir: Path, limits: Limits, vendors: tuple[str, ...] = ALL_VENDORS
) -> Iterator[tuple[Config, dict[str, Simulator]]]:
    """Serve the vendors' simulators seeded from `shop` and yield espd's config for them (as `espd demo`).

    Vendors left out of `vendors` are served empty and disabled in the config. Imported lazily so
    the engine-only benches do not load the daemon.
    """
    import simulators
    from sync.commands.common import read_config
    from sync.commands.demo import write_demo_config

    with ExitStack() as stack:
        served: dict[str, tuple[Simulator, str]] = {}
        for vendor in simulators.VENDORS:
            simulator = simulators.build(vendor, shop if vendor in vendors else None, limits=limits)
            server = simulator.serve()
            stack.callback(server.stop)
            served[vendor] = (simulator, simulator.base_url(server))
        config = read_config(write_demo_config(state_dir, served))
        enabled = {n: c.model_copy(update={"enabled": n in vendors}) for n, c in config.connectors.items()}
        yield (
            config.model_copy(update={"connectors": enabled}),
            {vendor: sim for vendor, (sim, _) in served.items()},
        )
