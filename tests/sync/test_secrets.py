"""A secret given in config never shows up in CLI output, log records or the store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.config import load_config

SECRET = "pk_SECRET_d9f1c2a7e4b6"  # distinctive, so any leak is found by a byte search
FILE_SECRET = "shpat_FILESECRET_0b8e"


def test_secret_appears_in_no_output_log_or_database_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text(FILE_SECRET)
    config = tmp_path / "espd.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "connectors:\n"
        "  klaviyo:\n    type: klaviyo\n    api_key: ${ESPD_TEST_SECRET}\n"
        "  shop:\n    type: shopify\n    shop: demo.myshopify.com\n"
        f"    access_token_file: {tmp_path / 'token'}\n"
    )
    monkeypatch.setenv("ESPD_TEST_SECRET", SECRET)
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    outputs = [runner.invoke(app, [command, str(config)]) for command in ("validate", "init-db", "status")]
    assert all(r.exit_code == 0 for r in outputs), [r.output for r in outputs]

    loaded = load_config(config)
    assert loaded.connectors["klaviyo"].api_key.get_secret_value() == SECRET  # it really was read
    assert loaded.connectors["shop"].access_token.get_secret_value() == FILE_SECRET
    rendered = repr(loaded) + str(loaded) + loaded.model_dump_json()

    texts = [r.output for r in outputs] + [caplog.text, rendered]
    for secret in (SECRET, FILE_SECRET):
        assert not any(secret in text for text in texts)
        for path in (tmp_path / "state").iterdir():
            assert secret.encode() not in path.read_bytes(), path.name
