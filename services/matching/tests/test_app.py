"""The service as it runs: incremental matching on its own, the development seed."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from servicekit.testing import running_service

from factories import approved_partner, need, offer_body, published_offer
from helpers import assert_problem, client
from matching.app import create_app
from matching.organisations.tables import Organisation


async def test_the_engine_runs_on_its_own_when_needs_arrive(settings, identity, profile, svc):
    org = await approved_partner(svc)
    await published_offer(svc, org, services=["school_supplies"], areas=["330106001002"], capacity=2,
                          site_code="VP330106001002")
    auto = settings.model_copy(update={"auto_match_interval_seconds": 0.2, "auto_match_catch_up_seconds": 3600})
    async with running_service(create_app, auto, identity, profile=profile) as running:
        created = await need(running, "school_supplies", area="330106001002")
        status = None
        for _ in range(100):
            async with client(running, "town_worker") as c:
                status = (await c.get(f"/api/v1/needs/{created['id']}")).json()["status"]
            if status == "matched":
                break
            await asyncio.sleep(0.1)
        assert status == "matched"
        job = next(w for w in running.app.state.workers if w.name == "incremental-matching")
        async with client(running, "auditor") as c:
            before = (await c.get("/api/v1/matches/runs", params={"limit": 1})).json()["items"][0]
            checks = job.runs
            await asyncio.sleep(0.8)  # nothing changed: the job looks, and does not run the engine
            after = (await c.get("/api/v1/matches/runs", params={"limit": 1})).json()["items"][0]
        assert before["triggered_by"] == "job:incremental-matching"
        assert job.runs > checks and after["id"] == before["id"]


async def test_development_seed_approves_the_demo_partner_and_leaves_the_new_one_to_apply(settings, identity, profile):
    seeded = settings.model_copy(update={"seed_demo": True})
    async with running_service(create_app, seeded, identity, profile=profile) as running:
        async with running.db.sessionmaker() as s:
            org = (await s.execute(select(Organisation).where(Organisation.id == "org-demo-0001"))).scalar_one()
            assert (await s.execute(select(Organisation).where(Organisation.id == "org-demo-0002"))).first() is None
        assert org.status == "approved"
        async with client(running, "partner", org="org-demo-0001") as c:
            assert (await c.get("/api/v1/organisations/me")).json()["status"] == "approved"
        async with client(running, "partner", org="org-demo-0002") as c:  # partner-new: applies, is approved, posts
            assert_problem(await c.post("/api/v1/offers", json=offer_body()), 403, "partner-not-approved")
            r = await c.post("/api/v1/organisations", json={
                "name": "新加入的公益组织", "kind": "charity", "area_code": "330106000000", "description": "申请加入（演示）"})
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
            assert_problem(await c.post("/api/v1/offers", json=offer_body()), 403, "partner-not-approved")
        async with client(running, "district_officer") as c:
            r = await c.post("/api/v1/organisations/org-demo-0002/approve", json={"reason": "资质齐全"})
            assert r.status_code == 200 and r.json()["status"] == "approved", r.text
        async with client(running, "partner", org="org-demo-0002") as c:
            assert (await c.post("/api/v1/offers", json=offer_body())).status_code == 201
