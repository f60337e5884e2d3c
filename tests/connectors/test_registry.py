"""Connectors are found through the espd.connectors entry points and refuse streams they lack."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from connectors.base import Connector, ConnectorSettings, connector_class


@pytest.mark.parametrize("vendor", ["klaviyo", "mailchimp", "brevo", "shopify"])
def test_every_vendor_is_registered_and_refuses_unknown_streams(vendor: str) -> None:
    cls = connector_class(vendor)
    assert issubclass(cls, Connector) and cls.type_name == vendor
    settings = ConnectorSettings(
        name="x",
        base_url="http://127.0.0.1:9",
        credentials={"api_key": SecretStr("k"), "access_token": SecretStr("t")},
        streams=(cls.stream_names[0], "no_such_stream"),
        options={"shop": "demo.myshopify.com"},
    )
    with pytest.raises(ValueError, match=r"connector x: unknown .* stream\(s\) \['no_such_stream'\]"):
        cls(settings)


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"no connector of type 'hubspot' \(known: brevo, klaviyo"):
        connector_class("hubspot")
