"""The feed carries household.changed for every committed change and never for a rolled-back
one; the snapshot lets a consumer resynchronise."""

from factories import create, events_since, head_position, household


async def test_every_committed_change_has_exactly_one_event(registry, worker):
    before = await head_position(registry)
    created = await create(worker)
    hid = created["id"]
    url = f"/api/v1/households/{hid}"
    steps = [
        worker.patch(url, json={"facts": [{"fact": "deposits", "value": 1200}]}, headers={"If-Match": '"v1"'}),
        worker.post(f"{url}/status", json={"register_status": "tekun"}, headers={"If-Match": '"v2"'}),
        worker.post(f"{url}/surveys", json={"visited_on": "2026-01-05", "concern": True}),
    ]
    for step in steps:
        assert (await step).status_code in (200, 201)
    events = await events_since(registry, before)
    assert [(e.payload["change"], e.payload["version"]) for e in events] == [
        ("created", 1), ("updated", 2), ("status_changed", 3), ("updated", 4)]
    assert events[-1].payload["view"]["worker_concern"] is True and events[-1].payload["view"]["register_status"] == "tekun"
    assert events[1].payload["view"]["deposits"] == 1200.0


async def test_rolled_back_changes_have_no_event(registry, worker):
    created = await create(worker)
    url = f"/api/v1/households/{created['id']}"
    before = await head_position(registry)
    failures = [
        await worker.patch(url, json={"facts": [{"fact": "deposits", "value": -1}]}, headers={"If-Match": '"v1"'}),
        await worker.post(f"{url}/status", json={"register_status": "dibao"}, headers={"If-Match": '"v1"'}),
        await worker.patch(url, json={"facts": [{"fact": "deposits", "value": 5}]}, headers={"If-Match": '"v9"'}),
        await worker.post("/api/v1/households", json=household(area="330106999999")),
    ]
    assert [r.status_code for r in failures] == [422, 409, 412, 422]
    assert await events_since(registry, before) == []
    assert (await worker.get(url)).json()["version"] == 1


async def test_a_write_that_changes_nothing_has_no_event(registry, worker):
    created = await create(worker)
    url = f"/api/v1/households/{created['id']}"
    body = {"facts": [{"fact": "vehicles", "value": 0}], "address": "合成路 1 号"}
    assert (await worker.patch(url, json=body, headers={"If-Match": '"v1"'})).status_code == 200
    before = await head_position(registry)
    r = await worker.patch(url, json=body, headers={"If-Match": '"v2"'})
    assert r.status_code == 200 and r.headers["etag"] == '"v2"'
    assert await events_since(registry, before) == []


async def test_snapshot_pages_with_a_fixed_position(registry, worker):
    made = [await create(worker) for _ in range(3)]
    closed = made[1]["id"]
    assert (await worker.post(f"/api/v1/households/{closed}/close", headers={"If-Match": '"v1"'},
                              json={"reason": "全户迁出本市"})).status_code == 200
    async with registry.client("service") as svc:
        first = await svc.get("/internal/snapshot/households", params={"limit": 2})
        assert first.status_code == 200
        body = first.json()
        head = await head_position(registry)
        assert body["position"] == head
        await create(worker)  # a change after the snapshot began
        items = list(body["items"])
        cursor = body["next_cursor"]
        while cursor:
            page = (await svc.get("/internal/snapshot/households", params={"limit": 2, "cursor": cursor})).json()
            assert page["position"] == head
            items += page["items"]
            cursor = page["next_cursor"]
    seen = [i["household_id"] for i in items]
    assert len(seen) == len(set(seen)) >= 3
    item = body["items"][0]
    assert set(item) == {"household_id", "version", "area_code", "township_code", "district_code", "label_masked",
                         "synthetic", "change", "member_ages", "view", "missing"}
    # A closed household is listed as such (a consumer that missed its closing learns it here).
    changes = {i["household_id"]: i["change"] for i in items}
    assert changes[closed] == "closed" and changes[made[0]["id"]] == changes[made[2]["id"]] == "updated"
    async with registry.client("city_admin") as admin:
        assert (await admin.get("/internal/snapshot/households")).status_code == 403


async def test_feed_serves_household_changed_to_services(registry, worker):
    before = await head_position(registry)
    created = await create(worker)
    async with registry.client("service") as svc:
        page = (await svc.get("/internal/feed", params={"after": before})).json()
    [event] = [e for e in page["events"] if e["subject"] == created["id"]]
    assert event["type"] == "household.changed" and event["data"]["household_id"] == created["id"]
