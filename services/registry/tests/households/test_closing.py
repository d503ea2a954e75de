"""Closing a household (注销): reason and date in its status history, one household.changed with
change "closed", read-only afterwards, within jurisdiction only."""

from factories import VILLAGE, create, events_since, head_position, household


async def test_closing_keeps_history_emits_closed_and_freezes(registry, worker, other_worker):
    created = await create(worker, household())
    hid = created["id"]
    before = await head_position(registry)
    assert (await other_worker.post(f"/api/v1/households/{hid}/close", headers={"If-Match": '"v1"'},
                                    json={"reason": "全户迁出本市"})).status_code == 404
    assert (await worker.post(f"/api/v1/households/{hid}/close", json={"reason": "全户迁出本市"})).status_code == 428
    r = await worker.post(f"/api/v1/households/{hid}/close", headers={"If-Match": '"v1"'},
                          json={"reason": "全户迁出本市", "effective_date": "2026-11-01"})
    assert r.status_code == 200, r.text
    assert (r.json()["closed_on"], r.json()["closed_reason"], r.headers["etag"]) == ("2026-11-01", "全户迁出本市", '"v2"')

    history = (await worker.get(f"/api/v1/households/{hid}/status-history")).json()["items"]
    assert (history[0]["from_status"], history[0]["to_status"], history[0]["reason"]) == ("dibao", "closed", "全户迁出本市")
    assert len(history) == 2  # opened, closed: nothing lost
    events = [e for e in await events_since(registry, before) if e.subject == hid]
    assert [e.payload["change"] for e in events] == ["closed"] and events[0].payload["version"] == 2

    read = await worker.get(f"/api/v1/households/{hid}")
    assert read.status_code == 200 and read.json()["closed_on"] == "2026-11-01" and read.json()["members"]
    for method, path, body in [("post", "close", {"reason": "again"}),
                               ("patch", "", {"facts": [{"fact": "rent_m", "value": 100}]}),
                               ("post", "status", {"register_status": "dibian"})]:
        url = f"/api/v1/households/{hid}" + (f"/{path}" if path else "")
        answer = await getattr(worker, method)(url, headers={"If-Match": '"v2"'}, json=body)
        assert answer.status_code == 409 and "全户" not in answer.text, (path, answer.text)
    member = read.json()["members"][0]
    answer = await worker.patch(f"/api/v1/members/{member['id']}", headers={"If-Match": f'"v{member["version"]}"'},
                                json={"facts": [{"fact": "employment_status", "value": "unemployed"}]})
    assert answer.status_code == 409 and "closed" in answer.json()["detail"], answer.text
    assert [e.subject for e in await events_since(registry, before)].count(hid) == 1


async def test_closing_needs_a_reason_and_no_future_date(worker):
    hid = (await create(worker, household()))["id"]
    for body in ({}, {"reason": ""}, {"reason": "x", "effective_date": "2999-01-01"}, {"reason": "x", "extra": 1}):
        r = await worker.post(f"/api/v1/households/{hid}/close", headers={"If-Match": '"v1"'}, json=body)
        assert r.status_code == 422, body


async def test_closing_releases_the_members_to_join_another_household(registry, worker):
    """A person belongs to at most one open household: once theirs is closed, records about them
    are leads (the closed household is not touched), they can be registered in a new household
    (no city-level check: they are in no other open one), and the closed household keeps them in
    its history. Their own status shows the closed household until then, the new one after."""
    from factories import feed_record, member, resident_id

    number = resident_id()
    closed = await create(worker, household(members=[member("head", resident_id=number)]))
    hid = closed["id"]
    assert (await worker.post(f"/api/v1/households/{hid}/close", headers={"If-Match": '"v1"'},
                              json={"reason": "户主迁居外市"})).status_code == 200
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        own = await citizen.get("/api/v1/households/mine")
        assert own.status_code == 200 and own.json()["household_id"] == hid
    before = await head_position(registry)
    async with registry.client("department", dept="health", subject="dept-health-closing") as health:
        r = await health.post("/api/v1/feeds/records",
                              json=feed_record("HLTH-CLOSE-1", "major_illness_diagnosis", number, "hemophilia"))
        assert r.status_code == 200 and r.json()["outcome"] == "lead", r.text
        assert [e for e in await events_since(registry, before) if e.subject == hid] == []
        read = (await worker.get(f"/api/v1/households/{hid}")).json()
        assert read["members"] and read["version"] == 2  # still there, unchanged by the record

        again = await create(worker, household(members=[member("head", resident_id=number)]))
        assert again["id"] != hid and not again.get("pending_review"), again
        r = await health.post("/api/v1/feeds/records",
                              json=feed_record("HLTH-CLOSE-2", "major_illness_diagnosis", number, "hemophilia"))
        assert r.json() == {"record_id": "HLTH-CLOSE-2", "outcome": "applied", "household_id": again["id"]}
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        assert (await citizen.get("/api/v1/households/mine")).json()["household_id"] == again["id"]
    # A second open household for the same person is still refused.
    third = await worker.post("/api/v1/households", json=household(members=[member("head", resident_id=number)]))
    assert third.status_code == 409 and third.json()["household_id"] == again["id"], third.text
