"""Offers: the bad inputs of the issue, the lifecycle, and who sees what."""

from __future__ import annotations

from factories import approved_partner, new_org_id, offer_body, published_offer
from helpers import assert_problem, client, key


async def _count_offers(svc, org: str) -> int:
    async with client(svc, "partner", org=org) as c:
        return len((await c.get("/api/v1/offers", params={"limit": 100})).json()["items"])


async def test_an_offer_from_an_unapproved_partner_is_refused(svc):
    pending = new_org_id()
    async with client(svc, "partner", org=pending) as c:
        await c.post("/api/v1/organisations", json={"name": "未审核机构", "kind": "company",
                                                   "area_code": "330106000000", "description": "x"})
        r = await c.post("/api/v1/offers", json=offer_body(), headers=key())
        body = assert_problem(r, 403, "partner-not-approved")
        assert "approved" in body["detail"]
    async with client(svc, "partner", org=new_org_id()) as c:  # never applied
        assert_problem(await c.post("/api/v1/offers", json=offer_body()), 403, "partner-not-approved")
    assert await _count_offers(svc, pending) == 0


async def test_offer_bad_input_changes_nothing(svc):
    org = await approved_partner(svc)
    async with client(svc, "partner", org=org) as c:
        outside = await c.post("/api/v1/offers", json=offer_body(areas=["330106001000", "310101000000"]))
        body = assert_problem(outside, 422, "unknown-reference")
        assert "outside the city" in body["detail"] and "310101" not in body["detail"]
        for capacity in (0, -3):
            r = await c.post("/api/v1/offers", json=offer_body(capacity=capacity))
            body = assert_problem(r, 422, "validation-failed")
            assert body["errors"][0]["location"] == "body.capacity"
        r = await c.post("/api/v1/offers", json=offer_body(services=["meal_assistance", "space_travel"]))
        assert "catalogue" in assert_problem(r, 422, "unknown-reference")["detail"]
        assert_problem(await c.post("/api/v1/offers", json=offer_body(site_code="TS999")), 422, "unknown-reference")
        r = await c.post("/api/v1/offers", json=offer_body(eligibility={"household_types": ["royalty"]}))
        assert_problem(r, 422, "unknown-reference")
        r = await c.post("/api/v1/offers", json=offer_body(eligibility={"min_age": 70, "max_age": 60}))
        assert_problem(r, 422, "validation-failed")
        assert_problem(await c.post("/api/v1/offers", json={**offer_body(), "status": "published"}), 422)
        assert_problem(await c.post("/api/v1/offers", json=offer_body(areas=[])), 422)
    assert await _count_offers(svc, org) == 0


async def test_lifecycle_draft_published_paused_closed(svc):
    org = await approved_partner(svc)
    async with client(svc, "partner", org=org) as c:
        r = await c.post("/api/v1/offers", json=offer_body(), headers=key())
        offer = r.json()
        assert offer["status"] == "draft" and offer["held"] == 0 and r.headers["etag"] == '"v1"'
        oid = offer["id"]
        assert_problem(await c.post(f"/api/v1/offers/{oid}/pause"), 409, "invalid-transition")
        assert (await c.post(f"/api/v1/offers/{oid}/publish")).json()["status"] == "published"
        r = await c.patch(f"/api/v1/offers/{oid}", json={"capacity": 9})
        assert_problem(r, 428)
        r = await c.patch(f"/api/v1/offers/{oid}", json={"capacity": 9}, headers={"If-Match": '"v2"'})
        assert r.status_code == 200 and r.json()["capacity"] == 9
        assert (await c.post(f"/api/v1/offers/{oid}/pause")).json()["status"] == "paused"
        assert (await c.post(f"/api/v1/offers/{oid}/publish")).json()["status"] == "published"
        closed = await c.post(f"/api/v1/offers/{oid}/close")
        assert closed.json()["status"] == "closed"
        r = await c.patch(f"/api/v1/offers/{oid}", json={"capacity": 3}, headers={"If-Match": closed.headers["etag"]})
        assert_problem(r, 409, "invalid-transition")
        assert_problem(await c.post(f"/api/v1/offers/{oid}/publish"), 409, "invalid-transition")


async def test_partners_see_only_their_own_offers(svc):
    mine, theirs = await approved_partner(svc), await approved_partner(svc)
    offer = await published_offer(svc, theirs)
    async with client(svc, "partner", org=mine) as c:
        assert_problem(await c.get(f"/api/v1/offers/{offer['id']}"), 404)
        assert_problem(await c.post(f"/api/v1/offers/{offer['id']}/pause"), 404)
        r = await c.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 1}, headers={"If-Match": '"v2"'})
        assert_problem(r, 404)
        assert all(o["organisation_id"] == mine for o in (await c.get("/api/v1/offers")).json()["items"])
    async with client(svc, "town_worker") as c:
        assert (await c.get(f"/api/v1/offers/{offer['id']}")).status_code == 200
        listed = (await c.get("/api/v1/offers", params={"organisation": theirs})).json()["items"]
        assert [o["id"] for o in listed] == [offer["id"]]
    async with client(svc, "citizen") as c:
        assert (await c.get(f"/api/v1/offers/{offer['id']}")).status_code == 200
        assert all(o["status"] == "published" for o in (await c.get("/api/v1/offers", params={"limit": 100})).json()["items"])


async def test_offer_list_pages_with_cursor_and_filters(svc):
    org = await approved_partner(svc)
    for services in (["meal_assistance"], ["tutoring"], ["meal_assistance", "home_cleaning"]):
        await published_offer(svc, org, services=services)
    async with client(svc, "partner", org=org) as c:
        first = (await c.get("/api/v1/offers", params={"limit": 2})).json()
        second = (await c.get("/api/v1/offers", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        ids = [o["id"] for o in first["items"] + second["items"]]
        assert len(ids) == len(set(ids)) == 3 and second["next_cursor"] is None
        meals = (await c.get("/api/v1/offers", params={"service": "meal_assistance"})).json()["items"]
        assert len(meals) == 2
