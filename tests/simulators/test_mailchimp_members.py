"""Mailchimp simulator: auth, member pulls (paging, windows, sorting, projection, no snapshot
isolation), member writes and their consent rules, deletion, merge fields and value validation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from simulators.mailchimp import default_api_key
from simulators.mailchimp.members_state import Member, subscriber_hash
from tests.simulators.test_mailchimp_shop import AS_OF, Running, running

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: httpx.Response, status: int, title: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert (body["status"], body["title"]) == (status, title)
    return body


def first_member(r: Running, **params: str) -> dict:
    return r.client.get(r.members_path(), params={"count": "1", **params}).json()["members"][0]


# auth ------------------------------------------------------------------------------------------


def test_ping_needs_a_valid_key_for_this_data_center() -> None:
    with running() as r:
        assert r.client.get("/ping").json() == {"health_status": "Everything's Chimpy!"}
        anyone = httpx.get(f"{r.url}/3.0/ping", auth=("whoever", r.sim.credentials["api_key"]))
        assert anyone.status_code == 200
        assert_problem(httpx.get(f"{r.url}/3.0/ping"), 401, "API Key Missing")
        for key in (default_api_key("us6"), "not-a-key", "0" * 32 + "-us21"):
            body = assert_problem(httpx.get(f"{r.url}/3.0/ping", auth=("u", key)), 401, "API Key Invalid")
            assert "wrong datacenter" in body["detail"]
        bearer = httpx.get(
            f"{r.url}/3.0/ping", headers={"Authorization": f"Bearer {r.sim.credentials['api_key']}"}
        )
        assert_problem(bearer, 401, "API Key Invalid")


def test_other_data_center_is_configurable() -> None:
    with running(dc="us6") as r:
        assert r.sim.credentials["api_key"].endswith("-us6")
        assert r.client.get("/ping").status_code == 200
        assert httpx.get(f"{r.url}/3.0/ping", auth=("u", default_api_key("us21"))).status_code == 401


def test_errors_are_problem_json_with_fresh_instances() -> None:
    with running() as r:
        first = assert_problem(r.client.get("/no/such/thing"), 404, "Resource Not Found")
        second = assert_problem(r.client.get("/no/such/thing"), 404, "Resource Not Found")
        assert first["instance"] != second["instance"]
        assert_problem(r.client.get("/lists/nope/members"), 404, "Resource Not Found")
        assert_problem(r.client.put("/ping"), 405, "Method Not Allowed")
        assert_problem(r.client.get(r.members_path(), params={"since": "2020-01-01"}), 400, "Bad Request")


def test_lists_show_the_one_audience() -> None:
    with running() as r:
        body = r.client.get(
            "/lists", params={"fields": "lists.id,lists.name,lists.stats.member_count,total_items"}
        )
        lists = body.json()["lists"]
        subscribed = sum(1 for m in r.sim.state.audience.members.values() if m.status == "subscribed")
        assert lists == [
            {"id": r.list_id, "name": r.sim.state.audience.name, "stats": {"member_count": subscribed}}
        ]
        assert body.json()["total_items"] == 1


# member pulls --------------------------------------------------------------------------------


def test_count_defaults_to_10_and_is_clamped_to_1000() -> None:
    with running() as r:
        audience = r.sim.state.audience
        for n in range(1100):
            email = f"bulk{n}@example.com"
            moment = AS_OF - timedelta(days=3)
            audience.add_member(
                Member(subscriber_hash(email), email, "subscribed", {}, moment, moment, moment, 10_000 + n)
            )
        total = len(audience.members)
        default = r.client.get(r.members_path()).json()
        assert len(default["members"]) == 10 and default["total_items"] == total
        clamped = r.client.get(r.members_path(), params={"count": "5000", "fields": "members.id,total_items"})
        assert clamped.status_code == 200 and len(clamped.json()["members"]) == 1000
        past = r.client.get(r.members_path(), params={"offset": str(total + 5)}).json()
        assert past["members"] == [] and past["total_items"] == total
        assert_problem(r.client.get(r.members_path(), params={"count": "-1"}), 400, "Invalid Resource")


def test_fields_and_exclude_fields_use_dot_notation() -> None:
    with running() as r:
        fields = "members.id,members.merge_fields.FNAME,members.stats,total_items"
        body = r.client.get(r.members_path(), params={"count": "2", "fields": fields}).json()
        assert set(body) == {"members", "total_items"}
        assert all(
            set(m) == {"id", "merge_fields", "stats"} and set(m["merge_fields"]) == {"FNAME"}
            for m in body["members"]
        )
        excluded = r.client.get(
            r.members_path(), params={"count": "2", "exclude_fields": "members.merge_fields,_links"}
        )
        member = excluded.json()["members"][0]
        assert "merge_fields" not in member and "email_address" in member and "_links" not in excluded.json()
        forgot_total = r.client.get(r.members_path(), params={"fields": "members.id"}).json()
        assert "total_items" not in forgot_total


def test_last_changed_windows_are_strictly_exclusive() -> None:
    with running() as r:
        audience = r.sim.state.audience
        chosen = sorted(audience.members.values(), key=lambda m: m.seq)[:3]
        base = AS_OF + timedelta(days=30)
        for offset, member in enumerate(chosen):
            audience.touch(member, at=base + timedelta(seconds=offset))
        params = {"sort_field": "last_changed", "sort_dir": "ASC", "count": "1000"}
        window = {
            "since_last_changed": (base).isoformat(),
            "before_last_changed": (base + timedelta(seconds=2)).isoformat(),
        }
        inside = r.client.get(r.members_path(), params={**params, **window}).json()
        assert [m["id"] for m in inside["members"]] == [chosen[1].id] and inside["total_items"] == 1
        wide = {
            "since_last_changed": (base - timedelta(seconds=1)).isoformat(),
            "before_last_changed": (base + timedelta(seconds=3)).isoformat(),
        }
        assert [
            m["id"] for m in r.client.get(r.members_path(), params={**params, **wide}).json()["members"]
        ] == [m.id for m in chosen]
        zulu = r.client.get(r.members_path(), params={**params, "since_last_changed": "2026-01-31T00:00:00Z"})
        assert zulu.status_code == 200
        raw_plus = r.client.get(r.members_path() + "?since_last_changed=2026-01-31T00:00:00+00:00")
        body = assert_problem(raw_plus, 400, "Invalid Resource")
        assert body["errors"][0]["field"] == "since_last_changed"


def test_sort_enums_are_validated_and_desc_reverses() -> None:
    with running() as r:
        assert_problem(
            r.client.get(r.members_path(), params={"sort_field": "email"}), 400, "Invalid Resource"
        )
        assert_problem(r.client.get(r.members_path(), params={"sort_dir": "asc"}), 400, "Invalid Resource")
        assert_problem(r.client.get(r.members_path(), params={"status": "deleted"}), 400, "Invalid Resource")
        asc = r.client.get(
            r.members_path(), params={"sort_field": "last_changed", "sort_dir": "ASC", "count": "1000"}
        ).json()
        desc = r.client.get(
            r.members_path(), params={"sort_field": "last_changed", "sort_dir": "DESC", "count": "1000"}
        ).json()
        stamps = [m["last_changed"] for m in asc["members"]]
        assert stamps == sorted(stamps)
        assert [m["id"] for m in desc["members"]] == [m["id"] for m in reversed(asc["members"])]
        second_desc = r.client.get(
            r.members_path(),
            params={"sort_field": "last_changed", "sort_dir": "DESC", "count": "5", "offset": "5"},
        )
        assert [m["id"] for m in second_desc.json()["members"]] == [m["id"] for m in desc["members"][5:10]]


def test_writes_during_paging_shift_offsets_and_skip_a_row() -> None:
    with running() as r:
        params = {"sort_field": "last_changed", "sort_dir": "ASC", "count": "10", "fields": "members.id"}
        everything = [
            m["id"]
            for m in r.client.get(r.members_path(), params={**params, "count": "1000"}).json()["members"]
        ]
        page1 = [m["id"] for m in r.client.get(r.members_path(), params=params).json()["members"]]
        assert page1 == everything[:10]
        r.client.patch(r.members_path(page1[0]), json={"merge_fields": {"FNAME": "Moved"}}).raise_for_status()
        page2 = [
            m["id"]
            for m in r.client.get(r.members_path(), params={**params, "offset": "10"}).json()["members"]
        ]
        assert page2 == everything[11:21]  # everything[10] slid onto page 1 and is never served


def test_merge_field_patch_bumps_last_changed_but_events_do_not() -> None:
    with running() as r:
        state = r.sim.state
        member = first_member(r)
        campaign = next(iter(state.reports.campaigns))
        state.reports.add_event(campaign, member["id"], "opened", AS_OF + timedelta(days=40))
        state.reports.add_event(
            campaign, member["id"], "clicked", AS_OF + timedelta(days=40), "https://shop.example/p"
        )
        assert r.client.get(r.members_path(member["id"])).json()["last_changed"] == member["last_changed"]
        patched = r.client.patch(
            r.members_path(member["id"]), json={"merge_fields": {"LNAME": "Changed"}}
        ).json()
        assert patched["last_changed"] > member["last_changed"]
        assert patched["merge_fields"]["LNAME"] == "Changed" and patched["status"] == member["status"]


# member writes ---------------------------------------------------------------------------------


def test_patch_never_creates_and_never_changes_status_unless_sent() -> None:
    with running() as r:
        unknown = r.client.patch(
            r.members_path(subscriber_hash("nobody@example.com")), json={"merge_fields": {"FNAME": "x"}}
        )
        assert_problem(unknown, 404, "Resource Not Found")
        assert subscriber_hash("nobody@example.com") not in r.sim.state.audience.members
        member = first_member(r, status="unsubscribed")
        kept = r.client.patch(
            r.members_path(member["id"]),
            params={"skip_merge_validation": "true"},
            json={"merge_fields": {"FNAME": "A"}},
        )
        assert kept.json()["status"] == "unsubscribed"
        by_email = r.client.patch(
            r.members_path(member["email_address"]), json={"merge_fields": {"FNAME": "B"}}
        )
        assert by_email.json()["merge_fields"]["FNAME"] == "B"
        changed = r.client.patch(r.members_path(member["id"]), json={"status": "subscribed"})
        assert changed.json()["status"] == "subscribed"


def test_put_requires_status_if_new_and_upserts() -> None:
    with running() as r:
        email = "new.person@example.com"
        missing = r.client.put(r.members_path(subscriber_hash(email)), json={"email_address": email})
        assert assert_problem(missing, 400, "Invalid Resource")["errors"][0]["field"] == "status_if_new"
        created = r.client.put(
            r.members_path(subscriber_hash(email)),
            json={"email_address": email, "status_if_new": "transactional"},
        )
        assert created.status_code == 200 and created.json()["status"] == "transactional"
        again = r.client.put(
            r.members_path(subscriber_hash(email)),
            json={"email_address": email, "status_if_new": "subscribed"},
        )
        assert again.json()["status"] == "transactional"
        exists = r.client.post(r.members_path(), json={"email_address": email, "status": "subscribed"})
        assert_problem(exists, 400, "Member Exists")


def test_merge_values_are_validated_per_type() -> None:
    with running() as r:
        fields = f"/lists/{r.list_id}/merge-fields"
        for tag, kind in (("ESPD_SCORE", "number"), ("ESPD_DATE", "date"), ("ESPD_SEG", "text")):
            assert (
                r.client.post(fields, json={"tag": tag, "name": tag.lower(), "type": kind}).status_code == 200
            )
        member = first_member(r)
        bad = {"ESPD_SCORE": "high", "ESPD_DATE": "01/02/2026", "ESPD_SEG": "x" * 256}
        body = assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": bad}), 400, "Invalid Resource"
        )
        assert {e["field"] for e in body["errors"]} == set(bad)
        unknown = r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"ESPD_NOPE": 1}})
        assert_problem(unknown, 400, "Invalid Resource")
        good = {"ESPD_SCORE": 87.5, "ESPD_DATE": "2026-02-01", "ESPD_SEG": "x" * 255}
        stored = r.client.patch(r.members_path(member["id"]), json={"merge_fields": good}).json()[
            "merge_fields"
        ]
        assert {k: stored[k] for k in good} == good
        assert r.sim.state.audience.members[member["id"]].merge_fields["ESPD_SCORE"] == 87.5


def test_skip_merge_validation_only_waives_required_fields() -> None:
    with running() as r:
        created = r.client.post(
            f"/lists/{r.list_id}/merge-fields",
            json={"tag": "NEED", "name": "need", "type": "number", "required": True},
        )
        assert created.status_code == 200
        member = first_member(r)
        assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"FNAME": "x"}}),
            400,
            "Invalid Resource",
        )
        skipped = r.client.patch(
            r.members_path(member["id"]),
            params={"skip_merge_validation": "true"},
            json={"merge_fields": {"FNAME": "x"}},
        )
        assert skipped.status_code == 200
        wrong_type = r.client.patch(
            r.members_path(member["id"]),
            params={"skip_merge_validation": "true"},
            json={"merge_fields": {"NEED": "many"}},
        )
        assert_problem(wrong_type, 400, "Invalid Resource")


def test_rejected_records_fail_their_writes() -> None:
    with running() as r:
        member = first_member(r)
        r.sim.faults.reject_records.add(member["email_address"])
        assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"FNAME": "x"}}),
            400,
            "Invalid Resource",
        )
        r.sim.faults.reject_records = {member["id"]}
        assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"FNAME": "x"}}),
            400,
            "Invalid Resource",
        )


# deletion --------------------------------------------------------------------------------------


def test_delete_archives_and_archived_members_leave_the_default_listing() -> None:
    with running() as r:
        member = first_member(r)
        before = r.client.get(r.members_path()).json()["total_items"]
        assert r.client.delete(r.members_path(member["id"])).status_code == 204
        assert r.client.get(r.members_path()).json()["total_items"] == before - 1
        archived = r.client.get(r.members_path(), params={"status": "archived"}).json()
        assert [m["id"] for m in archived["members"]] == [member["id"]]
        assert r.client.get(r.members_path(member["id"])).json()["status"] == "archived"
        assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"FNAME": "x"}}),
            400,
            "Invalid Resource",
        )


def test_permanently_deleted_emails_cannot_come_back() -> None:
    with running() as r:
        member = first_member(r)
        email = member["email_address"]
        assert_problem(
            r.client.post(r.members_path(email) + "/actions/delete-permanent"), 404, "Resource Not Found"
        )
        assert r.client.post(r.members_path(member["id"]) + "/actions/delete-permanent").status_code == 204
        assert_problem(r.client.get(r.members_path(member["id"])), 404, "Resource Not Found")
        assert_problem(
            r.client.patch(r.members_path(member["id"]), json={"merge_fields": {"FNAME": "x"}}),
            404,
            "Resource Not Found",
        )
        put = r.client.put(
            r.members_path(member["id"]), json={"email_address": email, "status_if_new": "subscribed"}
        )
        assert_problem(put, 400, "Forgotten Email Not Subscribed")
        post = r.client.post(r.members_path(), json={"email_address": email, "status": "subscribed"})
        assert_problem(post, 400, "Forgotten Email Not Subscribed")


def test_batch_subscribe_caps_at_500_and_reports_member_errors_with_200() -> None:
    with running() as r:
        too_many = {
            "members": [{"email_address": f"m{i}@example.com", "status": "subscribed"} for i in range(501)]
        }
        assert_problem(r.client.post(f"/lists/{r.list_id}", json=too_many), 400, "Invalid Resource")
        existing = first_member(r)
        body = {
            "members": [
                {"email_address": "fresh@example.com", "status": "subscribed"},
                {"email_address": "broken@", "status": "subscribed"},
                {"email_address": existing["email_address"], "status": "subscribed"},
            ]
        }
        result = r.client.post(f"/lists/{r.list_id}", json=body)
        assert result.status_code == 200
        data = result.json()
        assert (data["total_created"], data["total_updated"], data["error_count"]) == (1, 0, 2)
        assert {e["error_code"] for e in data["errors"]} == {"ERROR_GENERIC", "ERROR_CONTACT_EXISTS"}


# merge field definitions ---------------------------------------------------------------------


def test_merge_field_definitions_follow_the_real_rules() -> None:
    with running() as r:
        path = f"/lists/{r.list_id}/merge-fields"
        created = r.client.post(path, json={"tag": "espd_churn", "name": "espd churn", "type": "number"})
        assert created.status_code == 200 and created.json()["tag"] == "ESPD_CHURN"
        auto = r.client.post(path, json={"name": "untagged", "type": "text"}).json()
        assert auto["tag"] == f"MMERGE{auto['merge_id']}"
        assert_problem(
            r.client.post(path, json={"tag": "ESPD_CHURN", "name": "dup", "type": "number"}),
            400,
            "Invalid Resource",
        )
        assert_problem(
            r.client.post(path, json={"tag": "ESPD_TOO_LONG", "name": "x", "type": "number"}),
            400,
            "Invalid Resource",
        )
        assert_problem(
            r.client.post(path, json={"tag": "ES-PD", "name": "x", "type": "number"}), 400, "Invalid Resource"
        )
        assert_problem(
            r.client.post(path, json={"tag": "B", "name": "x", "type": "boolean"}), 400, "Invalid Resource"
        )
        assert_problem(r.client.post(path, json={"tag": "B", "type": "text"}), 400, "Invalid Resource")
        merge_id = created.json()["merge_id"]
        assert_problem(
            r.client.patch(f"{path}/{merge_id}", json={"name": "n", "type": "text"}), 400, "Invalid Resource"
        )
        assert_problem(r.client.patch(f"{path}/{merge_id}", json={"help_text": "h"}), 400, "Invalid Resource")
        renamed = r.client.patch(f"{path}/{merge_id}", json={"name": "churn"}).json()
        assert (renamed["name"], renamed["type"]) == ("churn", "number")
        listed = r.client.get(path).json()
        assert len(listed["merge_fields"]) == 7 == listed["total_items"]


def test_the_31st_merge_field_is_refused_and_listing_defaults_to_10() -> None:
    with running() as r:
        path = f"/lists/{r.list_id}/merge-fields"
        existing = len(r.sim.state.audience.merge_fields)
        for n in range(30 - existing):
            assert (
                r.client.post(path, json={"tag": f"F{n}", "name": f"f{n}", "type": "text"}).status_code == 200
            )
        body = assert_problem(
            r.client.post(path, json={"tag": "F31", "name": "one too many", "type": "text"}),
            400,
            "Invalid Resource",
        )
        assert "30" in body["detail"]
        assert len(r.client.get(path).json()["merge_fields"]) == 10
        assert len(r.client.get(path, params={"count": "1000"}).json()["merge_fields"]) == 30
        merge_id = r.client.get(path, params={"count": "1000"}).json()["merge_fields"][-1]["merge_id"]
        assert r.client.delete(f"{path}/{merge_id}").status_code == 204
        assert r.client.post(path, json={"tag": "F31", "name": "fits now", "type": "text"}).status_code == 200


@pytest.mark.parametrize("status", ["subscribed", "unsubscribed", "transactional"])
def test_status_filter_lists_only_that_status(status: str) -> None:
    with running() as r:
        body = r.client.get(
            r.members_path(),
            params={"status": status, "count": "1000", "fields": "members.status,total_items"},
        ).json()
        expected = sum(1 for m in r.sim.state.audience.members.values() if m.status == status)
        assert body["total_items"] == expected and {m["status"] for m in body["members"]} <= {status}
