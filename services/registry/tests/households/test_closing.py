"""Closing a household (注销): reason and date in its status history, one household.changed with
change "closed", read-only afterwards, within jurisdiction only."""

from factories import create, events_since, head_position, household


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
