"""The arrows point one way: sync uses connectors and engine; they never use sync or each other."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _modules_loaded_by(package: str) -> set[str]:
    """Import every module of `package` in a fresh interpreter and list what got loaded."""
    names = [package] + [
        f"{package}.{info.name}" for info in pkgutil.walk_packages([str(REPO / package)]) if not info.ispkg
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("engine", {"sync", "connectors", "simulators", "httpx", "sqlmodel", "sqlalchemy", "apscheduler"}),
        ("connectors", {"sync", "engine", "simulators", "lightgbm", "sqlmodel", "apscheduler"}),
        ("simulators", {"sync", "engine", "connectors"}),
    ],
)
def test_package_loads_nothing_it_must_not_know(package: str, forbidden: set[str]) -> None:
    loaded = _top(_modules_loaded_by(package))
    assert package in loaded
    assert not (loaded & forbidden), f"{package} loaded {sorted(loaded & forbidden)}"
