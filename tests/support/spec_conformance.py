"""Validate simulator responses against the vendors' official OpenAPI specs in ../shared/specs.

One loader for Klaviyo, Mailchimp and Brevo: each spec is parsed once per test session, may be
patched (Mailchimp's generated spec has self-referencing collection schemas; the vendor tests pass a
`patch` that repairs them), and every response is checked with openapi-core against the operation
the request matched. Spec validation of the 3 MB documents themselves is skipped: the specs are the
vendors', not ours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

REPO = Path(__file__).resolve().parents[2]
SPECS_DIR = Path(os.environ.get("ESPD_SPECS_DIR", REPO.parent / "shared" / "specs"))

SPEC_FILES = {
    "klaviyo": ("klaviyo/stable.json", "https://a.klaviyo.com"),
    "mailchimp": ("mailchimp/openapi.yaml", "https://server.api.mailchimp.com/3.0"),
    "brevo": ("brevo/swagger_definition_v3.yml", "https://api.brevo.com/v3"),
}


class _SpecLoader(yaml.CSafeLoader):
    """YAML loader that keeps timestamps as strings: OpenAPI examples are strings, and some vendor
    examples are impossible dates that PyYAML would refuse to build."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}

SpecPatch = Callable[[dict[str, Any]], None]
_patches: dict[str, SpecPatch] = {}


def register_patch(vendor: str, patch: SpecPatch) -> None:
    """Repair a known defect of a vendor's spec before it is loaded (call before the first check)."""
    _patches[vendor] = patch
    _openapi.cache_clear()


def load_spec_dict(vendor: str) -> dict[str, Any]:
    relative, _ = SPEC_FILES[vendor]
    path = SPECS_DIR / relative
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: vendor spec not found (set ESPD_SPECS_DIR to the shared/specs folder)"
        )
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_SpecLoader)


@cache
def _openapi(vendor: str) -> OpenAPI:
    spec = load_spec_dict(vendor)
    if vendor in _patches:
        _patches[vendor](spec)
    config = Config(
        spec_validator_cls=None,
        # Mailchimp answers errors as application/problem+json, which openapi-core cannot parse itself.
        extra_media_type_deserializers={"application/problem+json": json.loads},
    )
    return OpenAPI.from_dict(spec, config=config)


def assert_conforms(vendor: str, response: httpx.Response) -> None:
    """Raise if `response` (to a request a simulator answered) breaks the vendor's spec."""
    _, server = SPEC_FILES[vendor]
    request = response.request
    base_path = httpx.URL(server).path.rstrip("/")
    path = request.url.path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    mock_request = MockRequest(
        host_url=server.removesuffix(base_path) if base_path else server,
        method=request.method.lower(),
        path=base_path + path,
        args=dict(request.url.params.multi_items()),
        headers=dict(request.headers),
        data=request.content or None,
        content_type=request.headers.get("content-type", "application/json"),
    )
    content_type = response.headers.get("content-type", "application/json").split(";")[0]
    mock_response = MockResponse(
        data=response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=content_type,
    )
    _openapi(vendor).validate_response(mock_request, mock_response)
