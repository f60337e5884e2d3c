"""espd's configuration: pydantic models for the YAML file, and errors that name file:line:col.

Every section forbids unknown keys, so a misspelt option is an error with a "did you mean" rather
than a silently ignored setting. Secrets are `SecretStr` (never printed or logged) and may be given
inline (usually as `${ENV_VAR}`) or as `<name>_file:` pointing at a file, e.g. a systemd credential in
`$CREDENTIALS_DIRECTORY`. `load_config` reports every problem it finds, not just the first.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sync.output_checks import output_issues
from sync.yaml_source import Path_, Position, SourceIssue, YamlDocument, dotted, load_yaml

SECRET_FILE_SUFFIX = "_file"
_SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SCHEDULER_ADDRESS = re.compile(r"^([a-z][a-z0-9+]*://)?[^\s/:]+(:\d{1,5})?$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Section):
    url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file espd.sqlite in the state directory"
    )
    raw_retention_days: int = Field(default=30, ge=0, description="days to keep raw vendor JSON")
    shard_owner: str | None = Field(
        default=None,
        max_length=120,
        description=(
            "name this daemon's work leases carry (default: the host name), with a digest of state_dir"
        ),
    )
    lease_ttl_seconds: int = Field(
        default=300,
        ge=10,
        description="a stream held by a daemon that stopped renewing is free again after this long",
    )


class SecretFiles(Section):
    """A section whose secrets may instead be given as `<name>_file:` (read before validation)."""

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        secrets = {
            name for name, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)
        }
        result = dict(data)
        for name in secrets:
            file_key = name + SECRET_FILE_SUFFIX
            if file_key not in result:
                continue
            if name in result:
                raise ValueError(f"give either {name} or {file_key}, not both")
            path = Path(os.path.expandvars(str(result.pop(file_key))))
            try:
                result[name] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{file_key}: cannot read secret file {path}: {exc.strerror}") from None
        return result


class ConnectorBase(SecretFiles):
    """Options every connector has."""

    enabled: bool = True
    base_url: str | None = Field(default=None, description="override the vendor URL (simulators)")
    push: bool = Field(default=False, description="whether espd writes its fields to this platform")
    erase: bool = Field(
        default=False, description="whether `espd forget` and redact webhooks ask this platform to delete too"
    )
    lookback_minutes: int = Field(default=10, ge=0, le=7 * 24 * 60)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)


class KlaviyoConfig(ConnectorBase):
    type: Literal["klaviyo"]
    api_key: SecretStr
    revision: str = "2026-07-15"
    streams: list[Literal["profiles", "events"]] = ["profiles", "events"]


class MailchimpConfig(ConnectorBase):
    type: Literal["mailchimp"]
    api_key: SecretStr
    list_id: str | None = Field(default=None, description="audience to sync; default: every audience")
    streams: list[Literal["members", "email_activity", "orders"]] = ["members", "email_activity", "orders"]
    max_connections: int = Field(default=8, ge=1, le=10, description="Mailchimp allows 10 per account")


class BrevoConfig(ConnectorBase):
    type: Literal["brevo"]
    api_key: SecretStr
    plan: Literal["general", "advanced", "extended"] = "general"
    streams: list[Literal["contacts", "campaign_stats", "orders"]] = ["contacts", "orders"]


class ShopifyConfig(ConnectorBase):
    type: Literal["shopify"]
    shop: str = Field(description="the shop's myshopify.com domain")
    access_token: SecretStr
    api_version: str = "2026-04"
    webhook_secret: SecretStr | None = Field(default=None, description="app client secret for webhook HMACs")
    streams: list[Literal["customers", "orders"]] = ["customers", "orders"]

    @field_validator("erase")
    @classmethod
    def _shop_owns_its_customers(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "espd never deletes Shopify customers: deleting a customer is the shop's own decision, "
                "and Shopify sends its redact requests to espd (customers/redact); remove `erase: true`"
            )
        return value


ConnectorConfig = Annotated[
    KlaviyoConfig | MailchimpConfig | BrevoConfig | ShopifyConfig, Field(discriminator="type")
]


class ScheduleConfig(Section):
    pull_every_minutes: int = Field(default=60, ge=1)
    retrain_every_days: int = Field(default=7, ge=1)
    misfire_grace_seconds: int = Field(default=300, ge=1)


class EngineConfig(Section):
    horizon_days: int = Field(default=90, ge=7, le=730)
    min_buyers: int = Field(default=500, ge=1, description="below this, fall back to a baseline model")
    backend: Literal["local", "dask"] = Field(
        default="local", description="where features and boosting run: this process, or a Dask cluster"
    )
    dask_scheduler: str | None = Field(
        default=None, description="Dask scheduler address (tcp://host:8786); empty starts a local cluster"
    )
    sensitive_attributes: list[str] = Field(default_factory=list, description="never used as model features")
    chunk_customers: int = Field(
        default=50_000,
        ge=1,
        le=10_000_000,
        description="buyers per chunk the score stage reads from the store at a time (memory per chunk)",
    )

    @field_validator("dask_scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value and not _SCHEDULER_ADDRESS.match(value):
            raise ValueError(f"expected an address like tcp://host:8786, got {value!r}")
        return value or None


class FieldsConfig(Section):
    prefix: str = Field(default="espd_", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    outputs: list[str] | None = Field(default=None, description="outputs to push; default: all")
    destinations: dict[str, list[str]] = Field(
        default_factory=dict, description="connector name -> outputs (overrides `outputs` for it)"
    )


class SegmentRule(Section):
    name: str
    when: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _SEGMENT_NAME.match(value):
            raise ValueError("must be lower_snake_case, start with a letter, at most 64 characters")
        return value


class ControlGroupConfig(Section):
    share: float = Field(default=0.0, ge=0.0, le=0.5)
    salt: str = "espd"


class SegmentsConfig(Section):
    rules: list[SegmentRule] = Field(default_factory=list)
    control_group: ControlGroupConfig = ControlGroupConfig()


class PrivacyConfig(Section):
    score_without_consent: bool = Field(
        default=False,
        description="also score and push fields for people no platform reports subscribed",
    )
    extra_fields: list[str] = Field(
        default_factory=list, description="vendor profile properties to store beyond the ones espd uses"
    )


class ServerConfig(SecretFiles):
    bind: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    token: SecretStr | None = None
    dashboard: bool = False


class Config(Section):
    state_dir: Path = Path("state")
    store: StoreConfig = StoreConfig()
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    schedule: ScheduleConfig = ScheduleConfig()
    engine: EngineConfig = EngineConfig()
    fields: FieldsConfig = FieldsConfig()
    segments: SegmentsConfig = SegmentsConfig()
    server: ServerConfig = ServerConfig()
    privacy: PrivacyConfig = PrivacyConfig()

    @field_validator("connectors")
    @classmethod
    def _connector_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _SEGMENT_NAME.match(name):
                raise ValueError(f"connector name {name!r} must be lower_snake_case")
        return value

    @model_validator(mode="after")
    def _destinations_exist(self) -> Config:
        for name in self.fields.destinations:
            if name not in self.connectors:
                raise ValueError(f"fields.destinations.{name}: no connector named {name!r}")
        return self

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.state_dir / 'espd.sqlite'}"


class ConfigError(Exception):
    """Every problem found in a config file, each with its file:line:col."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise `ConfigError` listing every problem."""
    try:
        document = load_yaml(path, environ)
    except OSError as exc:
        raise ConfigError(
            [SourceIssue(Position(str(path), 1, 1), "", f"cannot read: {exc.strerror}")]
        ) from None
    issues = list(document.issues)
    if document.data is not None and not isinstance(document.data, dict):
        issues.append(
            SourceIssue(document.position_of(()), "", "the top level must be a mapping of sections")
        )
    if issues and document.data is None:
        raise ConfigError(issues)
    data = document.data if isinstance(document.data, dict) else {}
    reported = {issue.key for issue in issues}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        issues.extend(i for i in _pydantic_issues(exc, document) if i.key not in reported)
        raise ConfigError(sorted(issues, key=lambda i: (i.position.line, i.position.column))) from None
    issues.extend(output_issues(config, document))
    if issues:
        raise ConfigError(issues)
    return config


