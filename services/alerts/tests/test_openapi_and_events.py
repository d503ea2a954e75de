"""The OpenAPI document as a product, and the events on the alerts feed as docs/events.md says."""

from __future__ import annotations

import pytest

from fakes import assessment
from helpers import alerts_of

EXPECTED_OPERATIONS = {
    "alerts:list", "alerts:get", "alerts:history", "alerts:accept", "alerts:verify", "alerts:dispose",
    "alerts:statistics", "alerts:snapshot", "subscriptions:create", "subscriptions:list", "subscriptions:get",
    "subscriptions:update", "subscriptions:delete", "subscriptions:rotate_secret", "subscriptions:secrets",
    "subscriptions:deliveries", "subscriptions:ping", "calendar:get", "calendar:year", "calendar:deadline", "feed:read",
}


async def test_openapi_document(svc):
    async with svc.client() as c:
        doc = (await c.get("/openapi.json")).json()
    ops = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            ops[op["operationId"]] = (path, method, op)
    assert set(ops) == EXPECTED_OPERATIONS
    for op_id, (path, method, op) in ops.items():
        assert op.get("summary"), op_id
        assert "401" in op["responses"], op_id
        for code, resp in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in resp["content"], (op_id, code)
        # what the kit answers itself: a NUL in the address, a cursor not handed out, a body not
        # JSON (400); a body too large (413) or of another type (415)
        assert "400" in op["responses"], op_id
        if "requestBody" in op:
            assert {"413", "415"} <= set(op["responses"]), op_id
    transitions = ("alerts:accept", "alerts:verify", "alerts:dispose")
    for op_id in (*transitions, "subscriptions:update", "subscriptions:delete", "subscriptions:rotate_secret"):
        assert {"409", "412", "428"} & set(ops[op_id][2]["responses"]) >= {"412", "428"}, op_id
    for op_id in transitions:
        assert "409" in ops[op_id][2]["responses"]
    # the disposition body is a discriminated union with bounded fields
    body = ops["alerts:dispose"][2]["requestBody"]["content"]["application/json"]["schema"]
    assert "discriminator" in body or "oneOf" in body
    schemas = doc["components"]["schemas"]
    assert schemas["NoNeed"]["properties"]["reason"]["maxLength"] == 500
    assert schemas["VerificationRequest"]["additionalProperties"] is False
    assert schemas["SubscriptionCreate"]["properties"]["url"]["maxLength"] == 2048
    # synthetic examples only: the one label example is already masked
    assert "张*明户" in str(schemas["AlertSummary"])


async def test_alert_raised_event_matches_the_contract(svc, feed):
    a = assessment(level=1, previous_level=2, triggers=["major_illness_diagnosed"])
    await feed.publish(a)
    [alert] = await alerts_of(svc, a["household_id"])
    async with svc.client("service") as c:
        page = (await c.get("/internal/feed", params={"limit": 1000})).json()
        while page["events"] and page["head"] > page["next_after"]:
            more = (await c.get("/internal/feed", params={"after": page["next_after"], "limit": 1000})).json()
            page["events"] += more["events"]
            page["next_after"] = more["next_after"]
    [event] = [e for e in page["events"] if e["type"] == "alert.raised" and e["subject"] == alert.id]
    data = event["data"]
    assert set(data) == {"alert_id", "household_id", "area_code", "township_code", "district_code", "class", "level", "deadline_at", "rules"}
    assert data["household_id"] == a["household_id"] and data["area_code"] == a["area_code"]
    assert data["township_code"] == a["township_code"] and data["district_code"] == a["district_code"]
    assert data["class"] == "important" and data["level"] == 1
    assert data["deadline_at"].endswith("Z") and data["rules"] == ["major_illness", "level_entered_1", "level_dropped"]


