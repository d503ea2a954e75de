"""GET /internal/snapshot/assessments: every current assessment, paged, in the event's shape."""

from __future__ import annotations

from scoring_fakes import load_households


async def test_snapshot_pages_through_every_household(svc, ctx):
    ids = await load_households(svc, ctx, 25, seed=51)
    seen, cursor, position = {}, None, None
    async with svc.client("service") as c:
        while True:
            r = await c.get("/internal/snapshot/assessments", params={"limit": 10, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            page = r.json()
            position = page["position"] if position is None else position
            for item in page["items"]:
                seen[item["household_id"]] = item
            cursor = page["next_cursor"]
            if not cursor:
                break
        head = (await c.get("/internal/feed", params={"limit": 1})).json()["head"]
    assert set(ids) <= set(seen) and position <= head
    item = seen[ids[0]]
    assert {"assessment_id", "score", "level", "indicators", "portrait", "suggestions", "dimensions"} <= set(item)


async def test_snapshot_is_for_services_only(svc):
    async with svc.client("city_admin", area="330100000000") as c:
        assert (await c.get("/internal/snapshot/assessments")).status_code == 403
    async with svc.client() as c:
        assert (await c.get("/internal/snapshot/assessments")).status_code == 401
