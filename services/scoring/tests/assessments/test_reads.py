"""Reading assessments: scoped to the caller's jurisdiction, audited, explained."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from scoring_fakes import load_households
from scoring.households.tables import HouseholdView
from servicekit.tables import AuditRecord
from servicekit.testing import CITY, OTHER_TOWNSHIP, TOWNSHIP

AREAS = ["330106001001", "330106001002", "330106002001", "330127003004"]


@pytest.fixture(scope="module")
async def households(svc, ctx):
    return await load_households(svc, ctx, 60, seed=31, areas=AREAS)


def admin(svc):
    return svc.client("city_admin", area=CITY)


async def test_a_read_is_explained(svc, households):
    async with admin(svc) as c:
        r = await c.get(f"/api/v1/assessments/{households[0]}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["etag"]
    assert body["current"] and body["number"] == 1 and body["model_version"] == "hz-2026.1"
    assert body["assessed_at"].endswith(("Z", "+00:00")), body["assessed_at"]  # UTC, saying so, on SQLite too
    assert sum(d["score"] for d in body["dimensions"]) == pytest.approx(body["score"])
    band = body["band"]
    assert band["from"] <= body["score"] and body["level"] == band["level"]
    for ind in body["indicators"]:
        assert ind["reason_zh"] and ind["reason_en"] and ind["facts"], ind
    by_dim = {}
    for ind in body["indicators"]:
        by_dim[ind["dimension"]] = by_dim.get(ind["dimension"], 0) + ind["points"]
    for d in body["dimensions"]:
        expected = min(max(d["base"] + by_dim.get(d["code"], 0), 0), d["max"])
        assert d["score"] == pytest.approx(expected)


async def test_reads_are_scoped_to_the_jurisdiction(svc, households):
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        mine = (await c.get("/api/v1/assessments", params={"limit": 100})).json()["items"]
    assert mine and all(i["area_code"].startswith("330106001") for i in mine)
    outside = next(h for i, h in enumerate(households) if not AREAS[i % len(AREAS)].startswith("330106001"))
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        assert (await c.get(f"/api/v1/assessments/{outside}")).status_code == 404
        assert (await c.get(f"/api/v1/portraits/{outside}")).status_code == 404
        assert (await c.get(f"/api/v1/assessments/{outside}/what-would-help")).status_code == 404
    inside = households[0]
    async with svc.client("town_worker", area=OTHER_TOWNSHIP) as c:
        assert (await c.get(f"/api/v1/assessments/{inside}")).status_code == 404
    async with svc.client("partner", org="org-demo-0001") as c:
        assert (await c.get(f"/api/v1/assessments/{inside}")).status_code == 403
    async with svc.client("citizen", area="330106001001") as c:
        assert (await c.get("/api/v1/assessments")).status_code == 403
    async with svc.client() as c:
        assert (await c.get("/api/v1/assessments")).status_code == 401


async def test_reads_are_audited(svc, households):
    async def count() -> int:
        async with svc.db.sessionmaker() as s:
            return (await s.execute(select(func.count()).select_from(AuditRecord)
                                    .where(AuditRecord.resource_id == households[1]))).scalar_one()

    before = await count()
    async with admin(svc) as c:
        await c.get(f"/api/v1/assessments/{households[1]}")
        await c.get(f"/api/v1/portraits/{households[1]}")
    assert await count() == before + 2


async def test_lists_page_by_cursor_weakest_first(svc, households):
    seen, cursor, scores = [], None, []
    async with admin(svc) as c:
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = (await c.get("/api/v1/assessments", params=params)).json()
            seen += [i["household_id"] for i in page["items"]]
            scores += [i["score"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) and set(households) <= set(seen)
        assert scores == sorted(scores)
        level1 = (await c.get("/api/v1/assessments", params={"level": 1, "limit": 100})).json()["items"]
        assert all(i["effective_level"] == 1 for i in level1)
        assert (await c.get("/api/v1/assessments", params={"cursor": "!!not-a-cursor"})).status_code == 400


async def test_policies_finding_people(svc, households):
    async with admin(svc) as c:
        listed = (await c.get("/api/v1/assessments", params={"unclaimed_policy": "medical_assistance", "limit": 100})).json()["items"]
        assert listed, "the synthetic sample has families eligible for medical assistance without it"
        for item in listed[:5]:
            portrait = (await c.get(f"/api/v1/portraits/{item['household_id']}")).json()
            policy = next(p for p in portrait["policies"] if p["code"] == "medical_assistance")
            assert policy["eligible"] and not policy["receiving"] and policy["finds_person"]
            assert "medical_oop_12m" in policy["facts"]


async def test_the_portrait_rests_on_named_facts(svc, households, ctx):
    async with admin(svc) as c:
        body = (await c.get(f"/api/v1/portraits/{households[2]}")).json()
    assert len(body["policies"]) == len(ctx.catalogues.policies) == 16
    assert body["difficulty"]["code"] in ("especially_difficult", "relatively_difficult", "generally_difficult")
    for finding in body["causes"] + body["needs"] + body["five_types"]:
        assert finding["reason_en"] and finding["facts"]
    for service in body["services"]:
        assert service["need_type"] in ctx.catalogues.services[service["code"]].need_types
        assert service["need_type"] in {n["code"] for n in body["needs"]}


async def test_what_would_help_lifts_a_weak_household(svc, households, model, ctx):
    from scoring.rules.reference import apply_levers, assess

    async with admin(svc) as c:
        weak = (await c.get("/api/v1/assessments", params={"level": 1, "limit": 20})).json()["items"]
        assert weak
        helped = 0
        for item in weak:
            body = (await c.get(f"/api/v1/assessments/{item['household_id']}/what-would-help")).json()
            assert body["level"] == 1 and body["target_level"] == 2 and body["target_score"] == 60
            if not body["lifted"]:
                continue
            helped += 1
            sizes = {len(o["levers"]) for o in body["options"]}
            assert len(sizes) == 1  # only the smallest sets
            option = body["options"][0]
            assert option["level"] >= 2 and option["score"] >= 60
            assert option["sentence_en"].startswith("If ") and str(int(option["score"])) in option["sentence_en"]
            # the oracle agrees: the same levers applied to the same facts give the same score
            async with svc.db.sessionmaker() as s:
                stored = await s.get(HouseholdView, item["household_id"])
            facts = ctx.view.decode_row(np.frombuffer(stored.features, dtype=np.float64))
            chosen = [next(i for i, lv in enumerate(model.levers) if lv.code == o["code"]) for o in option["levers"]]
            assert assess(model, apply_levers(model, ctx.view, facts, chosen)).score == option["score"]
        assert helped, "some level-1 household can be lifted by at most three levers"


async def test_history_keeps_every_assessment_with_its_difference(svc, ctx, households):
    from scoring_fakes import FakeRegistry, synthetic_views
    from scoring.app import registry_consumer

    registry = FakeRegistry()
    consumer = registry_consumer(svc.app, registry.transport, svc.identity.token_source)
    consumer.name = "history-test"
    hid = "0d9b5a44-9b1c-4f8e-8d0e-history00001"[:36]
    (view, missing), = synthetic_views(ctx, 1, seed=77)
    registry.change(hid, {**view, "housing_unsafe": False}, missing)
    registry.change(hid, {**view, "housing_unsafe": True, "receives_housing_aid": False}, missing)
    await consumer.step()  # one batch: the newest version wins
    registry.change(hid, {**view, "housing_unsafe": False}, missing)
    await consumer.step()
    async with admin(svc) as c:
        items = (await c.get(f"/api/v1/assessments/{hid}/history")).json()["items"]
    assert [i["number"] for i in items] == [2, 1]
    assert items[0]["diff"]["previous_assessment_id"] == items[1]["assessment_id"]
    assert items[1]["diff"]["level_moved"] == "first"
