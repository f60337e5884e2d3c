"""Klaviyo: profiles and events in, espd_ profile properties out (see ../shared/notes/klaviyo.md)."""

from connectors.klaviyo.connector import KlaviyoConnector

__all__ = ["KlaviyoConnector"]
