"""Brevo API v3 connector (see connector.py)."""

from connectors.brevo.connector import BrevoConnector

__all__ = ["BrevoConnector"]
