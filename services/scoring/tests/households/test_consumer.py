"""Events in and out: household.changed from a fake registry, assessment.updated on our feed."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import Text, cast, func, select, text

from servicekit.tables import OutboxEvent

from scoring_fakes import VILLAGES, FakeRegistry, ages_of, synthetic_views
from scoring.app import registry_consumer
from scoring.assessments.tables import Assessment, CurrentAssessment
from scoring.households.digest import digest
from scoring.households.schemas import HouseholdChanged, HouseholdPage
from scoring.households.service import parse_events
from scoring.households.tables import HouseholdView
from scoring.rules.view import canonical_json, input_hash

DIMENSIONS = {"source", "structure", "health", "property", "expenditure", "employment", "other"}
PAYLOAD_KEYS = {
    "assessment_id", "household_id", "household_version", "area_code", "township_code", "district_code",
    "label_masked", "household_type", "member_ages", "score", "level", "previous_level", "previous_score", "dimensions", "indicators", "cause",
    "triggers", "model_version", "portrait", "suggestions", "assessed_at",
}


@pytest.fixture
def registry():
    return FakeRegistry()


@pytest.fixture
def consumer(svc, registry):
    c = registry_consumer(svc.app, registry.transport, svc.identity.token_source)
    c.name = f"registry-{uuid.uuid4().hex[:8]}"  # each test follows its own fake registry
    return c


async def drain(consumer) -> int:
    total = 0
    while (n := await consumer.step()) > 0:
        total += n
    return total


async def our_events(svc, after: int) -> list[dict]:
    async with svc.client("service") as c:
        r = await c.get("/internal/feed", params={"after": after, "limit": 1000})
    assert r.status_code == 200
    return [e for e in r.json()["events"] if e["type"] == "assessment.updated"]


async def head(svc) -> int:
    async with svc.client("service") as c:
        return (await c.get("/internal/feed", params={"limit": 1})).json()["head"]


def new_id() -> str:
    return str(uuid.uuid4())


async def current_of(svc, household_id):
    async with svc.db.sessionmaker() as s:
        return await s.get(CurrentAssessment, household_id)


async def test_each_change_is_assessed_and_announced_in_the_contract_shape(svc, ctx, registry, consumer):
    start = await head(svc)
    ids = [new_id() for _ in range(40)]
    trigger = {"code": "major_illness_diagnosed", "member_ref": "m-1", "effective_date": "2026-11-20",
               "source": "health", "detail": {"illness_code": "cancer"}}
    for i, (hid, (view, missing)) in enumerate(zip(ids, synthetic_views(ctx, 40, seed=21), strict=True)):
        # Every other one as a registry that did not send member ages yet.
        registry.change(hid, view, missing, area=VILLAGES[i % len(VILLAGES)], triggers=[trigger] if i == 0 else [],
                        member_ages=[70 - i, 41, 8] if i % 2 == 0 else None)
    assert await drain(consumer) == 40
    events = await our_events(svc, start)
    assert len(events) == 40
    by_household = {e["data"]["household_id"]: e["data"] for e in events}
    assert set(by_household) == set(ids)
    first = by_household[ids[0]]
    assert set(first) == PAYLOAD_KEYS
    assert set(first["dimensions"]) == DIMENSIONS
    assert first["cause"] == "household_changed" and first["previous_level"] is None
    assert first["triggers"] == [{k: trigger[k] for k in ("code", "member_ref", "effective_date", "source")}]
    assert first["level"] in (1, 2, 3) and 0 <= first["score"] <= 100
    assert sum(first["dimensions"].values()) == pytest.approx(first["score"])
    # The indicators as codes with their points; their reasons are the model's (one per tier),
    # read with model_version rather than repeated in every event.
    assert first["indicators"]
    for ind in first["indicators"]:
        assert set(ind) == {"code", "dimension", "points"} and ind["dimension"] in DIMENSIONS
    views = dict(zip(ids, synthetic_views(ctx, 40, seed=21), strict=True))
    for hid, data in by_household.items():  # the register status, null when the registry does not know it
        assert data["household_type"] == views[hid][0].get("register_status"), hid
    assert {d["household_type"] for d in by_household.values()} >= {"dibao", "off_register"}
    assert set(first["portrait"]) == {"difficulty", "causes", "needs", "five_types"}
    assert set(first["suggestions"]) == {"policies", "services"}
    for p in first["suggestions"]["policies"]:
        assert set(p) == {"code", "eligible", "receiving"}
    for s in first["suggestions"]["services"]:
        assert set(s) == {"code", "need_type"}
    assert first["area_code"] == VILLAGES[0] and first["district_code"] == VILLAGES[0][:6] + "000000"
    # Member ages as the registry sent them; [] (unknown) where it sent none.
    assert [by_household[hid]["member_ages"] for hid in ids] == [[70 - i, 41, 8] if i % 2 == 0 else []
                                                                 for i in range(40)]
    async with svc.db.sessionmaker() as s:
        stored = dict((await s.execute(select(HouseholdView.household_id, HouseholdView.member_ages)
                                       .where(HouseholdView.household_id.in_(ids)))).all())
    assert [stored[hid] for hid in ids[:2]] == ["[70,41,8]", None]


async def test_the_latest_member_ages_are_kept_and_announced(svc, ctx, registry, consumer):
    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=9)
    view = {**view, "major_illness_members": 0, "major_illness_new_12m": 0}
    registry.change(hid, view, missing, member_ages=[44, 41])
    await drain(consumer)
    start = await head(svc)
    # A birth: new ages with new facts, one new assessment carrying them.
    registry.change(hid, {**view, "major_illness_members": 1, "major_illness_new_12m": 1}, missing,
                    member_ages=[44, 41, 0])
    await drain(consumer)
    (event,) = await our_events(svc, start)
    assert event["data"]["member_ages"] == [44, 41, 0]
    async with svc.db.sessionmaker() as s:
        assert (await s.get(HouseholdView, hid)).member_ages == "[44,41,0]"
    async with svc.client("service") as c:  # alerts' resync reads them too
        items, cursor = [], None
        while True:
            page = (await c.get("/internal/snapshot/assessments",
                                params={"limit": 1000, **({"cursor": cursor} if cursor else {})})).json()
            items += page["items"]
            if not (cursor := page["next_cursor"]):
                break
    assert [i["member_ages"] for i in items if i["household_id"] == hid] == [[44, 41, 0]]


async def test_a_changed_fact_gives_a_new_assessment_with_its_difference(svc, ctx, registry, consumer):
    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=5)
    view = {**view, "major_illness_members": 0, "major_illness_new_12m": 0}
    registry.change(hid, view, missing)
    await drain(consumer)
    before = await current_of(svc, hid)
    start = await head(svc)
    registry.change(hid, {**view, "major_illness_members": 2, "major_illness_new_12m": 1}, missing,
                    triggers=[{"code": "major_illness_diagnosed", "member_ref": "m", "source": "health"}])
    await drain(consumer)
    after = await current_of(svc, hid)
    assert after.number == before.number + 1 and after.score < before.score
    (event,) = await our_events(svc, start)
    data = event["data"]
    assert data["previous_score"] == before.score and data["previous_level"] == before.effective_level
    assert "major_illness" in {i["code"] for i in data["indicators"]}
    async with svc.client("city_admin", area="330100000000") as c:
        diff = (await c.get(f"/api/v1/assessments/{hid}")).json()["diff"]
    assert diff["previous_assessment_id"] == before.assessment_id
    assert "major_illness" in diff["indicators_added"] and diff["score_change"] == after.score - before.score


async def test_a_single_change_that_fails_to_score_is_applied_whole_on_the_next_try(svc, ctx, registry, consumer,
                                                                                   monkeypatch):
    """If scoring one change fails, nothing of it is kept (its view's upsert is rolled back with
    the rest, the cursor stays) and the next try applies all of it."""
    from scoring.assessments.service import Pending

    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=12)
    registry.change(hid, view, missing)
    compute = Pending.compute

    def fails(self, rows=True):
        raise RuntimeError("the model failed on this household")

    monkeypatch.setattr(Pending, "compute", fails)
    with pytest.raises(RuntimeError, match="the model failed"):
        await consumer.step()
    async with svc.db.sessionmaker() as s:
        assert await s.get(HouseholdView, hid) is None  # the view's upsert was rolled back with the rest
    monkeypatch.setattr(Pending, "compute", compute)
    assert await drain(consumer) == 1
    current = await current_of(svc, hid)
    async with svc.db.sessionmaker() as s:
        stored = await s.get(HouseholdView, hid)
    assert stored.view == view and current is not None and current.input_hash == stored.input_hash


async def test_the_same_facts_again_change_nothing(svc, ctx, registry, consumer):
    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=6)
    registry.change(hid, view, missing)
    await drain(consumer)
    before = await current_of(svc, hid)
    start = await head(svc)
    registry.change(hid, view, missing, area=VILLAGES[2], label="李*华户")  # a move, same facts
    await drain(consumer)
    after = await current_of(svc, hid)
    assert after.assessment_id == before.assessment_id
    assert after.area_code == VILLAGES[2] and after.label_masked == "李*华户"
    assert await our_events(svc, start) == []


async def test_an_older_version_never_replaces_a_newer_one(svc, ctx, registry, consumer):
    hid = new_id()
    (v1, m1), (v2, m2) = synthetic_views(ctx, 2, seed=8)
    registry.change(hid, v2, m2, version=5)
    registry.change(hid, v1, m1, version=3)  # late, older
    await drain(consumer)
    async with svc.db.sessionmaker() as s:
        stored = await s.get(HouseholdView, hid)
    assert stored.version == 5 and stored.view == v2
    registry.change(hid, v1, m1, version=4)  # in a later batch: still older
    await drain(consumer)
    async with svc.db.sessionmaker() as s:
        assert (await s.get(HouseholdView, hid)).version == 5
        count = (await s.execute(select(func.count()).select_from(Assessment).where(Assessment.household_id == hid))).scalar_one()
    assert count == 1


async def test_a_view_is_kept_as_the_canonical_text_that_was_hashed(svc, ctx, registry, consumer):
    """Stored as text (PostgreSQL takes it in without parsing it), read back as the view sent."""
    (v1, m1), (v2, m2) = synthetic_views(ctx, 2, seed=9)
    first, second = new_id(), new_id()
    registry.change(first, v1, m1)
    await drain(consumer)
    registry.change(first, v2, m2, version=2)  # an update of a view already kept
    registry.change(second, v1, m1)
    await drain(consumer)
    async with svc.db.sessionmaker() as s:
        kept = {r[0]: (r[1], r[2]) for r in await s.execute(
            select(HouseholdView.household_id, cast(HouseholdView.view, Text), HouseholdView.input_hash)
            .where(HouseholdView.household_id.in_([first, second])))}
        assert (await s.get(HouseholdView, first)).view == v2
        if svc.db.is_postgres:
            kind = (await s.execute(text("SELECT data_type FROM information_schema.columns WHERE "
                                         "table_schema = current_schema() AND table_name = 'household_views' "
                                         "AND column_name = 'view'"))).scalar_one()
            assert kind == "text"
    for hid, view, missing in ((first, v2, m2), (second, v1, m1)):
        stored, digest = kept[hid]
        assert stored == canonical_json(view) and digest == input_hash(stored, missing)


async def test_missing_and_bad_facts_are_assessed_and_explained(svc, ctx, registry, consumer):
    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=9)
    view = {**view, "members_total": 999, "income_trend_12m": None, "register_status": "unheard_of"}
    del view["head_age"]
    registry.change(hid, view, [*missing, "income_trend_12m"])
    await drain(consumer)
    async with svc.client("city_admin", area="330100000000") as c:
        r = await c.get(f"/api/v1/assessments/{hid}")
    assert r.status_code == 200, r.text
    notes = {n["field"]: n["treatment"] for n in r.json()["facts"]}
    assert notes["members_total"] == "clamped"
    assert notes["income_trend_12m"] == "imputed"
    assert notes["register_status"] == "invalid"
    assert notes["head_age"] == "unknown"
    not_evaluated = {n["indicator"] for n in r.json()["not_evaluated"]}
    assert "register_status" in not_evaluated


async def test_a_malformed_event_is_skipped_and_the_feed_goes_on(svc, ctx, registry, consumer):
    registry.raw_event("household.changed", {"household_id": "x", "view": "not a view"})
    registry.raw_event("household.merged", {"anything": 1})
    hid = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=10)
    registry.change(hid, view, missing)
    await drain(consumer)
    assert await current_of(svc, hid) is not None


async def test_a_closed_household_leaves_the_current_lists_and_is_withdrawn_once(svc, ctx, registry, consumer):
    """Closed (household.changed "closed"): no current assessment any more, and one
    assessment.withdrawn for alerts; a household closed before it was ever assessed sends none."""
    hid, never, kept = new_id(), new_id(), new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=12)
    registry.change(hid, view, missing)
    registry.change(kept, view, missing)
    await drain(consumer)
    before, assessed = await head(svc), await current_of(svc, hid)
    registry.change(hid, view, missing, change="closed")
    registry.change(never, view, missing, change="closed")
    await drain(consumer)
    assert await current_of(svc, hid) is None and await current_of(svc, never) is None
    async with svc.client("service") as c:
        events = (await c.get("/internal/feed", params={"after": before, "limit": 1000})).json()["events"]
    [withdrawn] = [e for e in events if e["type"] == "assessment.withdrawn"]
    assert [e["type"] for e in events] == ["assessment.withdrawn"]
    data = withdrawn["data"]
    assert (data["household_id"], data["assessment_id"], data["level"], data["cause"]) == (
        hid, assessed.assessment_id, assessed.effective_level, "household_closed")
    assert data["area_code"] == VILLAGES[0] and data["household_version"] == 2 and data["withdrawn_at"].endswith("Z")

    # A consumer that fell behind the feed finds the same withdrawal in the snapshot of
    # withdrawals (pages of one: every closed household of the session's database is in it).
    found, cursor = {}, None
    async with svc.client("service") as c:
        while True:
            page = (await c.get("/internal/snapshot/withdrawn",
                                params={"limit": 1, **({"cursor": cursor} if cursor else {})})).json()
            assert page["position"] >= before and len(page["items"]) <= 1
            found |= {item["household_id"]: item for item in page["items"]}
            if not (cursor := page["next_cursor"]):
                break
        assert (await c.get("/internal/snapshot/withdrawn")).status_code == 200
    async with svc.client("city_admin", area="330100000000") as c:
        assert (await c.get("/internal/snapshot/withdrawn")).status_code == 403
    assert found[hid] == data and never not in found
    assert kept not in found and await current_of(svc, kept) is not None  # assessed, still open


async def test_resync_from_the_snapshot_when_the_feed_was_pruned(svc, ctx, registry, consumer):
    ids = [new_id() for _ in range(7)]
    for hid, (view, missing) in zip(ids, synthetic_views(ctx, 7, seed=13), strict=True):
        registry.change(hid, view, missing, member_ages=[33, 6])
    registry.prune()  # the consumer, at 0, is now behind the retention
    assert await consumer.step() == 0  # 410: resynchronised from the snapshot instead
    assert await consumer.cursor() == registry.head
    for hid in ids:
        assert await current_of(svc, hid) is not None
    async with svc.db.sessionmaker() as s:
        assert {(await s.get(HouseholdView, hid)).member_ages for hid in ids} == {"[33,6]"}
    extra = new_id()
    (view, missing), = synthetic_views(ctx, 1, seed=14)
    registry.change(extra, view, missing)
    assert await drain(consumer) == 1
    assert await current_of(svc, extra) is not None


async def test_a_household_closed_while_scoring_was_behind_is_withdrawn_by_the_resync(svc, ctx, registry, consumer):
    """The registry's snapshot lists a closed household as closed: scoring, resynchronising after
    its cursor fell behind, drops its current assessment and announces the withdrawal once, as the
    household.changed it missed would have; an open one is kept."""
    hid, kept = new_id(), new_id()
    for h, (view, missing) in zip((hid, kept), synthetic_views(ctx, 2, seed=15), strict=True):
        registry.change(h, view, missing)
    await drain(consumer)
    assessed = await current_of(svc, hid)
    before = await head(svc)
    view, missing = registry.households[hid]["view"], registry.households[hid]["missing"]
    registry.change(hid, view, missing, change="closed")
    registry.prune()  # the closing is gone from the feed: only the snapshot tells
    assert await consumer.step() == 0
    assert await current_of(svc, hid) is None and await current_of(svc, kept) is not None
    async with svc.client("service") as c:
        events = (await c.get("/internal/feed", params={"after": before, "limit": 1000})).json()["events"]
    assert [(e["type"], e["data"]["household_id"], e["data"]["assessment_id"]) for e in events] == [
        ("assessment.withdrawn", hid, assessed.assessment_id)]
    await consumer.resync()  # again: nothing more
    async with svc.client("service") as c:
        assert len((await c.get("/internal/feed", params={"after": before, "limit": 1000})).json()["events"]) == 1


async def test_the_feed_returns_each_payload_as_it_was_written(svc, ctx, registry, consumer):
    """Events written one by one (the kit's publish) and by COPY (60 households, over the tests'
    copy threshold) come back from the feed as the JSON objects stored in the outbox; on PostgreSQL
    the outbox keeps that JSON as ``text`` (not checked by ``json`` input, nor re-encoded as
    ``jsonb``), and the feed parses it back into the object."""
    start = await head(svc)
    ids = [new_id() for _ in range(61)]
    views = synthetic_views(ctx, 61, seed=31)
    registry.change(ids[0], *views[0])
    await drain(consumer)
    for hid, (view, missing) in zip(ids[1:], views[1:], strict=True):
        registry.change(hid, view, missing)
    await drain(consumer)
    events = await our_events(svc, start)
    assert {e["data"]["household_id"] for e in events} == set(ids)
    async with svc.db.sessionmaker() as s:
        stored = dict((await s.execute(
            select(OutboxEvent.event_id, cast(OutboxEvent.payload, Text)).where(OutboxEvent.position > start)
        )).all())
        if svc.db.is_postgres:
            kind = (await s.execute(text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'outbox'::regclass AND attname = 'payload'"))).scalar_one()
            assert kind == "text"
    for e in events:
        assert e["data"] == json.loads(stored[e["id"]])


def test_a_feed_page_reads_each_household_change_in_one_pass():
    def event(position: int, data: dict) -> dict:
        return {"position": position, "id": new_id(), "type": "household.changed", "subject": "h",
                "occurred_at": "2026-11-28T08:00:00Z", "data": data}

    good = {"household_id": new_id(), "version": 2, "area_code": VILLAGES[0], "township_code": VILLAGES[0][:9] + "000",
            "district_code": VILLAGES[0][:6] + "000000", "view": {"members_total": 3}, "missing": []}
    body = {"events": [event(1, good), event(2, {"household_id": "x", "view": "not a view"})], "next_after": 2, "head": 2}
    page = HouseholdPage.model_validate_json(json.dumps(body))
    assert isinstance(page.events[0].data, HouseholdChanged) and page.events[0].data.version == 2
    assert page.events[1].data == {"household_id": "x", "view": "not a view"}  # left for parse_events to skip
    assert [c.household_id for c in parse_events(page.events)] == [good["household_id"]]


async def test_pages_read_ahead_in_a_worker_process_store_what_the_service_itself_would(svc, ctx, registry, consumer):
    """Behind a backlog, the page fetched ahead is parsed and its views prepared in a worker process
    (servicekit's PageReader running digest.read_page): what it stores is what the service makes
    of each household.changed by itself."""
    trigger = {"code": "job_lost", "member_ref": "m-2", "source": "hrss"}
    sent = {}
    for i, (view, missing) in enumerate(synthetic_views(ctx, 60, seed=33, unknown_rate=0.05)):
        if i % 7 == 3:  # a fact out of range, one absent, one null where it may be
            view = {k: v for k, v in {**view, "members_total": 999}.items() if k != "head_age"}
        if i == 30:
            registry.raw_event("household.changed", {"household_id": "x", "view": "not a view"})  # skipped
        hid = new_id()
        sent[hid] = registry.change(hid, view, missing, area=VILLAGES[i % len(VILLAGES)],
                                    triggers=[trigger] if i % 10 == 0 else [], member_ages=ages_of(i) if i % 2 else None)
    consumer.batch_size = 10
    await consumer.reader.started()
    try:
        assert await drain(consumer) == 61  # the malformed one taken off the feed too
        assert consumer.reader.read_there >= 5
    finally:
        consumer.close()
    async with svc.db.sessionmaker() as s:
        kept = {r.household_id: r for r in (await s.execute(
            select(HouseholdView).where(HouseholdView.household_id.in_(list(sent))))).scalars()}
    for hid, data in sent.items():
        expected, = digest(ctx.view, [HouseholdChanged.model_validate(data)])  # one household: row by row
        row = kept[hid]
        assert (row.input_hash, row.facts, row.features, row.member_ages, row.layout) == \
            (expected.input_hash, expected.facts, expected.features, expected.member_ages, expected.layout)
        assert canonical_json(row.view) == expected.view
        assert await current_of(svc, hid) is not None
