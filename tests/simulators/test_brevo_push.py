"""Brevo simulator, write side: attribute definitions, `updateContact`, `/contacts/batch`,
`/contacts/import` with its process lifecycle, deletion, `/events`, and injected record rejects."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from tests.simulators.test_brevo_shop import Brevo, brevo, make_shop, running

__all__ = ["brevo"]  # the fixture, re-exported for pytest


def _define(brevo: Brevo, name: str, kind: str, category: str = "normal", **extra: Any) -> int:
    return brevo.send("POST", f"/contacts/attributes/{category}/{name}", {"type": kind, **extra}).status_code


def _attributes(brevo: Brevo) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in brevo.get("/contacts/attributes").json()["attributes"]}


def test_create_attribute_is_201_empty_upper_cased_and_listed(brevo: Brevo) -> None:
    response = brevo.send("POST", "/contacts/attributes/normal/espd_score", {"type": "float"})
    assert response.status_code == 201 and response.content == b""
    assert _attributes(brevo)["ESPD_SCORE"] == {"name": "ESPD_SCORE", "category": "normal", "type": "float"}
    duplicate = brevo.send("POST", "/contacts/attributes/normal/ESPD_SCORE", {"type": "float"})
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate_parameter"


@pytest.mark.parametrize(
    ("category", "body"),
    [
        ("transactional", {"type": "boolean"}),
        ("normal", {"type": "id"}),
        ("normal", {"type": "category"}),
        ("transactional", {"type": "multiple-choice", "multiCategoryOptions": ["a"]}),
        ("normal", {"type": "multiple-choice"}),
        ("category", {"type": "category"}),
        ("normal", {"type": "float", "value": "1"}),
        ("normal", {"type": "text", "enumeration": [{"value": 1, "label": "x"}]}),
        ("calculated", {"type": "float", "value": "SUM(X)"}),
        ("normal", {"type": "decimal"}),
    ],
)
def test_attribute_category_type_rules(brevo: Brevo, category: str, body: dict[str, Any]) -> None:
    response = brevo.send("POST", f"/contacts/attributes/{category}/ESPD_X", body, conform=category != "x")
    assert response.status_code == 400, body
    assert "ESPD_X" not in _attributes(brevo)


def test_allowed_combinations_and_type_immutability(brevo: Brevo) -> None:
    assert _define(brevo, "ESPD_FLAG", "boolean") == 201
    assert _define(brevo, "ESPD_ORDER", "id", "transactional") == 201
    assert _define(brevo, "ESPD_TAGS", "multiple-choice", multiCategoryOptions=["vip", "new"]) == 201
    seg = brevo.send(
        "POST", "/contacts/attributes/category/ESPD_SEG", {"enumeration": [{"value": 1, "label": "A"}]}
    )
    assert seg.status_code == 201
    assert _attributes(brevo)["ESPD_SEG"]["enumeration"] == [{"value": 1, "label": "A"}]
    change = brevo.send("PUT", "/contacts/attributes/normal/ESPD_FLAG", {"type": "text"}, conform=False)
    assert change.status_code == 400
    assert _attributes(brevo)["ESPD_FLAG"]["type"] == "boolean"
    grow = brevo.send(
        "PUT", "/contacts/attributes/category/ESPD_SEG", {"enumeration": [{"value": 2, "label": "B"}]}
    )
    assert grow.status_code == 204 and grow.content == b""
    missing = brevo.send("PUT", "/contacts/attributes/normal/NOPE", {"value": "x"}, conform=False)
    assert missing.status_code == 404


def test_put_stores_typed_values_bumps_modified_at_and_answers_204_empty(brevo: Brevo) -> None:
    for name, kind in (("ESPD_SCORE", "float"), ("ESPD_LAST", "date"), ("ESPD_VIP", "boolean")):
        assert _define(brevo, name, kind) == 201
    before = brevo.get("/contacts/1").json()["modifiedAt"]
    body = {"attributes": {"ESPD_SCORE": 87.5, "ESPD_LAST": "2026-05-02", "ESPD_VIP": True}}
    response = brevo.send("PUT", "/contacts/1", body, identifierType="contact_id")
    assert response.status_code == 204 and response.content == b""
    after = brevo.get("/contacts/1").json()
    assert after["attributes"] == {"FIRSTNAME": "First1", "LASTNAME": "Last1", **body["attributes"]}
    assert datetime.fromisoformat(after["modifiedAt"]) > datetime.fromisoformat(before)
    assert after["emailBlacklisted"] is False and after["listIds"] == [2, 3]


def test_put_silently_drops_wrongly_typed_values(brevo: Brevo) -> None:
    _define(brevo, "ESPD_SCORE", "float")
    _define(brevo, "ESPD_LAST", "date")
    bad = {"attributes": {"ESPD_SCORE": "high", "ESPD_LAST": "02/05/2026"}}
    assert brevo.send("PUT", "/contacts/person1%40shop.example", bad).status_code == 204
    assert "ESPD_SCORE" not in brevo.state.contact_by_email("person1@shop.example").attributes
    assert "ESPD_LAST" not in brevo.get("/contacts/1").json()["attributes"]


def test_put_rejects_undefined_attributes_and_never_creates(brevo: Brevo) -> None:
    undefined = brevo.send("PUT", "/contacts/1", {"attributes": {"ESPD_NOPE": 1}})
    assert undefined.status_code == 400 and undefined.json()["code"] == "invalid_parameter"
    lower = brevo.send("PUT", "/contacts/1", {"attributes": {"firstname": "x"}})
    assert lower.status_code == 400 and "upper case" in lower.json()["message"]
    unknown = brevo.send("PUT", "/contacts/new%40shop.example", {"attributes": {"FIRSTNAME": "x"}})
    assert unknown.status_code == 404
    assert brevo.get("/contacts").json()["count"] == 6


def test_put_can_change_consent_which_tests_must_be_able_to_see(brevo: Brevo) -> None:
    body = {"emailBlacklisted": True, "unlinkListIds": [2], "listIds": [3]}
    assert brevo.send("PUT", "/contacts/1", body).status_code == 204
    contact = brevo.get("/contacts/1").json()
    assert contact["emailBlacklisted"] is True and contact["listIds"] == [3]
    taken = brevo.send("PUT", "/contacts/1", {"attributes": {"EMAIL": "person2@shop.example"}})
    assert taken.status_code == 400 and taken.json()["metadata"] == {"duplicate_identifiers": ["email"]}


def test_injected_reject_records_fail_writes(brevo: Brevo) -> None:
    brevo.sim.faults.reject_records = {"person3@shop.example"}
    rejected = brevo.send("PUT", "/contacts/3", {"attributes": {"FIRSTNAME": "x"}})
    assert rejected.status_code == 400
    assert brevo.get("/contacts/3").json()["attributes"]["FIRSTNAME"] == "First3"
    assert brevo.send("PUT", "/contacts/4", {"attributes": {"FIRSTNAME": "y"}}).status_code == 204


def test_batch_is_retired_by_default() -> None:
    for retired in running(make_shop()):
        response = retired.send(
            "POST", "/contacts/batch", {"contacts": [{"id": 1, "attributes": {}}]}, conform=False
        )
        assert response.status_code == 404 and "retired" in response.json()["message"]


@pytest.fixture
def legacy() -> Iterator[Brevo]:
    yield from running(make_shop(), batch_retired=False)


def test_batch_is_all_or_nothing_and_lists_unknown_indexes(legacy: Brevo) -> None:
    items = [
        {"id": 1, "attributes": {"FIRSTNAME": "A"}},
        {"email": "person2@shop.example", "attributes": {"FIRSTNAME": "B"}},
        {"id": 99, "attributes": {"FIRSTNAME": "C"}},
        {"email": "ghost@shop.example", "attributes": {"FIRSTNAME": "D"}},
    ]
    response = legacy.send("POST", "/contacts/batch", {"contacts": items}, conform=False)
    assert response.status_code == 404
    assert response.json() == {"code": "document_not_found", "message": "No contact found for indexes 2,3"}
    assert legacy.get("/contacts/1").json()["attributes"]["FIRSTNAME"] == "First1"
    ok = legacy.send("POST", "/contacts/batch", {"contacts": items[:2]})
    assert ok.status_code == 204 and ok.content == b""
    assert legacy.get("/contacts/2").json()["attributes"]["FIRSTNAME"] == "B"


def test_batch_needs_exactly_one_identifier_per_item(legacy: Brevo) -> None:
    for item in ({"attributes": {}}, {"id": 1, "email": "person1@shop.example"}):
        response = legacy.send("POST", "/contacts/batch", {"contacts": [item]})
        assert response.status_code == 400


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet: the test asserts on what arrived."""


