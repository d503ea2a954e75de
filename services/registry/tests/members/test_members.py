"""Members: lookup by ID number (POST), masked reads, reveal with purpose, rate limit, audit;
one household per person, with cross-jurisdiction conflicts queued for the city."""

from datetime import date, timedelta

from factories import (
    OTHER_VILLAGE, TOWNSHIP, VILLAGE, audit_records, create, events_since, head_position, household, member, resident_id,
)
from registry.app import create_app
from servicekit.resident_id import mask
from servicekit.testing import OTHER_TOWNSHIP, running_service


async def _reveal(client, member_id: str) -> dict:
    r = await client.post(f"/api/v1/members/{member_id}/reveal", json={"purpose": "verification", "note": "home visit"})
    assert r.status_code == 200, r.text
    return r.json()


async def test_lookup_is_a_post_and_audited(registry, worker):
    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    r = await worker.post("/api/v1/members/lookup", json={"resident_id": number})
    assert r.status_code == 200 and r.json()["household_id"] == created["id"]
    assert number not in r.text
    assert await audit_records(registry, r.json()["id"], "lookup")
    assert (await worker.get("/api/v1/members/lookup")).status_code != 200  # never a GET


async def test_lookup_out_of_jurisdiction_is_404(worker, other_worker):
    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    r = await other_worker.post("/api/v1/members/lookup", json={"resident_id": number})
    assert r.status_code == 404


async def test_reveal_is_audited_with_its_purpose(registry, worker):
    created = await create(worker)
    head = created["members"][0]
    revealed = await _reveal(worker, head["id"])
    assert revealed["name"] == "张三明" and revealed["phone"] == "13800001234" and revealed["address"] == "合成路 1 号"
    [entry] = await audit_records(registry, head["id"], "read_unmasked")
    assert entry.purpose == "verification: home visit" and entry.actor == "worker-1"
    assert set(entry.fields) == {"resident_id", "name", "phone", "birth_date", "address"}


async def test_reveal_needs_a_role_that_needs_it(registry, worker):
    created = await create(worker)
    async with registry.client("city_admin") as admin, registry.client("auditor") as auditor:
        for client in (admin, auditor):
            r = await client.post(f"/api/v1/members/{created['members'][0]['id']}/reveal", json={"purpose": "verification"})
            assert r.status_code == 403


async def test_reveal_is_rate_limited(registry, identity):
    settings = registry.settings.model_copy(update={"reveal_per_hour": 2})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("town_worker", area=TOWNSHIP, subject="worker-limited") as c:
            created = await create(c)
            head = created["members"][0]["id"]
            for _ in range(2):
                await _reveal(c, head)
            r = await c.post(f"/api/v1/members/{head}/reveal", json={"purpose": "verification"})
    assert r.status_code == 429 and r.headers["retry-after"] == "3600"
    assert len(await audit_records(registry, head, "read_unmasked")) == 2


