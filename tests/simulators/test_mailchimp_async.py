"""Mailchimp simulator: the /batches lifecycle and results archive, the 10-connection cap, and
every injectable fault."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time

import httpx

from simulators.harness import Faults, Limits
from simulators.mailchimp.batches import BatchOptions
from tests.simulators.test_mailchimp_members import assert_problem, first_member
from tests.simulators.test_mailchimp_shop import Running, running

FAST = BatchOptions(phase_seconds=0.15, op_seconds=0.03)
ORDER = ["pending", "preprocessing", "started", "finalizing", "finished"]


def patch_op(r: Running, member_id: str, value: float, op_id: str) -> dict:
    body = json.dumps({"merge_fields": {"ESPD_SCORE": value}})
    return {
        "method": "PATCH",
        "path": f"/lists/{r.list_id}/members/{member_id}",
        "operation_id": op_id,
        "body": body,
    }


def add_score_field(r: Running) -> None:
    field = {"tag": "ESPD_SCORE", "name": "score", "type": "number"}
    r.client.post(f"/lists/{r.list_id}/merge-fields", json=field).raise_for_status()


def watch(r: Running, batch_ids: list[str], timeout: float = 15) -> list[dict[str, dict]]:
    """Poll the batches until all finished; every poll's view of each batch."""
    seen: list[dict[str, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append({b: r.client.get(f"/batches/{b}").json() for b in batch_ids})
        if all(view["status"] == "finished" for view in seen[-1].values()):
            return seen
        time.sleep(0.02)
    raise AssertionError("batches did not finish")


def results_of(url: str) -> list[dict]:
    archive = httpx.get(url)
    assert archive.status_code == 200
    results: list[dict] = []
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                results += json.load(tar.extractfile(member))
    return results


def test_batch_body_must_be_a_string() -> None:
    with running(batch_options=FAST) as r:
        member = first_member(r)
        op = {"method": "PATCH", "path": r.members_path(member["id"]), "body": {"merge_fields": {}}}
        body = assert_problem(r.client.post("/batches", json={"operations": [op]}), 400, "Invalid Resource")
        assert body["errors"][0]["field"] == "operations.item:0.body"
        assert_problem(
            r.client.post("/batches", json={"operations": [{"path": "/ping"}]}), 400, "Invalid Resource"
        )
        assert r.sim.state.batches.batches == {}


def test_batch_lifecycle_counters_and_results_archive() -> None:
    with running(batch_options=FAST) as r:
        add_score_field(r)
        members = r.client.get(r.members_path(), params={"count": "4"}).json()["members"]
        ops = [patch_op(r, m["id"], i + 0.5, f"run1:{m['id']}") for i, m in enumerate(members)]
        ops.append(patch_op(r, "0" * 32, 1.0, "run1:missing"))
        submitted = r.client.post("/batches", json={"operations": ops})
        assert submitted.status_code == 200
        batch = submitted.json()
        assert (batch["status"], batch["total_operations"], batch["response_body_url"]) == ("pending", 5, "")
        views = [v[batch["id"]] for v in watch(r, [batch["id"]])]
        statuses = [v["status"] for v in views]
        assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == ORDER
        assert len({v["finished_operations"] for v in views if v["status"] == "started"}) >= 2
        assert all(v["response_body_url"] == "" for v in views if v["status"] != "finished")
        final = views[-1]
        assert (final["finished_operations"], final["errored_operations"]) == (5, 1) and final["completed_at"]
        results = {res["operation_id"]: res for res in results_of(final["response_body_url"])}
        assert results["run1:missing"]["status_code"] == 404
        for i, m in enumerate(members):
            assert json.loads(results[f"run1:{m['id']}"]["response"])["merge_fields"]["ESPD_SCORE"] == i + 0.5
            assert r.sim.state.audience.members[m["id"]].merge_fields["ESPD_SCORE"] == i + 0.5
            assert r.sim.state.audience.members[m["id"]].status == m["status"]


def test_one_batch_runs_at_a_time() -> None:
    with running(batch_options=FAST) as r:
        ids = [
            r.client.post("/batches", json={"operations": [{"method": "GET", "path": "/ping"}] * 3}).json()[
                "id"
            ]
            for _ in range(2)
        ]
        for view in watch(r, ids):
            running_now = [b for b, v in view.items() if v["status"] in ORDER[1:4]]
            assert len(running_now) <= 1
            if view[ids[1]]["status"] != "pending":
                assert view[ids[0]]["status"] == "finished"


def test_results_url_expires_and_refuses_tampering() -> None:
    with running(batch_options=BatchOptions(phase_seconds=0.01, op_seconds=0.0, url_ttl_seconds=2)) as r:
        batch = r.client.post(
            "/batches", json={"operations": [{"method": "GET", "path": "/ping", "operation_id": "p"}]}
        ).json()
        url = watch(r, [batch["id"]])[-1][batch["id"]]["response_body_url"]
        result = results_of(url)[0]
        assert (result["status_code"], result["operation_id"]) == (200, "p")
        assert json.loads(result["response"]) == {"health_status": "Everything's Chimpy!"}
        tampered = httpx.get(url.replace("Signature=", "Signature=0"))
        assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
        time.sleep(3.1)
        expired = httpx.get(url)
        assert expired.status_code == 403 and b"expired" in expired.content
        fresh = r.client.get(f"/batches/{batch['id']}").json()["response_body_url"]
        assert fresh != url and results_of(fresh)


def test_delete_cancels_a_pending_batch() -> None:
    with running(batch_options=BatchOptions(phase_seconds=0.5)) as r:
        add_score_field(r)
        member = first_member(r)
        batch = r.client.post("/batches", json={"operations": [patch_op(r, member["id"], 3.0, "x")]}).json()
        assert r.client.delete(f"/batches/{batch['id']}").status_code == 204
        assert_problem(r.client.get(f"/batches/{batch['id']}"), 404, "Resource Not Found")
        time.sleep(1.0)
        assert "ESPD_SCORE" not in r.sim.state.audience.members[member["id"]].merge_fields


async def _submit(url: str, auth: tuple[str, str], n: int, wave: int = 8) -> list[int]:
    """Submit n one-op batches, `wave` at a time (below the connection cap)."""
    ops = {"operations": [{"method": "GET", "path": "/ping"}]}
    codes: list[int] = []
    async with httpx.AsyncClient(auth=auth, timeout=20) as client:
        for start in range(0, n, wave):
            batch = [client.post(f"{url}/3.0/batches", json=ops) for _ in range(min(wave, n - start))]
            codes += [resp.status_code for resp in await asyncio.gather(*batch)]
    return codes


def test_the_501st_pending_batch_is_refused() -> None:
    with running(batch_options=BatchOptions(phase_seconds=30)) as r:
        assert set(asyncio.run(_submit(r.url, ("u", r.sim.credentials["api_key"]), 500))) == {200}
        ops = {"operations": [{"method": "GET", "path": "/ping"}]}
        body = assert_problem(r.client.post("/batches", json=ops), 429, "Too Many Requests")
        assert "500" in body["detail"]
        listed = r.client.get("/batches", params={"count": "1000"}).json()
        assert listed["total_items"] == 500


async def _fire(url: str, auth: tuple[str, str], n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(auth=auth, limits=httpx.Limits(max_connections=n + 5), timeout=20) as client:
        return await asyncio.gather(*(client.get(f"{url}/3.0/ping") for _ in range(n)))


def test_the_11th_concurrent_request_gets_429() -> None:
    with running(latency_seconds=1.0) as r:
        responses = asyncio.run(_fire(r.url, ("u", r.sim.credentials["api_key"]), 11))
        codes = sorted(resp.status_code for resp in responses)
        assert codes == [200] * 10 + [429]
        rejected = next(resp for resp in responses if resp.status_code == 429)
        body = assert_problem(rejected, 429, "Too Many Requests")
        assert body["detail"] == "You have exceeded the limit of 10 simultaneous connections."
        assert "retry-after" not in rejected.headers
        assert r.sim.log.max_in_flight == 11


def test_every_answer_is_held_for_the_latency_while_it_holds_a_connection() -> None:
    """The answer is built during the wait (so concurrent pages do not queue for the simulator's
    CPU), but never sent early: each request still spends the whole latency on a connection."""
    with running(latency_seconds=0.5) as r:
        responses = asyncio.run(_fire(r.url, ("u", r.sim.credentials["api_key"]), 10))
        assert {resp.status_code for resp in responses} == {200}
        assert min(e.duration for e in r.sim.log.entries()) >= 0.5
        assert r.sim.log.max_in_flight == 10


def test_chaos_mode_answers_a_bare_403() -> None:
    with running(latency_seconds=1.0, bare_403_every=1) as r:
        responses = asyncio.run(_fire(r.url, ("u", r.sim.credentials["api_key"]), 11))
        bare = [resp for resp in responses if resp.status_code == 403]
        assert len(bare) == 1 and bare[0].content == b""
        assert "json" not in bare[0].headers.get("content-type", "")


def test_limits_can_be_scaled_or_switched_off() -> None:
    with running(latency_seconds=1.0, limits=Limits(enabled=False)) as r:
        responses = asyncio.run(_fire(r.url, ("u", r.sim.credentials["api_key"]), 12))
        assert {resp.status_code for resp in responses} == {200}
    with running(latency_seconds=1.0, limits=Limits(scale=0.5)) as r:
        responses = asyncio.run(_fire(r.url, ("u", r.sim.credentials["api_key"]), 6))
        assert sorted(resp.status_code for resp in responses) == [200] * 5 + [429]


def test_generic_faults_render_mailchimp_problems() -> None:
    with running(faults=Faults(error_burst=2, error_status=503)) as r:
        assert_problem(r.client.get("/ping"), 503, "Service Unavailable")
        assert_problem(r.client.get("/ping"), 503, "Service Unavailable")
        assert r.client.get("/ping").status_code == 200
    with running(faults=Faults(auth_fail_after=1)) as r:
        assert r.client.get("/ping").status_code == 200
        assert_problem(r.client.get("/ping"), 401, "API Key Invalid")


def test_paging_faults_are_injectable() -> None:
    params = {
        "sort_field": "last_changed",
        "sort_dir": "ASC",
        "count": "5",
        "fields": "members.id,members.email_address,members.last_changed",
    }
    with running(faults=Faults(malformed_every=3)) as r:
        members = r.client.get(r.members_path(), params=params).json()["members"]
        assert [m["email_address"] is None for m in members] == [False, False, True, False, False]
    with running(faults=Faults(duplicate_across_pages=True)) as r:
        page1 = r.client.get(r.members_path(), params=params).json()["members"]
        page2 = r.client.get(r.members_path(), params={**params, "offset": "5"}).json()["members"]
        assert page2[0]["id"] == page1[-1]["id"] and len(page2) == 5
    with running(faults=Faults(update_while_paging=2)) as r:
        everything = [
            m["id"]
            for m in r.client.get(r.members_path(), params={**params, "count": "1000"}).json()["members"]
        ]
        page1 = [m["id"] for m in r.client.get(r.members_path(), params=params).json()["members"]]
        page2 = [
            m["id"]
            for m in r.client.get(r.members_path(), params={**params, "offset": "5"}).json()["members"]
        ]
        assert page1 == everything[2:7]  # the listing of everything touched its first two rows
        assert not set(page2) & set(page1) and everything[7] not in page1 + page2