@pytest.fixture
def hook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_import_lifecycle_creates_contacts_and_adds_list_membership(brevo: Brevo, hook: str) -> None:
    _define(brevo, "ESPD_SCORE", "float")
    body = {
        "jsonBody": [
            {"email": "person3@shop.example", "attributes": {"ESPD_SCORE": 5.5, "UNKNOWN": 1}},
            {"email": "erased@shop.example", "attributes": {"ESPD_SCORE": 1.0}},
        ],
        "listIds": [2],
        "notifyUrl": hook,
    }
    response = brevo.send("POST", "/contacts/import", body)
    assert response.status_code == 202
    process = f"/processes/{response.json()['processId']}"
    assert brevo.get(process).json()["status"] == "queued"
    brevo.clock.advance(6)
    assert brevo.get(process).json()["status"] == "in_process"
    assert brevo.get("/contacts").json()["count"] == 6
    brevo.clock.advance(5)
    assert brevo.get(process).json() == {"id": 1, "status": "completed", "name": "IMPORTUSER"}
    third = brevo.get("/contacts/3").json()
    assert third["attributes"]["ESPD_SCORE"] == 5.5 and third["listIds"] == [2, 3]  # subscribed by import
    created = brevo.get("/contacts/erased%40shop.example").json()
    assert created["listIds"] == [2] and "UNKNOWN" not in third["attributes"]
    early = brevo.send("PUT", "/contacts/erased%40shop.example", {"attributes": {"ESPD_SCORE": 2.0}})
    assert early.status_code == 425
    brevo.clock.advance(3)
    assert (
        brevo.send("PUT", "/contacts/erased%40shop.example", {"attributes": {"ESPD_SCORE": 2.0}}).status_code
        == 204
    )
    _wait_for(lambda: brevo.state.notifications)
    assert _Hook.received == [{"processId": 1, "status": "completed"}]
    assert brevo.get("/processes").json()["count"] == 1