async def test_member_read_and_update_with_if_match(registry, worker):
    created = await create(worker)
    head = created["members"][0]
    url = f"/api/v1/members/{head['id']}"
    r = await worker.get(url)
    assert r.status_code == 200 and r.headers["etag"] == '"v1"'
    assert await audit_records(registry, head["id"], "read_masked")
    before = await head_position(registry)
    body = {"facts": [{"fact": "major_illnesses", "value": "cancer", "effective_date": str(date.today())}]}
    assert (await worker.patch(url, json=body)).status_code == 428
    r = await worker.patch(url, json=body, headers={"If-Match": '"v1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"v2"'
    [event] = await events_since(registry, before)
    [trig] = event.payload["triggers"]
    assert trig["code"] == "major_illness_diagnosed" and trig["member_ref"] == head["id"]
    assert trig["detail"] == {"illness_code": "cancer"} and trig["source"] == "worker"
    assert event.payload["view"]["major_illness_members"] == 1 and event.payload["version"] == 2


async def test_new_illness_after_death_is_422(worker):
    created = await create(worker)
    url = f"/api/v1/members/{created['members'][0]['id']}"
    died = date.today() - timedelta(days=30)
    r = await worker.patch(url, json={"facts": [{"fact": "deceased_on", "value": str(died)}]}, headers={"If-Match": '"v1"'})
    assert r.status_code == 200
    r = await worker.patch(url, json={"facts": [{"fact": "major_illnesses", "value": "cancer"}]}, headers={"If-Match": '"v2"'})
    assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "after_death"


async def test_bad_fact_values_are_422_without_echo(worker):
    created = await create(worker)
    url = f"/api/v1/members/{created['members'][0]['id']}"
    body = {"facts": [{"fact": "disability_grade", "value": 7}, {"fact": "no_such_fact", "value": 1},
                      {"fact": "major_illnesses", "value": "secret-diagnosis-xyz"}, {"fact": "deposits", "value": 5}]}
    r = await worker.patch(url, json=body, headers={"If-Match": '"v1"'})
    assert r.status_code == 422
    assert [e["issue"] for e in r.json()["errors"]] == ["invalid_value", "unknown_fact", "invalid_value", "wrong_subject"]
    assert "secret-diagnosis-xyz" not in r.text


async def test_adding_a_newborn_triggers_member_born(registry, worker):
    created = await create(worker)
    before = await head_position(registry)
    baby = member("child", birth=date.today() - timedelta(days=20), name="张小宝")
    r = await worker.post(f"/api/v1/households/{created['id']}/members", json=baby, headers={"If-Match": '"v1"'})
    assert r.status_code == 201, r.text
    [event] = await events_since(registry, before)
    assert event.payload["change"] == "members_changed"
    assert [t["code"] for t in event.payload["triggers"]] == ["member_born"]
    assert event.payload["view"]["members_born_12m"] == 1 and event.payload["view"]["members_total"] == 3


async def test_cross_jurisdiction_conflict_goes_to_the_city_with_a_neutral_answer(registry, worker, other_worker):
    number = resident_id()
    first = await create(worker, household(members=[member("head", resident_id=number)]))
    second = await create(other_worker, household(area=OTHER_VILLAGE, members=[member("head")]))
    r = await other_worker.post(f"/api/v1/households/{second['id']}/members", headers={"If-Match": '"v1"'},
                                json=member("spouse", resident_id=number, name="李四"))
    assert r.status_code == 202, r.text
    body = r.json()
    [pending] = body["pending_review"]
    assert first["id"] not in r.text and TOWNSHIP not in r.text and number not in r.text
    assert len(body["members"]) == 1  # not added yet
    async with registry.client("city_admin") as admin:
        case = (await admin.get(f"/api/v1/reconciliation/{pending['reconciliation_id']}")).json()
        assert case["existing_household_id"] == first["id"] and case["status"] == "open"
        before = await head_position(registry)
        r = await admin.post(f"/api/v1/reconciliation/{case['id']}/resolve", json={"decision": "move"},
                             headers={"If-Match": '"v1"'})
        assert r.status_code == 200 and r.json()["status"] == "moved"
    events = await events_since(registry, before)
    assert {e.subject for e in events} == {first["id"], second["id"]}
    assert all(e.payload["change"] == "members_changed" for e in events)
    moved = (await other_worker.get(f"/api/v1/households/{second['id']}")).json()
    assert len(moved["members"]) == 2 and "李*" in [m["name_masked"] for m in moved["members"]]


async def test_a_case_whose_person_was_released_meanwhile_adds_them_and_a_closed_target_is_refused(
        registry, worker, other_worker):
    """The household the person belonged to is closed while the city decides: "move" adds them to
    the requesting household as asked (there is nothing to move); "move" into a household closed
    meanwhile is refused and "keep" still works."""
    number, other = resident_id(), resident_id()
    first = await create(worker, household(members=[member("head", resident_id=number), member("spouse", resident_id=other)]))
    second = await create(other_worker, household(area=OTHER_VILLAGE, members=[member("head")]))
    third = await create(other_worker, household(area=OTHER_VILLAGE, members=[member("head")]))
    cases = []
    for target, person in ((second, number), (third, other)):
        r = await other_worker.post(f"/api/v1/households/{target['id']}/members", headers={"If-Match": '"v1"'},
                                    json=member("spouse", resident_id=person, name="李四"))
        assert r.status_code == 202, r.text
        cases.append(r.json()["pending_review"][0]["reconciliation_id"])
    assert (await worker.post(f"/api/v1/households/{first['id']}/close", headers={"If-Match": '"v1"'},
                              json={"reason": "全户迁出本市"})).status_code == 200
    assert (await other_worker.post(f"/api/v1/households/{third['id']}/close", headers={"If-Match": '"v1"'},
                                    json={"reason": "并户"})).status_code == 200
    async with registry.client("city_admin") as admin:
        r = await admin.post(f"/api/v1/reconciliation/{cases[0]}/resolve", json={"decision": "move"},
                             headers={"If-Match": '"v1"'})
        assert r.status_code == 200 and r.json()["status"] == "moved", r.text
        refused = await admin.post(f"/api/v1/reconciliation/{cases[1]}/resolve", json={"decision": "move"},
                                   headers={"If-Match": '"v1"'})
        assert refused.status_code == 409 and "closed" in refused.json()["detail"], refused.text
        kept = await admin.post(f"/api/v1/reconciliation/{cases[1]}/resolve", json={"decision": "keep"},
                                headers={"If-Match": '"v1"'})
        assert kept.status_code == 200 and kept.json()["status"] == "kept", kept.text
    joined = (await other_worker.get(f"/api/v1/households/{second['id']}")).json()
    assert len(joined["members"]) == 2 and "李*" in [m["name_masked"] for m in joined["members"]]
    assert len((await worker.get(f"/api/v1/households/{first['id']}")).json()["members"]) == 2  # its history stays


async def test_two_moves_in_opposite_directions_decided_at_once_both_succeed(registry, worker, other_worker):
    """Person A of household 1 requested by household 2, person B of household 2 requested by
    household 1, both moves decided at the same moment: each locks its person, then the two
    households in id order (requesting and source alike), so one waits for the other instead of
    the two deadlocking (until the tenth session one of them failed with a 500)."""
    import asyncio

    a, b = resident_id(), resident_id()
    one = await create(worker, household(members=[member("head", resident_id=a), member("spouse")]))
    two = await create(other_worker, household(area=OTHER_VILLAGE, members=[member("head", resident_id=b), member("spouse")]))
    cases = []
    for client, target, person in ((other_worker, two, a), (worker, one, b)):
        r = await client.post(f"/api/v1/households/{target['id']}/members", headers={"If-Match": '"v1"'},
                              json=member("child", resident_id=person))
        assert r.status_code == 202, r.text
        cases.append(r.json()["pending_review"][0]["reconciliation_id"])
    async with registry.client("city_admin") as admin:
        answers = await asyncio.gather(*(
            admin.post(f"/api/v1/reconciliation/{case}/resolve", json={"decision": "move"}, headers={"If-Match": '"v1"'})
            for case in cases))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    members = {h["id"]: {m["resident_id_masked"] for m in (await c.get(f"/api/v1/households/{h['id']}")).json()["members"]}
               for c, h in ((worker, one), (other_worker, two))}
    assert mask(b) in members[one["id"]] and mask(a) not in members[one["id"]]
    assert mask(a) in members[two["id"]] and mask(b) not in members[two["id"]]


async def test_same_jurisdiction_conflict_is_409(worker):
    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    other = await create(worker)
    r = await worker.post(f"/api/v1/households/{other['id']}/members", headers={"If-Match": '"v1"'},
                          json=member("spouse", resident_id=number))
    assert r.status_code == 409


async def test_citizen_sees_own_status_only(registry, worker):
    number = resident_id()
    mine = await create(worker, household(members=[member("head", resident_id=number)]))
    theirs = await create(worker)
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        own = await citizen.get("/api/v1/households/mine")
        assert own.status_code == 200 and own.json()["household_id"] == mine["id"]
        assert set(own.json()) == {"household_id", "register_status", "status_since", "area_name", "members_total"}
        by_id = await citizen.get(f"/api/v1/households/{mine['id']}")
        assert by_id.status_code == 200 and "members" not in by_id.json()
        assert (await citizen.get(f"/api/v1/households/{theirs['id']}")).status_code == 404
        assert (await citizen.get("/api/v1/households")).status_code == 403
        assert (await citizen.get(f"/api/v1/members/{mine['members'][0]['id']}")).status_code == 403


async def test_every_read_of_personal_data_is_audited(registry, worker):
    created = await create(worker)
    hid, mid = created["id"], created["members"][0]["id"]
    before = {k: len(await audit_records(registry, k)) for k in (hid, mid)}
    await worker.get(f"/api/v1/households/{hid}")
    await worker.get("/api/v1/households", params={"area_code": VILLAGE, "limit": 100})
    await worker.get(f"/api/v1/households/{hid}/fact-history")
    await worker.get(f"/api/v1/members/{mid}")
    assert len(await audit_records(registry, hid)) == before[hid] + 3
    assert len(await audit_records(registry, mid)) == before[mid] + 1
    async with registry.client("auditor") as auditor:
        log = (await auditor.get("/api/v1/audit", params={"resource_id": hid})).json()["items"]
    assert log and all(e["resource_id"] == hid for e in log)
    assert (await worker.get("/api/v1/audit")).status_code == 403


async def test_other_township_cannot_touch_members(worker, other_worker):
    created = await create(worker)
    mid = created["members"][0]["id"]
    assert (await other_worker.get(f"/api/v1/members/{mid}")).status_code == 404
    assert (await other_worker.post(f"/api/v1/members/{mid}/reveal", json={"purpose": "verification"})).status_code == 404
    assert OTHER_TOWNSHIP  # the other worker's jurisdiction, from the demo accounts
