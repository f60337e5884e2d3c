"""Mailchimp Marketing API v3 connector (notes: ../shared/notes/mailchimp.md)."""

from connectors.mailchimp.connector import MailchimpConnector

__all__ = ["MailchimpConnector"]
