"""Partner organisations: apply, approval or rejection by a district or city officer, own view."""

from __future__ import annotations

from factories import approved_partner, new_org_id
from helpers import OTHER_DISTRICT, assert_problem, client, key

APPLICATION = {"name": "西湖公益服务社", "kind": "charity", "area_code": "330106000000",
               "description": "助老助残", "credit_code": "52330106MJ0000000X"}


async def test_apply_then_district_officer_approves(svc):
    org = new_org_id()
    async with client(svc, "partner", org=org) as c:
        r = await c.post("/api/v1/organisations", json=APPLICATION, headers=key())
        assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["id"] == org
        again = await c.post("/api/v1/organisations", json=APPLICATION)
        assert_problem(again, 409, "already-exists")
        mine = await c.get("/api/v1/organisations/me")
        assert mine.json()["id"] == org
    async with client(svc, "district_officer") as c:
        r = await c.post(f"/api/v1/organisations/{org}/approve", json={}, headers={"If-Match": '"v9"'})
        assert_problem(r, 412, "precondition-failed")
        r = await c.post(f"/api/v1/organisations/{org}/approve", json={"reason": "ok"}, headers={"If-Match": '"v1"'})
        assert r.status_code == 200 and r.json()["status"] == "approved" and r.headers["etag"] == '"v2"'
        r = await c.post(f"/api/v1/organisations/{org}/reject", json={"reason": "late"})
        assert_problem(r, 409, "invalid-transition")


async def test_rejection_needs_a_reason_and_officer_of_the_district(svc):
    org = new_org_id()
    async with client(svc, "partner", org=org) as c:
        assert (await c.post("/api/v1/organisations", json={**APPLICATION, "area_code": OTHER_DISTRICT})).status_code == 201
    async with client(svc, "district_officer") as c:  # 西湖区: the organisation is registered in 上城区
        assert_problem(await c.post(f"/api/v1/organisations/{org}/reject", json={"reason": "x"}), 404)
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post(f"/api/v1/organisations/{org}/reject", json={"reason": "x"}), 403)
    async with client(svc, "district_officer", area=OTHER_DISTRICT) as c:
        assert_problem(await c.post(f"/api/v1/organisations/{org}/reject", json={}), 422, "validation-failed")
        r = await c.post(f"/api/v1/organisations/{org}/reject", json={"reason": "登记证书已过期"})
        assert r.status_code == 200 and r.json()["status"] == "rejected"


async def test_partners_see_only_their_own_organisation(svc):
    mine, theirs = await approved_partner(svc), await approved_partner(svc)
    async with client(svc, "partner", org=mine) as c:
        listed = (await c.get("/api/v1/organisations", params={"limit": 100})).json()["items"]
        assert [o["id"] for o in listed] == [mine]
        assert_problem(await c.get(f"/api/v1/organisations/{theirs}"), 404)
    async with client(svc, "auditor") as c:
        assert (await c.get(f"/api/v1/organisations/{theirs}")).status_code == 200


async def test_bad_applications(svc):
    async with client(svc, "partner", org=new_org_id()) as c:
        assert_problem(await c.post("/api/v1/organisations", json={**APPLICATION, "area_code": "330199000000"}),
                       422, "unknown-reference")
        assert_problem(await c.post("/api/v1/organisations", json={**APPLICATION, "role": "city_admin"}),
                       422, "validation-failed")
        assert_problem(await c.post("/api/v1/organisations", json={**APPLICATION, "name": "x" * 101}), 422)
    async with client(svc, "partner") as c:  # a partner token without an org claim
        assert_problem(await c.post("/api/v1/organisations", json=APPLICATION), 403)
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post("/api/v1/organisations", json=APPLICATION), 403)
