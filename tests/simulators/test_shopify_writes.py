"""Shopify simulator writes: metafield definitions, metafieldsSet/Delete, tags, updatedAt echoes, rejects."""

from __future__ import annotations

from typing import Any

from tests.simulators.test_shopify_support import Shopify, api, cid, clock, gid

__all__ = ["api", "clock"]  # fixtures used by this module

CREATE = """mutation($d: MetafieldDefinitionInput!) { metafieldDefinitionCreate(definition: $d) {
  createdDefinition { id namespace key type { name } } userErrors { field message code } } }"""
DEFINITIONS = """query($ns: String, $key: String) { metafieldDefinitions(first: 10, ownerType: CUSTOMER,
  namespace: $ns, key: $key) { nodes { id namespace key type { name } } } }"""
SET = """mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) {
  metafields { id key namespace value type compareDigest }
  userErrors { field message code elementIndex } } }"""
DELETE = """mutation($m: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $m) {
  deletedMetafields { ownerId namespace key } userErrors { field message } } }"""
TAGS = """mutation($id: ID!, $tags: [String!]!) { %s(id: $id, tags: $tags) {
  node { id } userErrors { field message } } }"""
CHURN = {"name": "espd churn", "namespace": "$app:espd", "key": "churn_score", "type": "number_decimal",
         "ownerType": "CUSTOMER", "access": {"admin": "MERCHANT_READ"}, "pin": True}  # fmt: skip


def set_values(api: Shopify, entries: list[dict[str, Any]]) -> dict[str, Any]:
    body = api.gql(SET, {"m": entries})
    assert "errors" not in body, body
    return body["data"]["metafieldsSet"]


def entry(person: int, value: str, **extra: Any) -> dict[str, Any]:
    return {"ownerId": gid(person), "namespace": "$app:espd", "key": "churn_score", "value": value, **extra}


def updated_at(api: Shopify, person: int) -> str:
    return api.gql(f'{{ customer(id: "{gid(person)}") {{ updatedAt }} }}')["data"]["customer"]["updatedAt"]


def test_definition_create_then_taken_then_found(api: Shopify) -> None:
    created = api.gql(CREATE, {"d": CHURN})["data"]["metafieldDefinitionCreate"]
    assert created["userErrors"] == []
    assert created["createdDefinition"]["namespace"] == "app--1234567--espd"
    assert created["createdDefinition"]["type"] == {"name": "number_decimal"}
    again = api.gql(CREATE, {"d": CHURN})["data"]["metafieldDefinitionCreate"]
    assert again["createdDefinition"] is None
    assert [e["code"] for e in again["userErrors"]] == ["TAKEN"]
    found = api.gql(DEFINITIONS, {"ns": "$app:espd", "key": "churn_score"})["data"]["metafieldDefinitions"]
    assert [n["id"] for n in found["nodes"]] == [created["createdDefinition"]["id"]]
    assert (
        api.gql(DEFINITIONS, {"ns": "$app:espd", "key": "other"})["data"]["metafieldDefinitions"]["nodes"]
        == []
    )


def test_definition_input_is_checked(api: Shopify) -> None:
    cases = [
        ({**CHURN, "key": "x"}, "TOO_SHORT"),
        ({**CHURN, "key": "bad key!"}, "INVALID_CHARACTER"),
        ({**CHURN, "type": "number_float"}, "INCLUSION"),
        ({**CHURN, "namespace": "merchant_ns"}, "ADMIN_ACCESS_INPUT_NOT_ALLOWED"),
    ]
    for definition, code in cases:
        errors = api.gql(CREATE, {"d": definition})["data"]["metafieldDefinitionCreate"]["userErrors"]
        assert [e["code"] for e in errors] == [code]
    missing_name = api.gql(CREATE, {"d": {k: v for k, v in CHURN.items() if k != "name"}})
    assert missing_name["errors"][0]["extensions"]["code"] == "variableMismatch"


