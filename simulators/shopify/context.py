"""Per-request execution context and the error helpers resolvers raise through graphql-core."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from simulators.harness import Faults

if TYPE_CHECKING:
    from simulators.shopify.state import ShopifyState

DOCS_URL = "https://shopify.dev/api/usage/access-scopes"


@dataclass
class Context:
    state: ShopifyState
    scopes: frozenset[str]
    faults: Faults
    base_url: str
    protected_data: bool = True  # Level-2 protected customer data approved
    bulk: bool = False  # executing a bulk query: connections need no first/last and return everything
    search: list[dict[str, Any]] = field(default_factory=list)  # extensions.search entries

    @property
    def all_orders(self) -> bool:
        return "read_all_orders" in self.scopes

    def require(self, scope: str, what: str) -> None:
        """ACCESS_DENIED for this field (HTTP 200, the field becomes null) when a scope is missing.
        A write scope implies its read scope, as on Shopify."""
        implied = {s.replace("write_", "read_") for s in self.scopes if s.startswith("write_")}
        if scope not in self.scopes | implied:
            raise GraphQLError(
                f"Access denied for {what} field. Required access: `{scope}` access scope.",
                extensions={
                    "code": "ACCESS_DENIED",
                    "documentation": DOCS_URL,
                    "requiredAccess": f"`{scope}`",
                },
            )

    def require_protected(self, what: str) -> None:
        if not self.protected_data:
            raise GraphQLError(
                f"This app is not approved to access the {what} field. See "
                "https://shopify.dev/docs/apps/launch/protected-customer-data for more details.",
                extensions={"code": "ACCESS_DENIED", "documentation": DOCS_URL},
            )


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: float, currency: str) -> dict[str, str]:
    """MoneyV2: `Decimal` amounts are strings."""
    return {"amount": f"{amount:.2f}", "currencyCode": currency}


def money_bag(amount: float, currency: str) -> dict[str, dict[str, str]]:
    return {"shopMoney": money(amount, currency), "presentmentMoney": money(amount, currency)}


def parse_gid(gid: str, expected: str | None = None) -> tuple[str, int] | None:
    """`gid://shopify/Customer/123` -> ("Customer", 123); None when malformed or of another type."""
    parts = gid.split("/") if isinstance(gid, str) else []
    if len(parts) != 5 or parts[:3] != ["gid:", "", "shopify"] or not parts[4].isdigit():
        return None
    if expected is not None and parts[3] != expected:
        return None
    return parts[3], int(parts[4])


def invalid_id(gid: str) -> GraphQLError:
    return GraphQLError(f"Invalid global id '{gid}'", extensions={"code": "argumentLiteralsIncompatible"})
