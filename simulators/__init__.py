"""Strict local fakes of the vendor APIs espd talks to, and synthetic shops to fill them.

`build(vendor, shop)` returns a ready `harness.Simulator`; each vendor package has its own
`build` with vendor-specific options (rate-limit plans, injectable clocks, job timings).
"""

from __future__ import annotations

import importlib
from typing import Any

from simulators.dataset import PLATFORMS, ShopData
from simulators.harness import Simulator

VENDORS = PLATFORMS


def build(vendor: str, shop: ShopData | None = None, **options: Any) -> Simulator:
    """The simulator for `vendor` (klaviyo, mailchimp, brevo or shopify), seeded from `shop`."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; choose one of {', '.join(VENDORS)}")
    module = importlib.import_module(f"simulators.{vendor}")
    simulator: Simulator = module.build(shop, **options)
    return simulator
