"""An officer's reviewed level sits beside the computed one; the score is never replaced."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from scoring_fakes import ages_of, load_households
from servicekit.testing import CITY, TOWNSHIP

AREAS = ["330106001001"]


@pytest.fixture(scope="module")
async def households(svc, ctx):
    return await load_households(svc, ctx, 6, seed=41, areas=AREAS)


async def feed_head(svc) -> int:
    async with svc.client("service") as c:
        return (await c.get("/internal/feed", params={"limit": 1})).json()["head"]


async def test_review_needs_if_match_and_a_fresh_etag(svc, households):
    hid = households[0]
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 1, "reason": "Visited: worse than the data."})
        assert r.status_code == 428
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 1, "reason": "x"},
                        headers={"If-Match": '"v999"'})
        assert r.status_code == 412


async def test_a_review_stands_beside_the_computed_level_and_is_announced(svc, households):
    hid = households[1]
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        read = await c.get(f"/api/v1/assessments/{hid}")
        computed = read.json()["level"]
        reviewed = 1 if computed != 1 else 2
        start = await feed_head(svc)
        headers = {"If-Match": read.headers["etag"], "Idempotency-Key": f"review-{hid}"}
        body = {"level": reviewed, "reason": "Home visit: the treatment is not covered yet."}
        r = await c.put(f"/api/v1/assessments/{hid}/review", json=body, headers=headers)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["level"] == computed and out["effective_level"] == reviewed
        assert out["score"] == read.json()["score"]  # the computed score stays
        assert out["review"]["standing"] and out["review"]["computed_level"] == computed
        assert r.headers["etag"] != read.headers["etag"]
        again = await c.put(f"/api/v1/assessments/{hid}/review", json=body, headers=headers)
        assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    async with svc.client("service") as c:
        events = (await c.get("/internal/feed", params={"after": start})).json()["events"]
    (event,) = [e for e in events if e["subject"] == hid]
    assert event["data"]["cause"] == "review"
    assert event["data"]["level"] == reviewed and event["data"]["previous_level"] == computed
    assert event["data"]["member_ages"] == ages_of(1)  # the household's, kept with its view
    assert "Home visit" not in str(event["data"])  # the officer's words stay in scoring
    async with svc.client("city_admin", area=CITY) as c:
        listed = (await c.get("/api/v1/assessments", params={"reviewed": True, "limit": 100})).json()["items"]
    assert hid in {i["household_id"] for i in listed}


async def test_who_may_review(svc, households):
    hid = households[2]
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        etag = (await c.get(f"/api/v1/assessments/{hid}")).headers["etag"]
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 7, "reason": "x"}, headers={"If-Match": etag})
        assert r.status_code == 422  # not a level of the model
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 1, "reason": "x", "score": 99},
                        headers={"If-Match": etag})
        assert r.status_code == 422  # unknown fields are refused
    async with svc.client("village_worker", area="330106001001") as c:
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 1, "reason": "x"}, headers={"If-Match": etag})
        assert r.status_code == 403
    async with svc.client("town_worker", area="330106002000") as c:
        r = await c.put(f"/api/v1/assessments/{hid}/review", json={"level": 1, "reason": "x"}, headers={"If-Match": etag})
        assert r.status_code == 404


async def test_a_review_waits_for_an_activation_under_way(svc, households):
    # An activation holds the state row for update while it rescores everyone and carries the
    # reviews it read forward; a review must not slip in between its read and its write.
    hid = households[2]
    db = svc.app.state.db
    async with svc.client("town_worker", area=TOWNSHIP) as c:
        read = await c.get(f"/api/v1/assessments/{hid}")
        reviewed = 1 if read.json()["level"] != 1 else 2
        body = {"level": reviewed, "reason": "Visited during the model change."}
        async with db.engine.connect() as activation:
            if db.is_postgres:
                await activation.execute(text("SELECT 1 FROM scoring_state FOR UPDATE"))
            review = asyncio.ensure_future(
                c.put(f"/api/v1/assessments/{hid}/review", json=body, headers={"If-Match": read.headers["etag"]}))
            await asyncio.sleep(0.5)
            assert review.done() is (not db.is_postgres)  # SQLite: one writer at a time anyway
            await activation.rollback()
        r = await review
        assert r.status_code == 200, r.text
        assert r.json()["effective_level"] == reviewed
