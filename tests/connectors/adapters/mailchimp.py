"""Mailchimp in the connector contract suite: the strict simulator and the merge-field connector."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.mailchimp import MailchimpConnector
from simulators import mailchimp
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, LoggedRequest, Simulator
from tests.connectors.contract import VendorAdapter

CONSENT_KEYS = ("status", "status_if_new", "email_address", "marketing_permissions", "interests", "tags")


def _body(entry: LoggedRequest) -> Any:
    try:
        return json.loads(entry.body or b"null")
    except ValueError:
        return None


def changes_consent(method: str, path: str, body: Any) -> bool:
    """A member write that can create a contact or move a status (anything but a merge_fields PATCH)."""
    batch_subscribe = path.rstrip("/").count("/") == 3 and path.startswith("/3.0/lists/")
    if "/members" in path or batch_subscribe:
        if method in ("PUT", "POST"):
            return True
        if method == "PATCH":
            return not isinstance(body, dict) or any(key in body for key in CONSENT_KEYS)
    return False


class MailchimpAdapter(VendorAdapter):
    vendor = "mailchimp"
    profile_stream = "members"
    honours_retry_after = True

    def simulator(self, shop: ShopData, faults: Faults, limits: Limits) -> Simulator:
        return mailchimp.build(shop, faults=faults, limits=limits, keep_bodies=True)

    connector_class = MailchimpConnector

    def options(self, simulator: Simulator) -> dict[str, Any]:
        # A small page so the 600-person shop spans many windows; the simulator's listing has no
        # replication lag, so the run's upper bound needs no settling time.
        return {"page_size": 50, "settle_seconds": 0, "batch_threshold": 1000}

    def people(self, simulator: Simulator) -> dict[str, str]:
        audience = simulator.state.audience
        return {
            m.email.lower(): f"{audience.list_id}:{m.id}"
            for m in audience.members.values()
            if m.status != "archived"
        }

    def _member(self, simulator: Simulator, vendor_id: str) -> Any:
        return simulator.state.audience.members[vendor_id.partition(":")[2]]

    def touch(self, simulator: Simulator, vendor_id: str) -> None:
        audience = simulator.state.audience
        member = self._member(simulator, vendor_id)
        with audience.lock:
            member.merge_fields["FNAME"] = str(member.merge_fields.get("FNAME", "")) + "x"
            audience.touch(member)

    def updated_at(self, simulator: Simulator, vendor_id: str) -> datetime:
        return self._member(simulator, vendor_id).last_changed

    def stored_values(self, simulator: Simulator, vendor_id: str) -> dict[str, Any]:
        audience = simulator.state.audience
        member = self._member(simulator, vendor_id)
        names = {d.tag: d.name for d in audience.merge_fields.values()}
        return {names[tag]: value for tag, value in member.merge_fields.items() if tag.startswith("ESPD")}

    def consent_changes(self, requests: Sequence[LoggedRequest]) -> list[LoggedRequest]:
        found = []
        for entry in requests:
            body = _body(entry)
            if changes_consent(entry.method, entry.path, body):
                found.append(entry)
            elif entry.path.endswith("/batches") and entry.method == "POST" and isinstance(body, dict):
                ops = body.get("operations") or []
                if any(changes_consent(op["method"], "/3.0" + op["path"], _op_body(op)) for op in ops):
                    found.append(entry)
        return found


def _op_body(op: dict[str, Any]) -> Any:
    try:
        return json.loads(op.get("body") or "null")
    except ValueError:
        return None


ADAPTER = MailchimpAdapter()