async def test_alert_disposed_event_matches_the_contract(svc, feed):
    from test_workflow import step, verified
    from helpers import outbox_events, worker

    alert_id = await verified(svc, feed)
    async with worker(svc) as c:
        await step(c, alert_id, "disposition", {"kind": "service_referral", "services": [{"code": "meal_assistance", "urgency": "low"}]})
    [event] = await outbox_events(svc, "alert.disposed", alert_id)
    assert set(event.payload) == {
        "alert_id", "household_id", "area_code", "township_code", "district_code", "label_masked", "level",
        "disposition", "policies", "services", "needs_confirmed", "household_type", "member_ages", "disposed_at",
    }
    assert event.payload["label_masked"] == "张*明户" and event.payload["disposed_at"].endswith("Z")


@pytest.mark.parametrize("sent", [True, False])
async def test_alert_disposed_carries_household_type_and_ages_when_scoring_sends_them(svc, feed, sent):
    from test_workflow import step, visit
    from helpers import outbox_events, worker

    extra = {"household_type": "tekun", "member_ages": [8, 41, 79]} if sent else {}
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"], **extra)
    await feed.publish(a)
    # a later assessment without them (a scoring that does not send them) forgets nothing
    await feed.publish(assessment(household_id=a["household_id"], level=1, previous_level=1, triggers=["job_lost"]))
    [alert] = await alerts_of(svc, a["household_id"])
    async with worker(svc) as c:
        assert (await step(c, alert.id, "accept", {"worker_name": "王社工"})).status_code == 200
        assert (await step(c, alert.id, "verification", visit())).status_code == 200
        assert (await step(c, alert.id, "disposition", {"kind": "no_need", "reason": "Family manages"})).status_code == 200
    [event] = await outbox_events(svc, "alert.disposed", alert.id)
    expected = ("tekun", [8, 41, 79]) if sent else (None, [])
    assert (event.payload["household_type"], event.payload["member_ages"]) == expected


async def test_snapshot_for_consumers_that_fell_behind(svc, feed):
    a = assessment(level=2, previous_level=2, triggers=["member_born"])
    await feed.publish(a)
    [alert] = await alerts_of(svc, a["household_id"])
    found, cursor = None, None
    async with svc.client("service") as c:
        while True:
            r = await c.get("/internal/snapshot/alerts", params={"limit": 50, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            body = r.json()
            found = found or next((i for i in body["items"] if i["alert_id"] == alert.id), None)
            if not (cursor := body["next_cursor"]):
                break
    assert found["status"] == "raised" and found["version"] == 1 and body["position"] >= 1
    async with svc.client("town_worker", area="330106001000") as c:
        assert (await c.get("/internal/snapshot/alerts")).status_code == 403


async def test_calendar_routes(svc):
    async with svc.client("town_worker", area="330106001000") as c:
        overview = (await c.get("/api/v1/calendar")).json()
        assert overview["known_years"] == [2025, 2026] and overview["classes"]["important"]["days"] == 3
        year = (await c.get("/api/v1/calendar/2026")).json()
        assert "2026-10-10" in year["make_up_working_days"]
        assert (await c.get("/api/v1/calendar/2027")).status_code == 404
        preview = (await c.get("/api/v1/calendar/deadline", params={"raised_at": "2026-11-28T11:00:00+08:00", "class": "important"})).json()
        assert preview["deadline_at"] == "2026-12-02T00:00:00+08:00" and preview["basis"] == "calendar_days"
        assert (await c.get("/api/v1/calendar/deadline", params={"raised_at": "2026-11-28T11:00:00"})).status_code == 400
        # a day without its hyphens, or Unix time, is not read as an instant of 1970
        for raw in ("20261128", "0.5", "1764298800"):
            r = await c.get("/api/v1/calendar/deadline", params={"raised_at": raw})
            assert r.status_code == 422, raw
            assert [(e["location"], e["issue"]) for e in r.json()["errors"]] == [("query.raised_at", "instant_format")]
            assert raw not in r.text
