"""Matches end to end through the API: proposed by a run, accepted or declined by the partner,
delivered, the family's feedback, revoked by an officer; the issue's bad inputs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from factories import approved_partner, match_of, need, published_offer, run
from helpers import VILLAGE, VILLAGE_2, assert_problem, client, key


async def test_a_need_is_matched_accepted_delivered_and_given_feedback(svc, city_today):
    org, other = await approved_partner(svc), await approved_partner(svc)
    offer = await published_offer(svc, org, services=["bathing_assistance"], areas=[VILLAGE], capacity=1)
    n = await need(svc, "bathing_assistance", urgency="urgent", level=1)
    report = await run(svc)
    assert report["proposed"] >= 1 and report["mode"] == "incremental"
    m = await match_of(svc, org, n["id"])
    assert m is not None and m["status"] == "proposed" and m["offer_id"] == offer["id"]
    assert set(m["need"]) == {"id", "service_code", "area_code", "village_name", "priority", "urgency",
                              "label_masked", "wish"}  # no household id, no ages
    assert m["need"]["label_masked"] == "张*明户" and m["contact"]["route"] == "platform_relay"
    assert m["contact"]["reference"].startswith("M")

    async with client(svc, "partner", org=other) as c:  # another partner: as if it did not exist
        assert_problem(await c.get(f"/api/v1/matches/{m['id']}"), 404)
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/accept"), 404)
    async with client(svc, "partner", org=org) as c:
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/accept", headers={"If-Match": '"v5"'}), 412)
        r = await c.post(f"/api/v1/matches/{m['id']}/accept", headers=key())
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/accept"), 409, "invalid-transition")
        tomorrow = (city_today + timedelta(days=2)).isoformat()
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/deliver", json={"delivered_on": tomorrow}), 422)
        r = await c.post(f"/api/v1/matches/{m['id']}/deliver",
                         json={"delivered_on": city_today.isoformat(), "notes": "已上门助浴"})
        assert r.status_code == 200 and r.json()["delivered_on"] == city_today.isoformat()
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/feedback", json={"score": 5}), 404)
    async with client(svc, "village_worker") as c:
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/feedback", json={"score": 6}), 422)
        r = await c.post(f"/api/v1/matches/{m['id']}/feedback", json={"score": 5, "comment": "服务很好"})
        assert r.status_code == 200 and r.json()["feedback"]["score"] == 5
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/feedback", json={"score": 4}), 409)
        assert (await c.get(f"/api/v1/needs/{n['id']}")).json()["status"] == "delivered"
    async with client(svc, "partner", org=org) as c:
        seen = (await c.get(f"/api/v1/matches/{m['id']}")).json()
        assert seen["feedback"]["comment"] == "服务很好"
        steps = (await c.get(f"/api/v1/matches/{m['id']}/steps")).json()
        assert [s["step"] for s in steps] == ["proposed", "accepted", "delivered", "feedback"]


async def test_unmatched_needs_say_why(svc):
    org = await approved_partner(svc)
    await published_offer(svc, org, services=["grief_support"], areas=[VILLAGE], capacity=1,
                          eligibility={"min_age": 60})
    nothing = await need(svc, "crisis_intervention")  # no offer of that service anywhere
    young = await need(svc, "grief_support", member_ages=[20, 30])
    await run(svc)
    async with client(svc, "town_worker") as c:
        assert (await c.get(f"/api/v1/needs/{nothing['id']}")).json()["unmatched_reason"] == "no_offer_in_area"
        assert (await c.get(f"/api/v1/needs/{young['id']}")).json()["unmatched_reason"] == "not_eligible"
    first = await need(svc, "grief_support", urgency="urgent", level=1, member_ages=[70])
    second = await need(svc, "grief_support", urgency="low", level=3, member_ages=[75])
    await run(svc)
    async with client(svc, "town_worker") as c:
        assert (await c.get(f"/api/v1/needs/{first['id']}")).json()["status"] == "matched"
        assert (await c.get(f"/api/v1/needs/{second['id']}")).json()["unmatched_reason"] == "capacity_exhausted"


async def test_declined_need_is_matched_again_elsewhere_never_to_the_same_offer(svc):
    org_a, org_b = await approved_partner(svc), await approved_partner(svc)
    near = await published_offer(svc, org_a, services=["rehabilitation_training"], areas=[VILLAGE], capacity=3,
                                 site_code="VP330106001001")
    far = await published_offer(svc, org_b, services=["rehabilitation_training"], areas=["330106000000"],
                                capacity=3, site_code="DC330106")
    n = await need(svc, "rehabilitation_training")
    await run(svc)
    m = await match_of(svc, org_a, n["id"])
    assert m is not None and m["offer_id"] == near["id"]  # the nearer site first
    async with client(svc, "partner", org=org_a) as c:
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/decline", json={"reason": "maybe"}), 422)
        r = await c.post(f"/api/v1/matches/{m['id']}/decline", json={"reason": "no_capacity", "note": "本月排满"})
        assert r.status_code == 200 and r.json()["status"] == "declined"
    await run(svc)
    assert await match_of(svc, org_a, n["id"]) is None
    again = await match_of(svc, org_b, n["id"])
    assert again is not None and again["offer_id"] == far["id"]


async def test_officer_revokes_an_accepted_match_and_the_need_is_open_again(svc):
    org = await approved_partner(svc)
    await published_offer(svc, org, services=["medication_guidance"], areas=[VILLAGE_2], capacity=2)
    n = await need(svc, "medication_guidance", area=VILLAGE_2)
    await run(svc)
    m = await match_of(svc, org, n["id"])
    async with client(svc, "partner", org=org) as c:
        assert (await c.post(f"/api/v1/matches/{m['id']}/accept")).status_code == 200
    async with client(svc, "partner", org=org) as c:
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/revoke", json={"reason": "x"}), 403)
    async with client(svc, "town_worker", area="330106002000") as c:  # not the need's township
        assert_problem(await c.post(f"/api/v1/matches/{m['id']}/revoke", json={"reason": "x"}), 404)
    async with client(svc, "town_worker") as c:
        r = await c.post(f"/api/v1/matches/{m['id']}/revoke", json={"reason": "家庭已搬离"}, headers=key())
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        assert (await c.get(f"/api/v1/needs/{n['id']}")).json()["status"] == "open"
        steps = (await c.get(f"/api/v1/matches/{m['id']}/steps")).json()
        assert [s["step"] for s in steps] == ["proposed", "accepted", "revoked"]


async def test_concurrent_accepts_never_exceed_the_offer_capacity(svc):
    """Six proposals, capacity cut to two, six partners' staff accepting at once: two win."""
    org = await approved_partner(svc)
    offer = await published_offer(svc, org, services=["home_cleaning"], areas=["330106002001"], capacity=6,
                                  site_code="VP330106002001")
    needs = [await need(svc, "home_cleaning", area="330106002001") for _ in range(6)]
    await run(svc)
    matches = [await match_of(svc, org, n["id"]) for n in needs]
    assert all(m is not None and m["offer_id"] == offer["id"] for m in matches)
    async with client(svc, "partner", org=org) as c:
        etag = (await c.get(f"/api/v1/offers/{offer['id']}")).headers["etag"]
        r = await c.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 2}, headers={"If-Match": etag})
        assert r.status_code == 200

    async def accept(i: int, match_id: str):
        async with client(svc, "partner", org=org, subject=f"staff-{i}") as c:
            return await c.post(f"/api/v1/matches/{match_id}/accept")

    answers = await asyncio.gather(*(accept(i, m["id"]) for i, m in enumerate(matches)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 409, 409, 409, 409], [a.text for a in answers]
    assert all(a.json()["type"].endswith("capacity-exhausted") for a in answers if a.status_code == 409)
    async with client(svc, "partner", org=org) as c:
        accepted = (await c.get("/api/v1/matches", params={"offer": offer["id"], "status": "accepted"})).json()
        assert len(accepted["items"]) == 2


async def test_full_run_keeps_proposals_that_stay(svc):
    org = await approved_partner(svc)
    await published_offer(svc, org, services=["errands"], areas=["330106002002"], capacity=5,
                          site_code="VP330106002002")
    n = await need(svc, "errands", area="330106002002")
    await run(svc)
    before = await match_of(svc, org, n["id"])
    report = await run(svc, "full")
    assert report["kept"] >= 1
    assert (await match_of(svc, org, n["id"]))["id"] == before["id"]
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post("/api/v1/matches/runs", json={"mode": "full"}), 403)
    async with client(svc, "auditor") as c:
        runs = (await c.get("/api/v1/matches/runs", params={"limit": 2})).json()["items"]
        assert runs[0]["mode"] == "full" and runs[0]["id"] == report["id"]


