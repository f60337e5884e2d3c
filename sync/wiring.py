"""Turn the YAML's connector sections into connector instances (the only place that knows both)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from connectors.base import Connector, ConnectorSettings, EventSink, connector_class
from sync.config import ConnectorBase, ConnectorConfig

COMMON_OPTIONS = frozenset(ConnectorBase.model_fields) | {"type", "streams"}


def connector_settings(name: str, config: ConnectorConfig) -> ConnectorSettings:
    """Secrets go into `credentials`; vendor-specific options (list_id, shop, plan...) into `options`."""
    credentials = {k: v for k, v in config if isinstance(v, SecretStr)}
    options = {k: v for k, v in config if k not in COMMON_OPTIONS and k not in credentials}
    return ConnectorSettings(
        name=name,
        base_url=config.base_url,
        credentials=credentials,
        streams=tuple(config.streams),
        lookback=timedelta(minutes=config.lookback_minutes),
        timeout_seconds=config.timeout_seconds,
        options=options,
    )


def build_connector(
    name: str, config: ConnectorConfig, *, dry_run: bool = False, sink: EventSink | None = None
) -> Connector:
    return connector_class(config.type)(connector_settings(name, config), dry_run=dry_run, sink=sink)
