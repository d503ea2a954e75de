"""The workflow through the API: accept, verify, dispose; every "Bad input" case of the issue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fakes import OTHER_TOWNSHIP, TOWNSHIP, assessment
from helpers import alerts_of, outbox_events, worker

VISIT = {"method": "home_visit", "performed_at": None, "findings": "Visited; treatment costs exceed savings.", "needs_confirmed": ["medical"]}


def visit(**kw):
    return {**VISIT, "performed_at": datetime.now(UTC).isoformat(), **kw}


async def raised(svc, feed, **kw) -> str:
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"], **kw)
    await feed.publish(a)
    [alert] = await alerts_of(svc, a["household_id"])
    return alert.id


async def step(client, alert_id: str, action: str, body: dict, **headers):
    etag = (await client.get(f"/api/v1/alerts/{alert_id}")).headers["etag"]
    return await client.post(f"/api/v1/alerts/{alert_id}/{action}", json=body, headers={"If-Match": etag, **headers})


async def verified(svc, feed) -> str:
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        assert (await step(c, alert_id, "accept", {"worker_name": "王社工"})).status_code == 200
        assert (await step(c, alert_id, "verification", visit())).status_code == 200
    return alert_id


async def test_the_whole_workflow_is_recorded(svc, feed):
    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        r = await step(c, alert_id, "disposition", {
            "kind": "service_referral", "services": [{"code": "home_nursing", "urgency": "urgent"}], "note": "Weekly visits",
        })
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "disposed"
        assert body["disposition"]["services"] == [{"code": "home_nursing", "name_zh": "上门护理", "urgency": "urgent"}]
        assert body["disposition"]["needs_confirmed"] == ["medical"]
        assert body["accepted_by"] == "worker-a" and body["worker_name"] == "王社工"
        assert body["verifications"][0]["method"] == "home_visit"
        assert body["deadline_at"].endswith("+08:00")  # shown in Asia/Shanghai
        history = (await c.get(f"/api/v1/alerts/{alert_id}/history")).json()["items"]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [
        ("raised", None, "raised"), ("accepted", "raised", "accepted"),
        ("verified", "accepted", "verifying"), ("disposed", "verifying", "disposed"),
    ]
    assert [h["actor"] for h in history[1:]] == ["worker-a"] * 3
    [event] = await outbox_events(svc, "alert.disposed", alert_id)
    assert event.payload["disposition"] == "service_referral"
    assert event.payload["services"] == [{"code": "home_nursing", "urgency": "urgent"}]


@pytest.mark.parametrize("kind,body", [
    ("policy_referral", {"policies": ["medical_assistance", "temporary_assistance"]}),
    ("no_need", {"reason": "Income restored."}),
    ("false_alarm", {"reason": "The record belonged to a member who moved out."}),
])
async def test_each_disposition_kind(svc, feed, kind, body):
    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        r = await step(c, alert_id, "disposition", {"kind": kind, **body})
    assert r.status_code == 200, r.text
    assert r.json()["disposition"]["kind"] == kind
    [event] = await outbox_events(svc, "alert.disposed", alert_id)
    assert event.payload["policies"] == body.get("policies", [])


async def test_unknown_policy_or_service_code_changes_nothing(svc, feed):
    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        before = (await c.get(f"/api/v1/alerts/{alert_id}")).json()
        r1 = await step(c, alert_id, "disposition", {"kind": "policy_referral", "policies": ["medical_assistance", "free_money"]})
        r2 = await step(c, alert_id, "disposition", {"kind": "service_referral", "services": [{"code": "teleportation", "urgency": "low"}]})
        after = (await c.get(f"/api/v1/alerts/{alert_id}")).json()
    for r in (r1, r2):
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert "not in the catalogue" in r.json()["detail"]
    assert r1.json()["errors"][0]["location"] == "body.policies.1"
    assert "free_money" not in r1.text and "teleportation" not in r2.text  # input values are never echoed
    assert after == before
    assert await outbox_events(svc, "alert.disposed", alert_id) == []


async def test_disposing_an_alert_of_another_township_is_404(svc, feed):
    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        etag = (await c.get(f"/api/v1/alerts/{alert_id}")).headers["etag"]
    async with svc.client("town_worker", area=OTHER_TOWNSHIP) as other:
        assert (await other.get(f"/api/v1/alerts/{alert_id}")).status_code == 404
        r = await other.post(f"/api/v1/alerts/{alert_id}/disposition", json={"kind": "no_need", "reason": "x"}, headers={"If-Match": etag})
    assert r.status_code == 404
    [alert] = [a for a in await alerts_of(svc, (await _household(svc, alert_id))) if a.id == alert_id]
    assert alert.status == "verifying"


async def _household(svc, alert_id):
    from alerts.alert.tables import Alert

    async with svc.db.sessionmaker() as s:
        return (await s.get(Alert, alert_id)).household_id


async def test_disposing_a_closed_alert_is_409(svc, feed):
    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        assert (await step(c, alert_id, "disposition", {"kind": "no_need", "reason": "fine"})).status_code == 200
        r = await step(c, alert_id, "disposition", {"kind": "false_alarm", "reason": "again"})
    assert r.status_code == 409 and r.json()["status_now"] == "disposed"
    assert len(await outbox_events(svc, "alert.disposed", alert_id)) == 1


async def test_two_workers_disposing_at_once_one_wins_the_other_412(svc, feed):
    alert_id = await verified(svc, feed)
    async with worker(svc, subject="a") as a, worker(svc, subject="b") as b:
        etag = (await a.get(f"/api/v1/alerts/{alert_id}")).headers["etag"]
        results = await asyncio.gather(
            a.post(f"/api/v1/alerts/{alert_id}/disposition", json={"kind": "no_need", "reason": "a"}, headers={"If-Match": etag}),
            b.post(f"/api/v1/alerts/{alert_id}/disposition", json={"kind": "false_alarm", "reason": "b"}, headers={"If-Match": etag}),
        )
    assert sorted(r.status_code for r in results) == [200, 412]
    assert len(await outbox_events(svc, "alert.disposed", alert_id)) == 1


async def test_illegal_transitions_are_409(svc, feed):
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        assert (await step(c, alert_id, "verification", visit())).status_code == 409  # not accepted yet
        assert (await step(c, alert_id, "disposition", {"kind": "no_need", "reason": "x"})).status_code == 409
        assert (await step(c, alert_id, "accept", {})).status_code == 200
        assert (await step(c, alert_id, "accept", {})).status_code == 409  # twice
        assert (await step(c, alert_id, "disposition", {"kind": "no_need", "reason": "x"})).status_code == 409  # unverified


async def test_if_match_is_required_and_checked(svc, feed):
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        r = await c.post(f"/api/v1/alerts/{alert_id}/accept", json={})
        assert r.status_code == 428
        r = await c.post(f"/api/v1/alerts/{alert_id}/accept", json={}, headers={"If-Match": '"v999"'})
        assert r.status_code == 412


async def test_over_long_notes_are_422_and_change_nothing(svc, feed):
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        r = await step(c, alert_id, "accept", {"note": "很" * 501})
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "string_too_long"
        assert "很很很" not in r.text
        assert (await step(c, alert_id, "accept", {})).status_code == 200
        r = await step(c, alert_id, "verification", visit(findings="x" * 2001))
        assert r.status_code == 422
        assert (await c.get(f"/api/v1/alerts/{alert_id}")).json()["status"] == "accepted"


async def test_unknown_fields_and_bad_needs_are_refused(svc, feed):
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        assert (await step(c, alert_id, "accept", {"status": "disposed"})).status_code == 422
        assert (await step(c, alert_id, "accept", {})).status_code == 200
        r = await step(c, alert_id, "verification", visit(needs_confirmed=["unicorns"]))
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "unknown_code"
        r = await step(c, alert_id, "verification", visit(method="telepathy"))
        assert r.status_code == 422
        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        r = await step(c, alert_id, "verification", visit(performed_at=future))
        assert r.status_code == 422


async def test_idempotency_key_replays_a_transition(svc, feed):
    alert_id = await raised(svc, feed)
    async with worker(svc) as c:
        etag = (await c.get(f"/api/v1/alerts/{alert_id}")).headers["etag"]
        headers = {"If-Match": etag, "Idempotency-Key": f"accept-{uuid.uuid4().hex}"}
        first = await c.post(f"/api/v1/alerts/{alert_id}/accept", json={}, headers=headers)
        second = await c.post(f"/api/v1/alerts/{alert_id}/accept", json={}, headers=headers)
        history = (await c.get(f"/api/v1/alerts/{alert_id}/history")).json()["items"]
    assert first.status_code == second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true" and first.json() == second.json()
    assert [h["action"] for h in history].count("accepted") == 1


@pytest.mark.parametrize("role,claims", [
    ("partner", {"org": "org-demo-0001"}),
    ("citizen", {"area": "330106001001"}),
    ("village_worker", {"area": "330106001001"}),
    ("town_worker", {"area": OTHER_TOWNSHIP}),
])
async def test_others_read_an_alert_as_not_found(svc, feed, role, claims):
    alert_id = await raised(svc, feed)
    async with svc.client(role, **claims) as c:
        assert (await c.get(f"/api/v1/alerts/{alert_id}")).status_code == 404
        assert (await c.get(f"/api/v1/alerts/{alert_id}/history")).status_code == 404


@pytest.mark.parametrize("role,area", [("town_worker", TOWNSHIP), ("district_officer", "330106000000"), ("city_admin", "330100000000")])
async def test_township_district_and_city_see_it(svc, feed, role, area):
    alert_id = await raised(svc, feed)
    async with svc.client(role, area=area) as c:
        r = await c.get(f"/api/v1/alerts/{alert_id}")
    assert r.status_code == 200
    body = r.json()
    assert body["label_masked"] == "张*明户" and body["village"] == "330106001001" and body["level"] == 1
    assert body["triggers"][0]["code"] == "major_illness_diagnosed"
    assert body["portrait"]["needs"] == ["medical"] and body["suggestions"]["services"][0]["code"] == "home_nursing"


async def test_the_city_may_read_but_not_work_an_alert(svc, feed):
    alert_id = await raised(svc, feed)
    async with svc.client("city_admin", area="330100000000") as c:
        etag = (await c.get(f"/api/v1/alerts/{alert_id}")).headers["etag"]
        assert (await c.post(f"/api/v1/alerts/{alert_id}/accept", json={}, headers={"If-Match": etag})).status_code == 403
