"""Leads: a record about someone not registered waits for review; a worker opens an off-register
household from it in one step (主动发现)."""

import itertools

import pytest

from factories import VILLAGE, deliver, events_since, feed_record, head_position, resident_id

_ids = itertools.count(1)


@pytest.fixture
async def health_dept(registry):
    async with registry.client("department", dept="health", subject="dept-health") as c:
        yield c


async def _lead(worker, health_dept, **kw) -> dict:
    number = resident_id()
    records = [feed_record(f"L-{next(_ids):06d}", "major_illness_diagnosis", number, "leukemia", **kw),
               feed_record(f"L-{next(_ids):06d}", "chronic_disease_registration", number, "asthma", **kw)]
    assert (await deliver(health_dept, records))["leads"] == 2
    return number


async def _find(client, record_id_prefix: str = "L-") -> list[dict]:
    return [lead for lead in (await client.get("/api/v1/leads", params={"limit": 100})).json()["items"]
            if lead["record_id"].startswith(record_id_prefix)]


async def test_open_a_household_from_a_lead_in_one_step(registry, worker, health_dept):
    number = await _lead(worker, health_dept, area_code=VILLAGE)
    leads = [lead for lead in await _find(worker) if lead["resident_id_masked"] == number[:6] + "********" + number[14:]]
    assert len(leads) == 2 and number not in str(leads)
    first = leads[-1]
    before = await head_position(registry)
    r = await worker.post(f"/api/v1/leads/{first['id']}/open", headers={"If-Match": '"v1"'},
                          json={"address": "合成路 9 号", "name": "王五"})
    assert r.status_code == 201, r.text
    household = r.json()["household"]
    assert household["register_status"] == "off_register" and household["off_register_source"] == "proactive_discovery"
    assert household["channel"] == "big_data" and household["members"][0]["name_masked"] == "王*"
    [event] = await events_since(registry, before)
    codes = sorted(t["code"] for t in event.payload["triggers"])
    assert codes == ["household_created", "major_illness_diagnosed"]
    assert event.payload["view"]["major_illness_members"] == 1 and event.payload["view"]["chronic_conditions_total"] == 1
    remaining = {lead["id"] for lead in await _find(worker)}
    assert not {lead["id"] for lead in leads} & remaining  # both leads of the person are handled
    again = await worker.post(f"/api/v1/leads/{first['id']}/open", headers={"If-Match": '"v2"'},
                              json={"address": "合成路 9 号", "name": "王五"})
    assert again.status_code == 409


async def test_leads_are_scoped_and_dismissable(registry, worker, other_worker, health_dept):
    await _lead(worker, health_dept, area_code=VILLAGE)
    mine = await _find(worker)
    assert mine
    assert (await other_worker.get(f"/api/v1/leads/{mine[0]['id']}")).status_code == 404
    r = await worker.post(f"/api/v1/leads/{mine[0]['id']}/dismiss", headers={"If-Match": '"v1"'},
                          json={"reason": "moved out of the city"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"


async def test_a_lead_without_area_goes_to_the_city(registry, worker, health_dept):
    await _lead(worker, health_dept)
    async with registry.client("city_admin") as admin:
        city = [lead for lead in await _find(admin) if lead["area_code"] is None]
        assert city
        assert all(lead["area_code"] is not None for lead in await _find(worker))
        r = await admin.post(f"/api/v1/leads/{city[0]['id']}/open", headers={"If-Match": '"v1"'},
                             json={"address": "合成路 3 号", "name": "赵六"})
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "area_required"