def _wait_for(condition: Any) -> None:
    deadline = threading.Event()
    for _ in range(100):
        if condition():
            return
        deadline.wait(0.05)
    raise AssertionError("condition not reached in 5 s")


@pytest.mark.parametrize(
    "body",
    [
        {"jsonBody": [{"email": "a@shop.example"}]},  # no listIds / newList
        {"listIds": [2]},  # no content
        {"jsonBody": [], "fileBody": "EMAIL\na@b.c", "listIds": [2]},
        {"jsonBody": [{"email": "a@shop.example"}], "listIds": [77]},
    ],
)
def test_import_validation(brevo: Brevo, body: dict[str, Any]) -> None:
    assert brevo.send("POST", "/contacts/import", body).status_code == 400


def test_import_over_ten_megabytes_is_400_and_csv_with_new_list_works(brevo: Brevo) -> None:
    big = {"fileBody": "EMAIL;FIRSTNAME\n" + "x" * 10_000_001, "listIds": [2]}
    assert brevo.send("POST", "/contacts/import", big).status_code == 400
    csv_body = {
        "fileBody": "EMAIL;FIRSTNAME\nnew@shop.example;Neo\n",
        "newList": {"listName": "espd", "folderId": 1},
    }
    assert brevo.send("POST", "/contacts/import", csv_body).status_code == 202
    brevo.clock.advance(11)
    contact = brevo.get("/contacts/new%40shop.example").json()
    assert contact["attributes"] == {"FIRSTNAME": "Neo"} and contact["listIds"] == [4]


def test_unknown_process_is_404(brevo: Brevo) -> None:
    response = brevo.get("/processes/42")
    assert response.status_code == 404 and response.json()["message"] == "processId is invalid"


def test_delete_then_404_and_the_owner_is_405() -> None:
    for owned in running(make_shop(), account_email="person5@shop.example"):
        assert owned.send("DELETE", "/contacts/1").status_code == 204
        assert owned.send("DELETE", "/contacts/1").status_code == 404
        assert owned.get("/contacts/1").status_code == 404
        owner = owned.send("DELETE", "/contacts/person5%40shop.example")
        assert owner.status_code == 405 and owner.json()["code"] == "method_not_allowed"
        assert owned.send("DELETE", "/contacts/5", identifierType="contact_id").status_code == 405


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"event_name": "order_scored", "identifiers": {"email_id": "person1@shop.example"}}, 204),
        ({"event_name": "order scored", "identifiers": {"email_id": "a@b.c"}}, 400),
        ({"event_name": "x" * 256, "identifiers": {"email_id": "a@b.c"}}, 400),
        ({"event_name": "ok", "identifiers": {}}, 400),
        ({"event_name": "ok"}, 400),
        (
            {
                "event_name": "ok",
                "identifiers": {"email_id": "a@b.c"},
                "event_properties": {"p": "x" * 52_000},
            },
            400,
        ),
        ({"event_name": "ok", "identifiers": {"email_id": "a@b.c"}, "event_date": "yesterday"}, 400),
    ],
)
def test_events_validation(brevo: Brevo, body: dict[str, Any], status: int) -> None:
    response = brevo.send("POST", "/events", body)
    assert response.status_code == status
    assert len(brevo.state.custom_events) == (1 if status == 204 else 0)
    assert brevo.client.get("/events").status_code == 405