def test_metafields_set_upserts_with_definition_type_and_bumps_updated_at(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    before = updated_at(api, 1)
    api.clock.advance(5)
    result = set_values(api, [entry(1, "0.82"), entry(2, "0.10")])
    assert result["userErrors"] == []
    assert [(m["namespace"], m["type"], m["value"]) for m in result["metafields"]] == [
        ("app--1234567--espd", "number_decimal", "0.82"),
        ("app--1234567--espd", "number_decimal", "0.10"),
    ]
    assert api.sim.state.metafield_value(gid(1), "$app:espd", "churn_score") == "0.82"
    assert updated_at(api, 1) > before
    set_values(api, [entry(1, "0.9")])
    assert api.sim.state.metafield_value(gid(1), "$app:espd", "churn_score") == "0.9"
    field = 'metafield(namespace: "$app:espd", key: "churn_score") { value }'
    read = api.gql(f'{{ customer(id: "{gid(1)}") {{ {field} }} }}')
    assert read["data"]["customer"]["metafield"] == {"value": "0.9"}


def test_metafields_set_is_atomic_and_checks_types(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    result = set_values(api, [entry(1, "0.5"), entry(2, "0,5"), entry(3, "abc")])
    assert result["metafields"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["metafields", "1", "value"], "INVALID_VALUE"),
        (["metafields", "2", "value"], "INVALID_VALUE"),
    ]
    assert api.sim.state.metafield_value(gid(1), "$app:espd", "churn_score") is None  # nothing persisted
    wrong_type = set_values(api, [entry(1, "1", type="number_integer")])
    assert wrong_type["userErrors"][0]["code"] == "INVALID_TYPE"
    no_definition = set_values(api, [{**entry(1, "x"), "key": "segment"}])
    assert no_definition["userErrors"][0] == {
        "field": ["metafields", "0", "type"],
        "message": "Type can't be blank when no metafield definition exists.",
        "code": "BLANK",
        "elementIndex": None,
    }
    typed = set_values(api, [{**entry(1, "vip"), "key": "segment", "type": "single_line_text_field"}])
    assert typed["userErrors"] == []
    for bad_type, value in (("boolean", "True"), ("number_integer", "1.5"), ("date_time", "yesterday")):
        errors = set_values(api, [{**entry(1, value), "key": "k_" + bad_type, "type": bad_type}])[
            "userErrors"
        ]
        assert errors[0]["code"] == "INVALID_VALUE", bad_type


def test_metafields_set_caps_at_25_entries(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    result = set_values(api, [entry(1 + i % 10, "0.1") for i in range(26)])
    assert result["metafields"] is None
    assert result["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert set_values(api, [entry(1 + i % 10, "0.1") for i in range(25)])["userErrors"] == []


def test_compare_digest_guards_concurrent_writes(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    assert set_values(api, [entry(1, "0.1", compareDigest=None)])["userErrors"] == []  # null: must not exist
    again = set_values(api, [entry(1, "0.2", compareDigest=None)])
    assert again["userErrors"][0]["code"] == "STALE_OBJECT"
    digest = set_values(api, [entry(1, "0.3")])["metafields"][0]["compareDigest"]
    assert set_values(api, [entry(1, "0.4", compareDigest=digest)])["userErrors"] == []
    stale = set_values(api, [entry(1, "0.5", compareDigest=digest)])
    assert stale["userErrors"][0]["code"] == "STALE_OBJECT"
    assert api.sim.state.metafield_value(gid(1), "$app:espd", "churn_score") == "0.4"


def test_reject_records_fault_fails_the_batch_with_invalid_value(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    api.sim.faults.reject_records.add(gid(2))
    result = set_values(api, [entry(1, "0.1"), entry(2, "0.2")])
    assert result["metafields"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["metafields", "1", "value"], "INVALID_VALUE")
    ]
    assert set_values(api, [entry(1, "0.1")])["userErrors"] == []


def test_metafields_delete_reports_missing_as_null(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    set_values(api, [entry(1, "0.1")])
    ident = {"ownerId": gid(1), "namespace": "$app:espd", "key": "churn_score"}
    body = api.gql(DELETE, {"m": [ident, {**ident, "ownerId": gid(2)}]})["data"]["metafieldsDelete"]
    assert body["deletedMetafields"] == [
        {"ownerId": gid(1), "namespace": "app--1234567--espd", "key": "churn_score"},
        None,
    ]
    assert api.sim.state.metafield_value(gid(1), "$app:espd", "churn_score") is None


def test_tags_add_and_remove_are_idempotent_and_bump_updated_at(api: Shopify) -> None:
    before = updated_at(api, 4)
    api.clock.advance(2)
    for _ in range(2):
        body = api.gql(TAGS % "tagsAdd", {"id": gid(4), "tags": ["espd-vip", "espd-churn-risk, espd-vip"]})
        assert body["data"]["tagsAdd"] == {"node": {"id": gid(4)}, "userErrors": []}
    assert api.sim.state.customer(cid(4)).tags == ["espd-vip", "espd-churn-risk"]
    assert updated_at(api, 4) > before
    for _ in range(2):
        api.gql(TAGS % "tagsRemove", {"id": gid(4), "tags": ["espd-vip"]})
    assert api.sim.state.customer(cid(4)).tags == ["espd-churn-risk"]
    missing = api.gql(TAGS % "tagsAdd", {"id": gid(99), "tags": ["x"]})["data"]["tagsAdd"]
    assert missing["node"] is None and missing["userErrors"][0]["field"] == ["id"]
    tagged = api.gql('{ customers(first: 5, query: "tag:espd-churn-risk") { nodes { id tags } } }')
    assert tagged["data"]["customers"]["nodes"] == [{"id": gid(4), "tags": ["espd-churn-risk"]}]


def test_written_customers_come_back_in_an_updated_at_pull(api: Shopify) -> None:
    api.gql(CREATE, {"d": CHURN})
    api.clock.advance(60)
    set_values(api, [entry(7, "0.3")])
    since = api.sim.state.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    pulled = api.gql(
        "query($q: String) { customers(first: 10, sortKey: UPDATED_AT, query: $q) { nodes { id } } }",
        {"q": f"updated_at:>='{since}'"},
    )
    assert pulled["data"]["customers"]["nodes"] == [{"id": gid(7)}]
