"""Declarations (主动申报): citizens declare and follow theirs only; workers accept or reject."""

from factories import VILLAGE, create, events_since, head_position, household, member, resident_id

DECLARATION = {"kind": "difficulty", "name": "陈七", "phone": "13900002222", "address": "合成路 5 号",
               "needs": ["medical", "living"], "description": "家中老人住院，收入中断"}


async def _submit(registry, number: str, body: dict | None = None) -> dict:
    async with registry.client("citizen", resident_id=number, area=VILLAGE, subject=f"citizen-{number[-6:]}") as c:
        r = await c.post("/api/v1/declarations", json=body or DECLARATION)
    assert r.status_code == 201, r.text
    return r.json()


async def test_accepting_opens_a_household_for_an_unregistered_citizen(registry, worker):
    number = resident_id()
    declaration = await _submit(registry, number)
    assert declaration["status"] == "submitted" and declaration["name_masked"] == "陈*"
    before = await head_position(registry)
    r = await worker.post(f"/api/v1/declarations/{declaration['id']}/accept", headers={"If-Match": '"v1"'})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["household_id"]
    [event] = await events_since(registry, before)
    assert event.payload["change"] == "created"
    assert sorted(t["code"] for t in event.payload["triggers"]) == ["declaration_accepted", "household_created"]
    assert event.payload["view"]["declared_difficulty"] is True and event.payload["view"]["channel"] == "declaration"
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        mine = (await citizen.get("/api/v1/households/mine")).json()
        assert mine["household_id"] == r.json()["household_id"] and mine["register_status"] == "off_register"
        own = (await citizen.get("/api/v1/declarations")).json()["items"]
        assert [d["status"] for d in own] == ["accepted"]


async def test_accepting_for_a_citizen_whose_household_was_closed_opens_a_new_one(registry, worker):
    """The closed household's members were released: it is not changed, a new household is opened."""
    number = resident_id()
    closed = await create(worker, household(members=[member("head", resident_id=number)]))
    assert (await worker.post(f"/api/v1/households/{closed['id']}/close", headers={"If-Match": '"v1"'},
                              json={"reason": "户主迁居外市"})).status_code == 200
    declaration = await _submit(registry, number)
    r = await worker.post(f"/api/v1/declarations/{declaration['id']}/accept", headers={"If-Match": '"v1"'})
    assert r.status_code == 200 and r.json()["household_id"] not in (None, closed["id"]), r.text
    assert (await worker.get(f"/api/v1/households/{closed['id']}")).json()["version"] == 2  # untouched since closing
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        assert (await citizen.get("/api/v1/households/mine")).json()["household_id"] == r.json()["household_id"]


async def test_accepting_updates_a_registered_household(registry, worker):
    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    declaration = await _submit(registry, number, DECLARATION | {"kind": "change"})
    before = await head_position(registry)
    r = await worker.post(f"/api/v1/declarations/{declaration['id']}/accept", headers={"If-Match": '"v1"'})
    assert r.status_code == 200 and r.json()["household_id"] == created["id"]
    [event] = await events_since(registry, before)
    assert event.payload["change"] == "updated" and [t["code"] for t in event.payload["triggers"]] == ["declaration_accepted"]


async def test_rejection_reason_is_visible_to_the_citizen(registry, worker):
    number = resident_id()
    declaration = await _submit(registry, number)
    reason = "收入高于低边标准，建议申请临时救助"
    r = await worker.post(f"/api/v1/declarations/{declaration['id']}/reject", headers={"If-Match": '"v1"'},
                          json={"reason": reason})
    assert r.status_code == 200
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as citizen:
        seen = (await citizen.get(f"/api/v1/declarations/{declaration['id']}")).json()
    assert seen["status"] == "rejected" and seen["rejection_reason"] == reason
    again = await worker.post(f"/api/v1/declarations/{declaration['id']}/accept", headers={"If-Match": '"v2"'})
    assert again.status_code == 409


async def test_citizens_see_only_their_own(registry, worker, other_worker):
    mine, theirs = resident_id(), resident_id()
    d_theirs = await _submit(registry, theirs)
    await _submit(registry, mine)
    async with registry.client("citizen", resident_id=mine, area=VILLAGE) as citizen:
        assert (await citizen.get(f"/api/v1/declarations/{d_theirs['id']}")).status_code == 404
        listed = (await citizen.get("/api/v1/declarations")).json()["items"]
        assert listed and all(d["id"] != d_theirs["id"] for d in listed)
        assert (await citizen.post(f"/api/v1/declarations/{d_theirs['id']}/reject",
                                   json={"reason": "x"})).status_code == 403
    assert (await other_worker.get(f"/api/v1/declarations/{d_theirs['id']}")).status_code == 404


async def test_bad_declarations(registry):
    number = resident_id()
    async with registry.client("citizen", resident_id=number, area=VILLAGE) as c:
        r = await c.post("/api/v1/declarations", json=DECLARATION | {"needs": ["money"]})
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "unknown_need"
        r = await c.post("/api/v1/declarations", json=DECLARATION | {"area_code": "330106999999"})
        assert r.status_code == 422
        r = await c.post("/api/v1/declarations", json=DECLARATION | {"household_id": "x"})
        assert r.status_code == 422
    async with registry.client("citizen", resident_id="330106199003070015", area=VILLAGE) as c:
        assert (await c.post("/api/v1/declarations", json=DECLARATION)).status_code == 403
