"""The operations the simulator serves, with the contract numbers copied from Klaviyo's OpenAPI spec
(`../shared/specs/klaviyo/stable.json`, revision 2026-07-15): scopes (`x-klaviyo-scopes`), rate limits
(`x-klaviyo-ratelimit`), allowed query parameters, `page[size]` ranges, sort and sparse-fieldset enums and
filter field/operator pairs (`x-klaviyo-filters`).

The table is data, kept in one place, so a strictness rule is changed here and nowhere else. It is copied
rather than read from the spec at run time because the simulator ships with espd (demo, `espd simulate`)
where the spec files are not present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Filter value kinds: how a value must be written in `op(field,value)`.
STRING, DATETIME, NUMBER, NONE = "string", "datetime", "number", "none"


@dataclass(frozen=True)
class FilterField:
    """One filterable field: its value kind, the operators taking a single value and those taking a list."""

    kind: str
    single: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PageSize:
    minimum: int
    maximum: int
    default: int


@dataclass(frozen=True)
class Operation:
    operation_id: str
    scopes: tuple[str, ...]
    burst: int  # requests per 1 s window
    steady: int  # requests per 60 s window
    fields: dict[str, frozenset[str]] = field(default_factory=dict)  # fields[<type>] -> allowed names
    additional_fields: frozenset[str] = frozenset()
    includes: frozenset[str] = frozenset()
    sorts: frozenset[str] = frozenset()
    filters: dict[str, FilterField] = field(default_factory=dict)
    page_size: PageSize | None = None
    cursor: bool = False

    def allowed_params(self) -> frozenset[str]:
        names = {f"fields[{kind}]" for kind in self.fields}
        if self.additional_fields:
            names.add("additional-fields[profile]")
        if self.includes:
            names.add("include")
        if self.sorts:
            names.add("sort")
        if self.filters:
            names.add("filter")
        if self.page_size:
            names.add("page[size]")
        if self.cursor:
            names.add("page[cursor]")
        return frozenset(names)


def _both_directions(*names: str) -> frozenset[str]:
    return frozenset(names) | frozenset(f"-{name}" for name in names)


_COMPARE = frozenset({"greater-or-equal", "greater-than", "less-or-equal", "less-than"})
_STRICT_COMPARE = frozenset({"greater-than", "less-than"})
_EQUALS = frozenset({"equals"})
_ANY_EQUALS = frozenset({"any", "equals"})

_SUBSCRIPTION_FIELDS = [
    f"subscriptions.email.marketing.{name}"
    for name in [
        "can_receive_email_marketing",
        "consent",
        "consent_timestamp",
        "custom_method_detail",
        "double_optin",
        "last_updated",
        "list_suppressions",
        "method",
        "method_detail",
        "suppression",
    ]
]
# The "permission" channels (open tracking, WhatsApp) share one attribute set.
_PERMISSION = [
    "can_receive",
    "consent",
    "consent_timestamp",
    "created_timestamp",
    "last_updated",
    "metadata",
    "valid_until",
]
_OPEN_TRACKING = [f"subscriptions.email.open_tracking.{name}" for name in _PERMISSION]
_PUSH = [
    f"subscriptions.mobile_push.marketing.{name}"
    for name in ["can_receive_push_marketing", "consent", "consent_timestamp"]
]
_SMS = [
    f"subscriptions.sms.{kind}.{name}"
    for kind in ("marketing", "transactional")
    for name in (
        f"can_receive_sms_{kind}",
        "consent",
        "consent_timestamp",
        "last_updated",
        "method",
        "method_detail",
    )
]
_WHATSAPP = [
    f"subscriptions.whatsapp.{kind}.{name}"
    for kind in ("conversational", "marketing", "transactional")
    for name in [*_PERMISSION, "phone_number"]
]
_PREDICTIVE = [
    f"predictive_analytics.{name}"
    for name in [
        "average_days_between_orders",
        "average_order_value",
        "churn_probability",
        "expected_date_of_next_order",
        "historic_clv",
        "historic_number_of_orders",
        "predicted_clv",
        "predicted_number_of_orders",
        "ranked_channel_affinity",
        "total_clv",
    ]
]
_PUSH_TOKEN = [
    "background",
    "created",
    "enablement_status",
    "id",
    "metadata",
    "platform",
    "recorded_date",
    "token",
    "vendor",
]
_DEVICE_METADATA = [
    f"metadata.{name}"
    for name in [
        "app_build",
        "app_id",
        "app_name",
        "app_version",
        "device_id",
        "device_model",
        "environment",
        "klaviyo_sdk",
        "manufacturer",
        "os_name",
        "os_version",
        "sdk_version",
    ]
]
_LOCATION = [
    f"location.{name}"
    for name in [
        "address1",
        "address2",
        "city",
        "country",
        "ip",
        "latitude",
        "longitude",
        "region",
        "timezone",
        "zip",
    ]
]
PROFILE_BASE_FIELDS = [
    "created",
    "email",
    "external_id",
    "first_name",
    "id",
    "image",
    "last_event_date",
    "last_name",
    "locale",
    "location",
    "organization",
    "phone_number",
    "properties",
    "title",
    "updated",
]
PROFILE_FIELDS = frozenset(
    PROFILE_BASE_FIELDS
    + _LOCATION
    + ["predictive_analytics", *_PREDICTIVE]
    + ["subscriptions", "subscriptions.email", "subscriptions.email.marketing", *_SUBSCRIPTION_FIELDS]
    + ["subscriptions.email.open_tracking", *_OPEN_TRACKING]
    + ["subscriptions.mobile_push", "subscriptions.mobile_push.marketing", *_PUSH]
    + ["subscriptions.sms", "subscriptions.sms.marketing", "subscriptions.sms.transactional", *_SMS]
    + ["subscriptions.whatsapp", *(f"subscriptions.whatsapp.{k}" for k in ("conversational", "marketing"))]
    + ["subscriptions.whatsapp.transactional", *_WHATSAPP]
)
# Fields an event's included profile may carry (get_events' fields[profile] enum has no subscriptions).
EVENT_PROFILE_FIELDS = frozenset(PROFILE_BASE_FIELDS + _LOCATION)
METRIC_FIELDS = frozenset({"created", "id", "integration", "name", "updated"})
JOB_FIELDS = frozenset(
    [
        "completed_at",
        "completed_count",
        "created_at",
        "expires_at",
        "failed_count",
        "id",
        "started_at",
        "status",
        "total_count",
    ]
)
PROFILE_ADDITIONAL = frozenset({"subscriptions", "predictive_analytics"})

_PROFILE_WRITE_QUERY = {
    "fields": {"profile": PROFILE_FIELDS},
    "additional_fields": PROFILE_ADDITIONAL,
}
_SUPPRESSION_TS = "subscriptions.email.marketing.suppression.timestamp"
_LIST_SUPPRESSION_TS = "subscriptions.email.marketing.list_suppressions.timestamp"

OPERATIONS: dict[str, Operation] = {
    op.operation_id: op
    for op in (
        Operation(
            "get_profiles",
            ("profiles:read",),
            75,
            750,
            fields={
                "profile": PROFILE_FIELDS,
                "conversation": frozenset({"channel", "id"}),
                "push-token": frozenset([*_PUSH_TOKEN, *_DEVICE_METADATA]),
            },
            additional_fields=PROFILE_ADDITIONAL,
            includes=frozenset({"conversations", "push-tokens"}),
            sorts=_both_directions(
                "created", "email", "id", "updated", _SUPPRESSION_TS, _LIST_SUPPRESSION_TS
            ),
            filters={
                "id": FilterField(STRING, _EQUALS, _ANY_EQUALS),
                "email": FilterField(STRING, _EQUALS, _ANY_EQUALS),
                "phone_number": FilterField(STRING, _EQUALS, _ANY_EQUALS),
                "external_id": FilterField(STRING, _EQUALS, _ANY_EQUALS),
                "_kx": FilterField(STRING, _EQUALS),
                "created": FilterField(DATETIME, _STRICT_COMPARE),
                "updated": FilterField(DATETIME, _STRICT_COMPARE),
                "subscriptions.email.marketing.list_suppressions.reason": FilterField(STRING, _EQUALS),
                _LIST_SUPPRESSION_TS: FilterField(DATETIME, _COMPARE),
                "subscriptions.email.marketing.list_suppressions.list_id": FilterField(STRING, _EQUALS),
                "subscriptions.email.marketing.suppression.reason": FilterField(STRING, _EQUALS),
                _SUPPRESSION_TS: FilterField(DATETIME, _COMPARE),
            },
            page_size=PageSize(1, 100, 20),
            cursor=True,
        ),
        Operation(
            "get_metrics",
            ("metrics:read",),
            10,
            150,
            fields={
                "metric": METRIC_FIELDS,
                "flow": frozenset(["archived", "created", "id", "name", "status", "trigger_type", "updated"]),
            },
            includes=frozenset({"flow-triggers"}),
            filters={
                "integration.name": FilterField(STRING, _EQUALS),
                "integration.category": FilterField(STRING, _EQUALS),
            },
            cursor=True,
        ),
        Operation(
            "get_events",
            ("events:read",),
            350,
            3500,
            fields={
                "attribution": frozenset({"id"}),
                "event": frozenset({"datetime", "event_properties", "id", "timestamp", "uuid"}),
                "metric": METRIC_FIELDS,
                "profile": EVENT_PROFILE_FIELDS,
            },
            includes=frozenset({"attributions", "metric", "profile"}),
            sorts=_both_directions("datetime", "timestamp"),
            filters={
                "metric_id": FilterField(STRING, _EQUALS, _EQUALS),
                "profile_id": FilterField(STRING, _EQUALS),
                "profile": FilterField(NONE, frozenset({"has"})),
                "metric": FilterField(NONE, frozenset({"has"})),
                "datetime": FilterField(DATETIME, _COMPARE),
                "timestamp": FilterField(NUMBER, _COMPARE),
            },
            page_size=PageSize(1, 1000, 200),
            cursor=True,
        ),
        Operation(
            "bulk_import_profiles",
            ("lists:write", "profiles:write"),
            10,
            150,
            fields={"profile-bulk-import-job": JOB_FIELDS},
        ),
        Operation(
            "get_bulk_import_profiles_jobs",
            ("lists:read", "profiles:read"),
            10,
            150,
            fields={"profile-bulk-import-job": JOB_FIELDS},
            sorts=_both_directions("created_at"),
            filters={"status": FilterField(STRING, _EQUALS, _ANY_EQUALS)},
            page_size=PageSize(1, 100, 20),
            cursor=True,
        ),
        Operation(
            "get_bulk_import_profiles_job",
            ("lists:read", "profiles:read"),
            10,
            150,
            fields={
                "profile-bulk-import-job": JOB_FIELDS,
                "list": frozenset(["created", "id", "name", "opt_in_process", "updated"]),
            },
            includes=frozenset({"lists"}),
        ),
        Operation(
            "get_errors_for_bulk_import_profiles_job",
            ("profiles:read",),
            10,
            150,
            fields={
                "import-error": frozenset(
                    ["code", "detail", "id", "original_payload", "source", "source.pointer", "title"]
                )
            },
            page_size=PageSize(1, 100, 20),
            cursor=True,
        ),
        Operation("create_or_update_profile", ("profiles:write",), 75, 750, **_PROFILE_WRITE_QUERY),
        Operation("update_profile", ("profiles:write",), 75, 750, **_PROFILE_WRITE_QUERY),
        Operation("request_profile_deletion", ("data-privacy:write",), 3, 60),
    )
}

# get_profiles with additional-fields[profile]=predictive_analytics has its own, lower limit.
PREDICTIVE_PROFILES = Operation("get_profiles:predictive_analytics", ("profiles:read",), 10, 150)

ALL_SCOPES = frozenset(scope for op in OPERATIONS.values() for scope in op.scopes)
METRICS_PAGE_SIZE = 200
