"""Every vendor's documented rate limits, in one table (sources: ../shared/notes/*.md).

Connectors read their numbers from here; no sleep or limit is written anywhere else. The limiter
classes enforce them on the client side so espd stays under the vendor's ceiling instead of
discovering it through 429s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    requests: int
    seconds: float


# Klaviyo: per operation, a 1 s burst and a 60 s steady fixed window (x-klaviyo-ratelimit in the spec).
# The docs budget the "L" tier at 700/min where the spec says 750: budget with the lower figure.
KLAVIYO: dict[str, tuple[Window, ...]] = {
    "get_profiles": (Window(75, 1), Window(700, 60)),
    "get_profiles_predictive": (Window(10, 1), Window(150, 60)),
    "get_metrics": (Window(10, 1), Window(150, 60)),
    "get_events": (Window(350, 1), Window(3500, 60)),
    "bulk_import_profiles": (Window(10, 1), Window(150, 60)),
    "get_bulk_import_profiles_jobs": (Window(10, 1), Window(150, 60)),
    "get_bulk_import_profiles_job": (Window(10, 1), Window(150, 60)),
    "get_bulk_import_errors": (Window(10, 1), Window(150, 60)),
    "create_or_update_profile": (Window(75, 1), Window(700, 60)),
    "update_profile": (Window(75, 1), Window(700, 60)),
    "request_profile_deletion": (Window(3, 1), Window(60, 60)),
}

# Mailchimp: no request quota, only 10 simultaneous connections per account; espd keeps 2 spare.
MAILCHIMP_MAX_CONNECTIONS = 10
MAILCHIMP_DEFAULT_CONNECTIONS = 8

# Brevo: per endpoint family, requests per second AND per hour, by plan.
BREVO: dict[str, dict[str, tuple[Window, ...]]] = {
    "general": {
        "contacts": (Window(10, 1), Window(36_000, 3600)),
        "events": (Window(10, 1), Window(36_000, 3600)),
        "orders_status": (Window(5, 1), Window(18_000, 3600)),
        "smtp": (Window(300, 3600),),
        "other": (Window(100, 3600),),
    },
    "advanced": {
        "contacts": (Window(20, 1), Window(72_000, 3600)),
        "events": (Window(20, 1),),
        "orders_status": (Window(10, 1),),
        "smtp": (Window(600, 3600),),
        "other": (Window(200, 3600),),
    },
    "extended": {
        "contacts": (Window(60, 1),),
        "events": (Window(60, 1),),
        "orders_status": (Window(15, 1),),
        "smtp": (Window(1800, 3600),),
        "other": (Window(600, 3600),),
    },
}

# Shopify: a leaky bucket of cost points per app and shop; restore rate by plan (points/second).
# The bucket size is read from every response's extensions.cost.throttleStatus.
SHOPIFY_RESTORE_RATE = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
SHOPIFY_MAX_QUERY_COST = 1000
# Calls (and HTTP connections) in flight per shop: enough to hide the round trip at the Plus restore
# rate; the cost bucket, not this number, keeps espd under the limit.
SHOPIFY_CALLS_IN_FLIGHT = 4
SHOPIFY_METAFIELDS_PER_CALL = 25
# Metafield definitions per owner type (docs: 256 per resource type); checked before creating more.
SHOPIFY_DEFINITIONS_PER_OWNER = 256

# Erasure requests one daemon cycle sends per platform: about a minute of each vendor's deletion
# rate, so a backlog drains over a few cycles and never starves the pull that follows.
KLAVIYO_ERASURES_PER_CYCLE = 60  # request_profile_deletion: 60/min steady
MAILCHIMP_ERASURES_PER_CYCLE = 600  # no quota, only the connection cap; one call per audience
BREVO_ERASURES_PER_CYCLE = 600  # the contacts family: 10/s on the General plan
ERASURE_ATTEMPTS = 3  # tries per call; the durable queue asks again next cycle