def _pydantic_issues(exc: ValidationError, document: YamlDocument) -> list[SourceIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        path, model = _yaml_path(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "type")  # point at the connector's `type:` line, not its name
        key = dotted(path)
        if error["type"] == "extra_forbidden":
            message = f"unknown option {path[-1]!r}"
            suggestion = _did_you_mean(str(path[-1]), model)
            message += f"; did you mean {suggestion!r}?" if suggestion else _allowed(model)
        elif error["type"] == "missing":
            message = "required option is missing"
        else:
            message = _describe(error)
        issues.append(SourceIssue(document.position_of(path), key, message))
    return issues


def _describe(error: Any) -> str:
    message = str(error["msg"])
    got = error.get("input")
    if error["type"].endswith(("_parsing", "_type")) and not isinstance(got, (dict, list)):
        return f"{message} (got {got!r})"
    return message.removeprefix("Value error, ")


def _yaml_path(loc: tuple[str | int, ...]) -> tuple[Path_, type[BaseModel] | None]:
    """Turn pydantic's error location into the YAML key path, dropping union tags.

    Also returns the model that owns the last key, so unknown keys can get a suggestion.
    """
    path: list[str | int] = []
    annotation: Any = Config
    owner: type[BaseModel] | None = Config
    for part in loc:
        model = _model_of(annotation)
        if model is not None:
            owner = model
            field = model.model_fields.get(str(part))
            path.append(part)
            annotation = field.annotation if field else None
            continue
        union_member = _union_member(annotation, part)
        if union_member is not None:
            annotation = union_member
            continue
        path.append(part)
        annotation = _item_type(annotation)
    return tuple(path), owner


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _union_member(annotation: Any, tag: str | int) -> type[BaseModel] | None:
    """The member of a discriminated union whose `type` literal equals `tag`."""
    for member in _flatten(annotation):
        model = _model_of(member)
        if model and "type" in model.model_fields and tag in get_args(model.model_fields["type"].annotation):
            return model
    return None


def _flatten(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _flatten(get_args(annotation)[0])
    args = get_args(annotation)
    if args and get_origin(annotation) not in (dict, list, tuple):
        return [m for a in args for m in _flatten(a)]
    return [annotation]


def _item_type(annotation: Any) -> Any:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = get_args(annotation)
    if get_origin(annotation) is dict:
        return args[1]
    if get_origin(annotation) in (list, tuple) and args:
        return args[0]
    return None


def _known_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    keys = list(model.model_fields)
    if issubclass(model, SecretFiles):
        keys += [
            n + SECRET_FILE_SUFFIX
            for n, f in model.model_fields.items()
            if f.annotation in (SecretStr, SecretStr | None)
        ]
    return keys


def _did_you_mean(key: str, model: type[BaseModel] | None) -> str | None:
    matches = difflib.get_close_matches(key, _known_keys(model), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _allowed(model: type[BaseModel] | None) -> str:
    keys = _known_keys(model)
    return f"; allowed: {', '.join(keys)}" if keys else ""
