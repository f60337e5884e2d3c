"""Config loading: every problem reported with its exact file:line:col, secrets from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.commands.common import EXIT_CONFIG_ERROR
from sync.config import ConfigError, load_config
from sync.health import is_loopback

REPO = Path(__file__).resolve().parents[2]

BROKEN = """\
state_dir: /tmp/espd-state
connectors:
  klaviyo_main:
    type: klaviyo
    api_key: ${ESPD_TEST_UNSET_KEY}
    lookbak_minutes: 5
  shop:
    type: shopify
    shop: demo.myshopify.com
    access_token: abc
schedule:
  pull_every_minutes: hourly
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "espd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_reports_all_three_problems_with_exact_locations(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN)
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == EXIT_CONFIG_ERROR
    lines = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert len(lines) == 3, result.output
    assert lines[0].startswith(f"error {path}:5:14 connectors.klaviyo_main.api_key: ")
    assert "ESPD_TEST_UNSET_KEY" in lines[0]
    assert lines[1].startswith(f"error {path}:6:5 connectors.klaviyo_main.lookbak_minutes: unknown option")
    assert "did you mean 'lookback_minutes'?" in lines[1]
    assert lines[2].startswith(f"error {path}:12:3 schedule.pull_every_minutes: ")
    assert "'hourly'" in lines[2]


def test_valid_config_exits_zero(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN.replace("${ESPD_TEST_UNSET_KEY}", "${ESPD_TEST_KEY:-pk_x}")
                  .replace("lookbak", "lookback").replace("hourly", "60"))  # fmt: skip
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    config = load_config(path)
    assert config.connectors["klaviyo_main"].lookback_minutes == 5
    assert config.connectors["klaviyo_main"].api_key.get_secret_value() == "pk_x"


def test_example_config_is_valid_with_its_variables_set(tmp_path: Path) -> None:
    secret = tmp_path / "brevo"
    secret.write_text("xkeysib-from-file\n")
    env = {
        "SHOPIFY_ACCESS_TOKEN": "shpat_1",
        "KLAVIYO_API_KEY": "pk_1",
        "MAILCHIMP_API_KEY": "0" * 32 + "-us21",
        "BREVO_API_KEY_FILE": str(secret),
    }
    config = load_config(REPO / "config.example.yaml", environ=env)
    assert set(config.connectors) == {"shop", "klaviyo", "mailchimp", "brevo"}
    assert config.connectors["brevo"].api_key.get_secret_value() == "xkeysib-from-file"
    assert config.store_url.startswith("sqlite:///")


def test_secret_file_and_inline_secret_together_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "connectors:\n  k:\n    type: klaviyo\n    api_key: a\n    api_key_file: /x\n")
    with pytest.raises(ConfigError, match="give either api_key or api_key_file"):
        load_config(path)


def test_misspelt_secret_file_key_is_suggested(tmp_path: Path) -> None:
    path = _write(tmp_path, "connectors:\n  k:\n    type: klaviyo\n    api_kee_file: /x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    messages = [str(i) for i in caught.value.issues]
    assert any("4:5 connectors.k.api_kee_file" in m and "did you mean 'api_key_file'" in m for m in messages)
    assert any("connectors.k.api_key: required option is missing" in m for m in messages)


def test_unknown_connector_type_and_bad_yaml_are_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "connectors:\n  k:\n    type: hubspot\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value.issues[0]).startswith(f"{path}:3:")
    broken = _write(tmp_path, "server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"espd\.yaml:\d+:\d+ invalid YAML"):
        load_config(broken)


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError, match=r":3:3 server.port: duplicate key"):
        load_config(path)


def test_the_server_binds_to_loopback_and_requires_consent_unless_told_otherwise(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "state_dir: /tmp/espd-state\n"))
    assert is_loopback(config.server.bind) and config.server.token is None
    assert config.privacy.score_without_consent is False and config.privacy.extra_fields == []
