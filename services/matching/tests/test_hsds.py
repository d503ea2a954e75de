"""Offers in Open Referral HSDS: export, import round trip, and an import with broken records
(the rest imported, each broken one reported with where and why)."""

from __future__ import annotations

import copy

from factories import approved_partner, new_org_id, published_offer
from helpers import TOWNSHIP, assert_problem, client, key


async def test_export_then_import_round_trips_as_drafts(svc):
    source = await approved_partner(svc)
    offer = await published_offer(svc, source, services=["meal_assistance", "home_cleaning"], areas=[TOWNSHIP],
                                  capacity=12, period="week",
                                  eligibility={"min_age": 60, "household_types": ["dibao", "tekun"]})
    async with client(svc, "partner", org=source) as c:
        doc = (await c.get("/api/v1/offers/export")).json()
    assert {o["id"] for o in doc["organizations"]} == {source}
    (service,) = doc["services"]
    assert service["status"] == "active" and service["minimum_age"] == 60
    assert service["capacities"][0]["maximum"] == 12 and service["capacities"][0]["unit"]["identifier"] == "week"
    assert doc["locations"][0]["external_identifier"] == "TS330106001"

    target = await approved_partner(svc)
    async with client(svc, "partner", org=target) as c:
        report = (await c.post("/api/v1/offers/import", json=doc, headers=key())).json()
        assert report["rejected"] == [] and report["imported"][0]["id"] == offer["id"]
        imported = (await c.get(f"/api/v1/offers/{report['imported'][0]['offer_id']}")).json()
    for field in ("title", "services", "areas", "site_code", "capacity", "period", "eligibility", "contact_route"):
        assert imported[field] == offer[field], field
    assert imported["status"] == "draft" and imported["organisation_id"] == target
    assert imported["external_id"] == offer["id"]


async def test_an_import_with_broken_records_imports_the_rest_and_reports_each(svc):
    source = await approved_partner(svc)
    await published_offer(svc, source, services=["tutoring"], areas=[TOWNSHIP])
    async with client(svc, "partner", org=source) as c:
        doc = (await c.get("/api/v1/offers/export")).json()
    good = doc["services"][0]
    broken = []
    for change in (
        lambda s: s["attributes"][0]["taxonomy_term"].update(code="astrology"),
        lambda s: s["service_areas"][0].update(uri="urn:zhongfu:area:310101000000"),
        lambda s: s["capacities"][0].update(maximum=0),
        lambda s: s["service_at_locations"][0].update(location_id="nowhere"),
        lambda s: s.pop("name"),
    ):
        record = copy.deepcopy(good)
        change(record)
        broken.append(record)
    for i, record in enumerate([good, *broken]):
        record["id"] = f"ext-{i}"
    doc["services"] = [broken[0], good, *broken[1:]]
    target = await approved_partner(svc)
    async with client(svc, "partner", org=target) as c:
        before = len((await c.get("/api/v1/offers", params={"limit": 100})).json()["items"])
        r = await c.post("/api/v1/offers/import", json=doc, headers=key())
        assert r.status_code == 200, r.text
        report = r.json()
        assert [i["index"] for i in report["imported"]] == [1]
        rejected = {x["index"]: x["errors"][0] for x in report["rejected"]}
        assert rejected[0]["location"] == "services.0.attributes" and "catalogue" in rejected[0]["message"]
        assert rejected[2]["location"] == "services.2.service_areas" and "310101" not in str(rejected[2])
        assert rejected[3]["location"] == "services.3.capacities.0.maximum"
        assert rejected[4]["location"] == "services.4.service_at_locations"
        assert rejected[5]["location"] == "services.5.name"
        after = len((await c.get("/api/v1/offers", params={"limit": 100})).json()["items"])
        assert after == before + 1
        again = (await c.post("/api/v1/offers/import", json={"services": [good], "locations": doc["locations"]})).json()
        assert again["imported"] == [] and again["rejected"][0]["errors"][0]["issue"] == "already_exists"


async def test_import_needs_an_approved_partner_and_a_bounded_document(svc):
    async with client(svc, "partner", org=new_org_id()) as c:
        assert_problem(await c.post("/api/v1/offers/import", json={"services": [{"id": "x"}]}), 403,
                       "partner-not-approved")
    org = await approved_partner(svc)
    async with client(svc, "partner", org=org) as c:
        assert_problem(await c.post("/api/v1/offers/import", json={"services": []}), 422)
        assert_problem(await c.post("/api/v1/offers/import", json={"services": [{}] * 501}), 422)
        r = await c.post("/api/v1/offers/import", json={"services": ["not an object"]})
        assert_problem(r, 422)
    async with client(svc, "town_worker") as c:
        assert_problem(await c.get("/api/v1/offers/export"), 403)
        assert (await c.get("/api/v1/offers/export", params={"organisation": org})).status_code == 200
