"""Shopify Admin GraphQL connector (API 2026-04): see `connectors.shopify.connector`."""

from connectors.shopify.connector import ShopifyConnector

__all__ = ["ShopifyConnector"]
