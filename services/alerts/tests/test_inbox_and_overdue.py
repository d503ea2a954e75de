"""The worker's inbox (filters, cursors, scope), the overdue sweeper and the statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.overdue.service import sweep
from fakes import assessment, new_township
from helpers import alerts_of, outbox_events, set_alert, worker
from test_workflow import step, visit


async def raise_in(svc, feed, township: str, n: int, level: int = 1, trigger: str = "major_illness_diagnosed", village_no: int = 1):
    ids = []
    for _ in range(n):
        a = assessment(level=level, previous_level=level, triggers=[trigger], village=f"{township[:9]}{village_no:03d}")
        await feed.publish(a)
        ids.append((await alerts_of(svc, a["household_id"]))[0].id)
    return ids


async def test_inbox_pages_with_cursors_in_deadline_order(svc, feed):
    town = new_township()
    important = await raise_in(svc, feed, town, 3, level=1)
    general = await raise_in(svc, feed, town, 2, level=2, trigger="member_born")
    seen, cursor = [], None
    async with worker(svc, town) as c:
        while True:
            r = await c.get("/api/v1/alerts", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            body = r.json()
            seen += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                break
    assert {i["id"] for i in seen} == set(important + general)
    assert len(seen) == 5
    deadlines = [i["deadline_at"] for i in seen]
    assert deadlines == sorted(deadlines)
    assert all(i["class"] == "important" for i in seen[:3])


async def test_inbox_filters(svc, feed):
    town = new_township()
    [imp] = await raise_in(svc, feed, town, 1, level=1, village_no=1)
    [gen] = await raise_in(svc, feed, town, 1, level=2, trigger="member_born", village_no=2)
    async with worker(svc, town) as c:
        assert (await step(c, gen, "accept", {})).status_code == 200

        async def ids(**params):
            r = await c.get("/api/v1/alerts", params=params)
            assert r.status_code == 200, r.text
            return {i["id"] for i in r.json()["items"]}

        assert await ids(**{"class": "important"}) == {imp}
        assert await ids(status="accepted") == {gen}
        assert await ids(status=["raised", "accepted"]) == {imp, gen}
        assert await ids(village=f"{town[:9]}002") == {gen}
        soon = (datetime.now(UTC) + timedelta(days=5)).isoformat()
        assert await ids(deadline_before=soon) == {imp}
        assert await ids(deadline_after=soon) == {gen}
        assert await ids(overdue="true") == set()
        assert (await c.get("/api/v1/alerts", params={"status": "lost"})).status_code == 422
        assert (await c.get("/api/v1/alerts", params={"cursor": "!!not-a-cursor"})).status_code == 400
        assert (await c.get("/api/v1/alerts", params={"deadline_before": "2026-12-01T00:00:00"})).status_code == 400


async def test_inbox_is_scoped(svc, feed):
    town, other = new_township(), new_township()
    mine = set(await raise_in(svc, feed, town, 2))
    theirs = set(await raise_in(svc, feed, other, 1))
    async with worker(svc, town) as c:
        got = {i["id"] for i in (await c.get("/api/v1/alerts", params={"limit": 100})).json()["items"]}
    assert mine <= got and not (theirs & got)
    async with svc.client("district_officer", area="330106000000") as d:
        got = set()
        cursor = None
        while True:
            body = (await d.get("/api/v1/alerts", params={"limit": 100, **({"cursor": cursor} if cursor else {})})).json()
            got |= {i["id"] for i in body["items"]}
            if not (cursor := body["next_cursor"]):
                break
    assert mine | theirs <= got
    for role, claims in (("partner", {"org": "o"}), ("citizen", {"area": "330106001001"})):
        async with svc.client(role, **claims) as c:
            assert (await c.get("/api/v1/alerts")).status_code == 403


async def test_sweeper_warns_then_marks_overdue_and_escalates(svc, feed):
    town = new_township()
    [alert_id] = await raise_in(svc, feed, town, 1, level=1)
    profile = svc.app.state.profile
    now = datetime.now(UTC)
    await set_alert(svc, alert_id, deadline_at=now + timedelta(hours=5))  # inside the 24 h warning lead
    result = await sweep(svc.db, profile)
    assert result.warned >= 1
    [alert] = [a for a in await _all(svc, alert_id)]
    assert alert.warned_at is not None and alert.overdue_at is None
    await set_alert(svc, alert_id, deadline_at=now - timedelta(minutes=1))
    await sweep(svc.db, profile)
    [alert] = await _all(svc, alert_id)
    assert alert.overdue_at is not None and alert.escalated_to == "330106000000"
    [event] = await outbox_events(svc, "alert.overdue", alert_id)
    assert event.payload["escalated_to"] == "330106000000"
    assert event.payload["class"] == "important" and event.payload["deadline_at"].endswith("Z")
    await sweep(svc.db, profile)
    assert len(await outbox_events(svc, "alert.overdue", alert_id)) == 1  # once
    async with svc.client("district_officer", area="330106000000") as d:
        r = await d.get("/api/v1/alerts", params={"escalated": "true", "overdue": "true", "limit": 100})
    assert alert_id in {i["id"] for i in r.json()["items"]}
    async with worker(svc, town) as c:
        history = (await c.get(f"/api/v1/alerts/{alert_id}/history")).json()["items"]
        assert [h["action"] for h in history] == ["raised", "deadline_warning", "overdue"]
        # an overdue alert can still be worked
        assert (await step(c, alert_id, "accept", {})).status_code == 200


async def test_sweeper_uses_the_database_clock(svc, feed):
    """A deadline a few seconds ahead of the database's clock is not overdue, whatever the pod thinks."""
    from servicekit.db import db_now

    town = new_township()
    [alert_id] = await raise_in(svc, feed, town, 1, level=2, trigger="member_born")
    async with svc.db.sessionmaker() as s:
        db_time = await db_now(s)
    await set_alert(svc, alert_id, deadline_at=db_time + timedelta(minutes=10), warned_at=db_time)
    await sweep(svc.db, svc.app.state.profile)
    [alert] = await _all(svc, alert_id)
    assert alert.overdue_at is None