async def test_incremental_runs_reconsider_unmatched_needs_when_capacity_moves(svc):
    org = await approved_partner(svc)
    offer = await published_offer(svc, org, services=["after_school_care"], areas=["330106002002"], capacity=1,
                                  site_code="VP330106002002")
    first = await need(svc, "after_school_care", area="330106002002")
    await run(svc)
    waiting = await need(svc, "after_school_care", area="330106002002")
    report = await run(svc)
    assert report["needs_considered"] >= 1
    async with client(svc, "town_worker", area="330106002000") as c:
        assert (await c.get(f"/api/v1/needs/{waiting['id']}")).json()["unmatched_reason"] == "capacity_exhausted"
    assert await match_of(svc, org, first["id"]) is not None
    async with client(svc, "partner", org=org) as c:  # capacity moves: the waiting need is matched
        etag = (await c.get(f"/api/v1/offers/{offer['id']}")).headers["etag"]
        assert (await c.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 2},
                              headers={"If-Match": etag})).status_code == 200
    await run(svc)
    assert await match_of(svc, org, waiting["id"]) is not None


async def test_slots_held_follow_every_change_of_a_match(svc):
    """The offer's held slots (counted by the database on PostgreSQL, migration 0007) after proposals,
    a decline, an accept, a full run, a revocation and a pause."""
    org = await approved_partner(svc)
    offer = await published_offer(svc, org, services=["food_parcels"], areas=[VILLAGE_2], capacity=3)
    needs = [await need(svc, "food_parcels", area=VILLAGE_2) for _ in range(4)]

    async def held() -> int:
        async with client(svc, "partner", org=org) as c:
            return (await c.get(f"/api/v1/offers/{offer['id']}")).json()["held"]

    await run(svc)
    assert await held() == 3
    first, second, third = [m for m in [await match_of(svc, org, n["id"]) for n in needs] if m is not None]
    async with client(svc, "partner", org=org) as c:
        assert (await c.post(f"/api/v1/matches/{first['id']}/decline", json={"reason": "no_capacity"})).status_code == 200
        assert (await c.post(f"/api/v1/matches/{second['id']}/accept")).status_code == 200
    assert await held() == 2
    await run(svc, "full")  # the declined slot goes to the fourth need, never back to the first
    assert await held() == 3
    assert await match_of(svc, org, needs[3]["id"]) is not None and await match_of(svc, org, needs[0]["id"]) is None
    async with client(svc, "town_worker") as c:
        assert (await c.post(f"/api/v1/matches/{second['id']}/revoke", json={"reason": "家庭已搬离"})).status_code == 200
    assert await held() == 2
    async with client(svc, "partner", org=org) as c:
        assert (await c.post(f"/api/v1/offers/{offer['id']}/pause", headers=key())).status_code == 200
    assert await held() == 0
