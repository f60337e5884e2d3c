"""`espd simulate` serves a seeded vendor simulator that answers real requests until interrupted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_simulate_serves_brevo_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sync", "simulate", "--vendor", "brevo", "--shop", "tiny", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        output = ""
        deadline = time.monotonic() + 60
        while "serving" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            output += line
        url = re.search(r"url\s*│\s*(\S+)", output)
        key = re.search(r"api_key\s*│\s*(\S+)", output)
        assert url and key, output
        response = httpx.get(
            f"{url.group(1)}/contacts", params={"limit": 2}, headers={"api-key": key.group(1)}
        )
        assert response.status_code == 200
        assert len(response.json()["contacts"]) == 2 and response.json()["count"] > 2
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