async def _all(svc, alert_id):
    from alerts.alert.tables import Alert

    async with svc.db.sessionmaker() as s:
        return [await s.get(Alert, alert_id)]


async def test_statistics_per_township_and_rule_precision(svc, feed):
    town = new_township()
    ids = await raise_in(svc, feed, town, 4, level=1)
    [born] = await raise_in(svc, feed, town, 1, level=2, trigger="member_born")
    async with worker(svc, town) as c:
        for alert_id, disposition in zip(ids[:3], [
            {"kind": "policy_referral", "policies": ["medical_assistance"]},
            {"kind": "service_referral", "services": [{"code": "home_nursing", "urgency": "normal"}]},
            {"kind": "false_alarm", "reason": "wrong member"},
        ], strict=True):
            assert (await step(c, alert_id, "accept", {})).status_code == 200
            assert (await step(c, alert_id, "verification", visit())).status_code == 200
            assert (await step(c, alert_id, "disposition", disposition)).status_code == 200
        await set_alert(svc, ids[3], overdue_at=datetime.now(UTC), escalated_to="330106000000")
        r = await c.get("/api/v1/alerts/statistics")
        assert r.status_code == 200, r.text
        stats = r.json()
    [mine] = [i for i in stats["items"] if i["area_code"] == town]
    assert [i["area_code"] for i in stats["items"]] == [town]  # a township sees only itself
    assert mine["raised"] == 5 and mine["open"] == 2 and mine["overdue_open"] == 1
    assert mine["verified"] == 3 and mine["verified_on_time"] == 3 and mine["on_time_rate"] == 1.0
    assert mine["median_hours_to_verification"] is not None and mine["median_hours_to_verification"] < 1
    assert mine["dispositions"] == {"policy_referral": 1, "service_referral": 1, "no_need": 0, "false_alarm": 1,
                                    "household_closed": 0}
    rules = {r["code"]: r for r in mine["rules"]}
    assert rules["major_illness"]["alerts"] == 4 and rules["major_illness"]["disposed"] == 3
    assert rules["major_illness"]["false_alarm"] == 1 and rules["major_illness"]["precision"] == round(2 / 3, 4)
    assert rules["member_born"]["precision"] is None
    async with svc.client("district_officer", area="330106000000") as d:
        district = (await d.get("/api/v1/alerts/statistics", params={"group_by": "district"})).json()
        by_town = (await d.get("/api/v1/alerts/statistics")).json()
    assert [i["area_code"] for i in district["items"]] == ["330106000000"]
    assert town in {i["area_code"] for i in by_town["items"]}
    assert district["total"]["raised"] >= 5
