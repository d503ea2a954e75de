"""Households: opening one, reading it masked, jurisdiction, bad input, ETags and events."""

from datetime import date, datetime

from factories import OTHER_VILLAGE, TOWNSHIP, VILLAGE, audit_records, create, events_since, head_position, household, member
from registry.profile import load_profile
from servicekit.resident_id import CHINA_STANDARD_TIME


async def test_create_masks_and_publishes_one_event(registry, worker):
    before = await head_position(registry)
    body = household()
    number = body["members"][0]["resident_id"]
    r = await worker.post("/api/v1/households", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["etag"] == '"v1"' and r.headers["location"].endswith(created["id"])
    assert number not in r.text and "张三明" not in r.text and "13800001234" not in r.text
    head = next(m for m in created["members"] if m["relation"] == "head")
    assert head["name_masked"] == "张*明" and head["phone_masked"] == "138****1234"
    assert head["resident_id_masked"] == number[:6] + "********" + number[14:]
    assert created["label_masked"] == "张*明户" and created["address_masked"].endswith("***")
    events = await events_since(registry, before)
    assert len(events) == 1
    data = events[0].payload
    assert data["change"] == "created" and data["household_id"] == created["id"] and data["version"] == 1
    assert [t["code"] for t in data["triggers"]] == ["household_created"]
    assert data["township_code"] == TOWNSHIP and data["district_code"] == "330106000000"
    spec = load_profile(registry.settings.config_dir).scoring_view
    assert sorted(data["view"]) == sorted(spec.names)  # JSONB does not keep key order
    assert data["view"]["members_total"] == 2 and data["view"]["register_status"] == "dibao"
    assert set(data["missing"]) <= set(spec.names)
    assert number not in str(data) and "张三明" not in str(data)


async def test_read_is_masked_audited_and_carries_an_etag(registry, worker):
    created = await create(worker)
    r = await worker.get(f"/api/v1/households/{created['id']}")
    assert r.status_code == 200 and r.headers["etag"] == '"v1"'
    reads = await audit_records(registry, created["id"], "read_masked")
    assert reads and reads[-1].actor == "worker-1" and reads[-1].role == "town_worker"


async def test_other_township_reads_404(registry, worker, other_worker):
    created = await create(worker)
    r = await other_worker.get(f"/api/v1/households/{created['id']}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    listed = (await other_worker.get("/api/v1/households", params={"limit": 100})).json()["items"]
    assert created["id"] not in [h["id"] for h in listed]


async def test_list_pages_within_jurisdiction(registry, worker):
    ids = {(await create(worker))["id"] for _ in range(3)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "area_code": TOWNSHIP[:9]} | ({"cursor": cursor} if cursor else {})
        body = (await worker.get("/api/v1/households", params=params)).json()
        seen += [h["id"] for h in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))


async def test_unknown_area_is_422(worker):
    r = await worker.post("/api/v1/households", json=household(area="330106999999"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["location"] == "body.area_code"


async def test_a_location_is_two_finite_numbers_in_range(worker):
    import json

    for location in ("[true, 120]", '["30.2", 120.1]', "[91, 120]", "[30, 181]", "[1e300, -1e300]"):
        body = json.dumps(household()).replace('"channel"', f'"location": {location}, "channel"')
        r = await worker.post("/api/v1/households", content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["errors"][0]["location"].startswith("body.location"), (location, r.text)
    body = json.dumps(household()).replace('"channel"', '"location": [NaN, Infinity], "channel"')
    r = await worker.post("/api/v1/households", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text  # not JSON
    await create(worker, household(location=[30, 120]))


async def test_area_outside_jurisdiction_is_422(worker):
    r = await worker.post("/api/v1/households", json=household(area=OTHER_VILLAGE))
    assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "outside_jurisdiction"


async def test_status_with_foreign_source_is_422(worker):
    r = await worker.post("/api/v1/households", json=household(register_status="dibao", off_register_source="assistance_exit"))
    assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "source_not_allowed"
    r = await worker.post("/api/v1/households", json=household(register_status="off_register"))
    assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "source_required"


async def test_unknown_fields_are_422(worker):
    body = household()
    body["members"][0]["is_admin"] = True
    r = await worker.post("/api/v1/households", json=body | {"version": 9})
    assert r.status_code == 422
    assert {e["issue"] for e in r.json()["errors"]} == {"extra_forbidden"}


async def test_birth_date_disagreeing_with_id_is_422(worker):
    body = household(members=[member("head", birth=date(1980, 3, 4), birth_date="1980-03-05")])
    r = await worker.post("/api/v1/households", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0] == {"location": "body.members.0.birth_date", "issue": "birth_date_mismatch",
                                      "message": "The birth date disagrees with the ID number."}


INVALID_IDS = {
    "330106199003070015": "check_character",
    "330106199002300017": "birth_date",
    "33010620990101001X": "future_birth_date",
    "３３０１０６１９９００３０７００１４": "characters",
    "٣٣٠١٠٦١٩٩٠٠٣٠٧٠٠١٤": "characters",
    "330106900307001": "length",
    "33010619900307001": "length",
    "3301061990030700140": "length",
}


async def test_invalid_resident_ids_are_422_without_echo(worker):
    for number, reason in INVALID_IDS.items():
        r = await worker.post("/api/v1/households", json=household(members=[member("head", resident_id=number)]))
        assert r.status_code == 422, number
        error = r.json()["errors"][0]
        assert error["location"] == "body.members.0.resident_id" and error["issue"] == f"resident_id.{reason}", number
        assert number not in r.text


async def test_lower_case_x_is_normalised(registry, worker):
    r = await worker.post("/api/v1/households", json=household(members=[member("head", resident_id="33010220000229012x")]))
    assert r.status_code in (201, 409), r.text  # may already exist from another test of this session
    again = await worker.post("/api/v1/members/lookup", json={"resident_id": "33010220000229012X"})
    assert again.status_code == 200 and again.json()["resident_id_masked"] == "330102********012X"


async def test_failed_create_changes_nothing_and_publishes_nothing(registry, worker):
    first = await create(worker)
    taken = first["members"][0]
    before = await head_position(registry)
    number = (await worker.post(f"/api/v1/members/{taken['id']}/reveal", json={"purpose": "verification"})).json()["resident_id"]
    body = household(members=[member("head"), member("child", resident_id=number)])
    r = await worker.post("/api/v1/households", json=body)
    assert r.status_code == 409
    assert "household_id" in r.json()  # the caller can see that household anyway
    assert await events_since(registry, before) == []


async def test_if_match_is_required_and_checked(worker):
    created = await create(worker)
    url = f"/api/v1/households/{created['id']}"
    assert (await worker.patch(url, json={"rural_hukou": True})).status_code == 428
    assert (await worker.patch(url, json={"rural_hukou": True}, headers={"If-Match": '"v7"'})).status_code == 412
    r = await worker.patch(url, json={"rural_hukou": True}, headers={"If-Match": '"v1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"v2"' and r.json()["rural_hukou"] is True
    assert (await worker.patch(url, json={"rural_hukou": False}, headers={"If-Match": '"v1"'})).status_code == 412


async def test_status_change_has_history_and_trigger(registry, worker):
    created = await create(worker)
    url = f"/api/v1/households/{created['id']}"
    before = await head_position(registry)
    r = await worker.post(f"{url}/status", headers={"If-Match": '"v1"', "Idempotency-Key": f"st-{created['id']}"},
                          json={"register_status": "off_register", "off_register_source": "assistance_exit",
                                "reason": "income above the line"})
    assert r.status_code == 200, r.text
    assert r.json()["register_status"] == "off_register" and r.headers["etag"] == '"v2"'
    [event] = await events_since(registry, before)
    codes = [t["code"] for t in event.payload["triggers"]]
    assert event.payload["change"] == "status_changed" and codes == ["register_status_changed", "left_assistance"]
    assert event.payload["view"]["months_since_exit"] == 0
    history = (await worker.get(f"{url}/status-history")).json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [("dibao", "off_register"), (None, "dibao")]
    assert history[0]["actor"] == "worker-1"
    replay = await worker.post(f"{url}/status", headers={"If-Match": '"v1"', "Idempotency-Key": f"st-{created['id']}"},
                               json={"register_status": "off_register", "off_register_source": "assistance_exit",
                                     "reason": "income above the line"})
    assert replay.status_code == 200 and replay.headers.get("idempotent-replayed") == "true"
    assert len(await events_since(registry, before)) == 1


async def test_village_worker_cannot_change_status(registry):
    async with registry.client("town_worker", area=TOWNSHIP) as town, registry.client("village_worker", area=VILLAGE) as village:
        created = await create(town)
        r = await village.post(f"/api/v1/households/{created['id']}/status", headers={"If-Match": '"v1"'},
                               json={"register_status": "tekun"})
    assert r.status_code == 403


async def test_village_worker_records_a_survey(registry):
    async with registry.client("village_worker", area=VILLAGE, subject="village-1") as village:
        created = await create(village)
        head = created["members"][0]["id"]
        before = await head_position(registry)
        # A day without its hyphens is refused, not read as Unix time (20260105 s: 1970-08-23).
        r = await village.post(f"/api/v1/households/{created['id']}/surveys", json={"visited_on": "20260105"})
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "day_format"
        r = await village.post(f"/api/v1/households/{created['id']}/surveys", json={
            # Today where the worker is: the registry counts days in the city's time (UTC+8).
            "visited_on": str(datetime.now(CHINA_STANDARD_TIME).date()), "concern": True, "notes": "老人独居，需要关注",
            "household_facts": [{"fact": "housing_unsafe", "value": True}],
            "member_facts": {head: [{"fact": "living_alone", "value": True}, {"fact": "care_need", "value": "full"}]},
        })
        assert r.status_code == 201, r.text
        assert "老人独居" not in r.text and r.json()["findings"] == ["care_need", "housing_unsafe", "living_alone",
                                                                     "visits", "worker_concern"]
        read = (await village.get(f"/api/v1/households/{created['id']}")).json()
    [event] = await events_since(registry, before)
    codes = sorted(t["code"] for t in event.payload["triggers"])
    assert codes == ["care_dependency", "housing_unsafe"]
    view = event.payload["view"]
    assert view["survey_visits_12m"] == 1 and view["days_since_last_visit"] == 0 and view["worker_concern"] is True
    facts = {f["fact"]: f for f in read["facts"]}
    assert facts["housing_unsafe"]["source"] == "survey" and facts["housing_unsafe"]["record_id"].startswith(r.json()["id"])
    async with registry.client("town_worker", area=TOWNSHIP) as town:
        surveys = (await town.get(f"/api/v1/households/{created['id']}/surveys")).json()
    assert surveys["items"][0]["actor"] == "village-1"


async def test_read_document_is_what_the_response_model_serialises(registry, worker):
    """The read by id encodes its document itself; it must be, field for field and format for
    format, the JSON of HouseholdPublic built from the same rows (the OpenAPI contract)."""
    from registry.households import present, repository
    from registry.households.tables import Household

    body = household(members=[member("head", facts=[{"fact": "employment_status", "value": "unemployed"}]),
                              member("child", birth=date(2012, 5, 1))],
                     facts=[{"fact": "rent_m", "value": 900.5}, {"fact": "income_wages_m", "value": 0}],
                     location=[30.25, 120.16])
    hid = (await create(worker, body))["id"]
    r = await worker.get(f"/api/v1/households/{hid}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    async with registry.db.sessionmaker() as s:
        h = await s.get(Household, hid)
        rows = await repository.members_of(s, hid)
        # Ages on the city's day, as the registry counts them (UTC's date is a day behind from 16:00 UTC).
        expected = present.household(h, rows, load_profile(registry.settings.config_dir).areas,
                                     datetime.now(CHINA_STANDARD_TIME).date())
    assert r.json() == expected.model_dump(mode="json")
    document = r.json()
    assert len(document["members"]) == 2 and {f["fact"] for f in document["facts"]} >= {"rent_m", "income_wages_m"}
    member_facts = [f for m in document["members"] for f in m["facts"]]
    assert [f["value"] for f in member_facts if f["fact"] == "employment_status"] == ["unemployed"]
    assert all(f["received_at"].endswith("Z") for f in document["facts"] + member_facts)  # stored "+00:00"
