"""Statistics, on a district no other test touches (上城区 of the fixture city)."""

from __future__ import annotations

import uuid

from factories import approved_partner, match_of, need, published_offer, run
from helpers import OTHER_DISTRICT, assert_problem, client, key

V1, V2 = "330102001001", "330102001002"


async def test_needs_partners_and_points_are_counted(svc, city_today):
    org = await approved_partner(svc, area=OTHER_DISTRICT)
    await published_offer(svc, org, services=["tutoring"], areas=[OTHER_DISTRICT], capacity=2, site_code="TS330102001")
    made = [await need(svc, "tutoring", area=V1, urgency="urgent"), await need(svc, "tutoring", area=V2),
            await need(svc, "tutoring", area=V2, urgency="low"), await need(svc, "legal_aid", area=V1)]
    await run(svc)
    first, second = await match_of(svc, org, made[0]["id"]), await match_of(svc, org, made[1]["id"])
    async with client(svc, "partner", org=org) as c:
        assert (await c.post(f"/api/v1/matches/{first['id']}/accept")).status_code == 200
        r = await c.post(f"/api/v1/matches/{first['id']}/deliver", json={"delivered_on": city_today.isoformat()})
        assert r.status_code == 200
        assert (await c.post(f"/api/v1/matches/{second['id']}/decline", json={"reason": "unreachable"})).status_code == 200
    async with client(svc, "village_worker", area=V1) as c:
        assert (await c.post(f"/api/v1/matches/{first['id']}/feedback", json={"score": 4})).status_code == 200

    async with client(svc, "district_officer", area=OTHER_DISTRICT) as c:
        stats = (await c.get("/api/v1/needs/statistics", params={"by": "village"})).json()
        assert stats["total"] == 4
        assert stats["by_status"] == {"delivered": 1, "open": 3}
        assert stats["unmatched_by_reason"] == {"no_offer_in_area": 1, "capacity_exhausted": 1}
        assert stats["matching_rate"] == 0.25
        assert stats["by_service"][0] == {"service_code": "tutoring", "total": 3, "delivered": 1}
        assert {a["area_code"]: a["total"] for a in stats["by_area"]} == {V1: 2, V2: 2}
        assert stats["days_to_delivery"]["count"] == 1 and stats["days_to_delivery"]["mean"] >= 0
        performance = (await c.get("/api/v1/matches/statistics")).json()
        mine = next(p for p in performance if p["organisation_id"] == org)
        assert (mine["accepted"], mine["declined"], mine["delivered"]) == (1, 1, 1)
        assert mine["acceptance_rate"] == 0.5 and mine["delivery_rate"] == 1.0 and mine["feedback_mean"] == 4.0
    async with client(svc, "partner", org=org) as c:
        assert [p["organisation_id"] for p in (await c.get("/api/v1/matches/statistics")).json()] == [org]
        assert_problem(await c.get("/api/v1/needs/statistics"), 403)


async def test_points_issued_and_redeemed(svc):
    async with client(svc, "village_worker", area=V2) as c:
        account = (await c.post("/api/v1/points/accounts", json={
            "household_id": str(uuid.uuid4()), "area_code": V2, "level": 2})).json()
        assert (await c.post(f"/api/v1/points/accounts/{account['id']}/credits",
                             json={"rule_code": "community_activity"})).status_code == 201
        assert (await c.post(f"/api/v1/points/accounts/{account['id']}/credits", json={"amount": 90})).status_code == 201
        r = await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", headers=key(),
                         json={"site_code": "TS330102001", "items": [{"good": "oil_5l", "quantity": 1}]})
        assert r.status_code == 201, r.text
    async with client(svc, "district_officer", area=OTHER_DISTRICT) as c:
        stats = (await c.get("/api/v1/points/statistics")).json()
    assert stats["accounts"] == 1 and stats["issued"] == 100 and stats["redeemed"] == 60 and stats["outstanding"] == 40
    assert stats["issued_by_kind"] == {"reward": 10, "officer_credit": 90}
    assert sum(m["issued"] for m in stats["by_month"]) == 100
