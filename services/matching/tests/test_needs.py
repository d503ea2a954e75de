"""Needs: recorded by workers, asked by citizens; nothing identifying; who sees what."""

from __future__ import annotations

from factories import need
from helpers import OTHER_DISTRICT_VILLAGE, VILLAGE, assert_problem, client, key

SERVICE = "legal_aid"


async def test_worker_records_a_need_with_priority_and_village_location(svc, profile):
    created = await need(svc, SERVICE, urgency="urgent", level=1)
    assert created["priority"] == 9 and created["status"] == "open" and created["source"] == "worker_visit"
    village = profile.areas.get(VILLAGE)
    assert created["location"] == {"latitude": village.lat, "longitude": village.lon}
    assert created["township_code"] == "330106001000" and created["district_code"] == "330106000000"
    assert created["need_types"] == ["legal"]


async def test_bad_needs_are_refused(svc):
    base = {"service_code": SERVICE, "area_code": VILLAGE}
    async with client(svc, "village_worker") as c:
        assert_problem(await c.post("/api/v1/needs", json={**base, "area_code": OTHER_DISTRICT_VILLAGE}), 404)
        assert_problem(await c.post("/api/v1/needs", json={**base, "service_code": "teleportation"}), 422,
                       "unknown-reference")
        assert_problem(await c.post("/api/v1/needs", json={**base, "area_code": "330106001000"}), 422,
                       "unknown-reference")
        assert_problem(await c.post("/api/v1/needs", json={**base, "service_code": "micro_wish"}), 422)
        assert_problem(await c.post("/api/v1/needs", json={**base, "wish": "书包"}), 422)
        r = await c.post("/api/v1/needs", json={**base, "label_masked": "张三明户"})
        body = assert_problem(r, 422, "validation-failed")
        assert "张三明" not in r.text and body["errors"][0]["location"] == "body.label_masked"
        assert_problem(await c.post("/api/v1/needs", json={**base, "member_ages": [130]}), 422)
        for not_an_age in (False, "8", 8.5):  # not read as 0, 8 or 8
            assert_problem(await c.post("/api/v1/needs", json={**base, "member_ages": [not_an_age]}), 422)
        assert_problem(await c.post("/api/v1/needs", json={**base, "name": "张三"}), 422)
    async with client(svc, "partner", org="org-x") as c:
        assert_problem(await c.post("/api/v1/needs", json=base), 403)


async def test_citizen_makes_a_micro_wish_and_sees_only_their_own(svc):
    async with client(svc, "citizen") as c:
        r = await c.post("/api/v1/needs/mine", json={"service_code": "micro_wish", "wish": "一个新书包"}, headers=key())
        assert r.status_code == 201, r.text
        mine = r.json()
        assert set(mine) == {"id", "service_code", "wish", "status", "match", "created_at", "version"}
        listed = (await c.get("/api/v1/needs")).json()["items"]
        assert mine["id"] in {n["id"] for n in listed}
        assert (await c.get(f"/api/v1/needs/{mine['id']}")).status_code == 200
    async with client(svc, "citizen", resident_id="330106198501010026") as c:
        assert_problem(await c.get(f"/api/v1/needs/{mine['id']}"), 404)
        assert mine["id"] not in {n["id"] for n in (await c.get("/api/v1/needs")).json()["items"]}
    async with client(svc, "town_worker") as c:
        seen = (await c.get(f"/api/v1/needs/{mine['id']}")).json()
        assert seen["source"] == "citizen" and seen["area_code"] == VILLAGE and seen["wish"] == "一个新书包"


async def test_partners_and_other_townships_do_not_see_needs(svc):
    created = await need(svc, SERVICE)
    async with client(svc, "partner", org="org-x") as c:
        assert_problem(await c.get("/api/v1/needs"), 403)
        assert_problem(await c.get(f"/api/v1/needs/{created['id']}"), 404)
    async with client(svc, "town_worker", area="330106002000") as c:
        assert_problem(await c.get(f"/api/v1/needs/{created['id']}"), 404)
        assert created["id"] not in {n["id"] for n in (await c.get("/api/v1/needs", params={"limit": 100})).json()["items"]}
    async with client(svc, "auditor") as c:
        assert (await c.get(f"/api/v1/needs/{created['id']}")).status_code == 200


async def test_cancel_an_open_need(svc):
    created = await need(svc, SERVICE)
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post(f"/api/v1/needs/{created['id']}/cancel", headers={"If-Match": '"v7"'}), 412)
        r = await c.post(f"/api/v1/needs/{created['id']}/cancel", headers={"If-Match": '"v1"'})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert_problem(await c.post(f"/api/v1/needs/{created['id']}/cancel"), 409, "invalid-transition")
