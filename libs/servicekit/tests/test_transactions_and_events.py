"""One transaction per request; events in the outbox exactly when the change commits."""

import asyncio

from sqlalchemy import func, select

from servicekit.events.feed import prune, read_page
from servicekit.tables import FeedSequence, OutboxEvent
from servicekit.testing import TOWNSHIP

AREA = "330106001001"


async def count_events(db) -> int:
    async with db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()


async def test_committed_change_has_its_event(kit):
    before = await count_events(kit.db)
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "hello"})
    assert r.status_code == 201
    assert await count_events(kit.db) == before + 1
    async with kit.db.sessionmaker() as s:
        last = (await s.execute(select(OutboxEvent).order_by(OutboxEvent.position.desc()).limit(1))).scalar_one()
    assert last.subject == r.json()["id"]
    assert last.type == "note.created"


async def test_rolled_back_change_has_no_event(kit):
    before = await count_events(kit.db)
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "x", "fail_after_publish": True})
    assert r.status_code == 409
    assert await count_events(kit.db) == before


async def test_positions_are_dense_and_follow_commits(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        results = await asyncio.gather(*[c.post("/api/v1/notes", json={"area_code": AREA, "text": f"n{i}"}) for i in range(20)])
    assert all(r.status_code == 201 for r in results)
    async with kit.db.sessionmaker() as s:
        positions = (await s.execute(select(OutboxEvent.position).order_by(OutboxEvent.position))).scalars().all()
        head = (await s.execute(select(FeedSequence.last_position))).scalar_one()
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    assert head == positions[-1]


async def test_feed_requires_service_token(kit):
    async with kit.client("city_admin") as c:
        assert (await c.get("/internal/feed")).status_code == 403
    async with kit.client() as c:
        assert (await c.get("/internal/feed")).status_code == 401


async def feed_start(db) -> int:
    """Where the feed begins now (other tests may have pruned it)."""
    async with db.sessionmaker() as s:
        return (await s.execute(select(FeedSequence.pruned_through))).scalar_one()


async def test_feed_pages_in_order(kit):
    # From just before this test's events: the shared feed may hold more than a page by now.
    async with kit.db.sessionmaker() as s:
        before = (await s.execute(select(FeedSequence.last_position))).scalar_one()
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        for i in range(3):
            await c.post("/api/v1/notes", json={"area_code": AREA, "text": f"p{i}"})
    async with kit.client("service") as c:
        after = max(before, await feed_start(kit.db))
        page = (await c.get("/internal/feed", params={"after": after, "limit": 1000})).json()
        positions = [e["position"] for e in page["events"]]
        assert positions == sorted(positions)
        assert page["head"] == positions[-1] == page["next_after"]
        second = (await c.get("/internal/feed", params={"after": positions[-2], "limit": 10})).json()
        assert [e["position"] for e in second["events"]] == [positions[-1]]


async def test_long_poll_wakes_on_commit(kit):
    async with kit.client("service") as svc, kit.client("town_worker", area=TOWNSHIP) as worker:
        head = (await svc.get("/internal/feed", params={"after": await feed_start(kit.db), "limit": 1})).json()["head"]

        async def write_later():
            await asyncio.sleep(0.3)
            await worker.post("/api/v1/notes", json={"area_code": AREA, "text": "wake"})

        loop = asyncio.get_running_loop()
        started = loop.time()
        writer = asyncio.create_task(write_later())
        page = (await svc.get("/internal/feed", params={"after": head, "wait": 10})).json()
        elapsed = loop.time() - started
        await writer
    assert [e["position"] for e in page["events"]] == [head + 1]
    assert elapsed < 5


async def test_long_poll_times_out_empty(kit):
    async with kit.client("service") as svc:
        head = (await svc.get("/internal/feed", params={"after": await feed_start(kit.db)})).json()["head"]
        page = (await svc.get("/internal/feed", params={"after": head, "wait": 0.5})).json()
    assert page["events"] == [] and page["next_after"] == head


async def test_pruned_feed_answers_410(kit):
    from datetime import timedelta

    async with kit.client("town_worker", area=TOWNSHIP) as c:
        await c.post("/api/v1/notes", json={"area_code": AREA, "text": "old"})
    removed = await prune(kit.db, timedelta(seconds=-1))  # everything is older than "the future"
    assert removed >= 1
    async with kit.client("service") as svc:
        r = await svc.get("/internal/feed", params={"after": 0})
        assert r.status_code == 410
        assert r.json()["pruned_through"] >= 1
        head = r.json()["pruned_through"]
        assert (await svc.get("/internal/feed", params={"after": head})).status_code == 200
    page = await read_page(kit.db, head, 10)
    assert page.events == []


async def test_readiness_knows_schema_behind_and_ahead(kit):
    import sqlalchemy as sa

    from servicekit.migrations import migration_state

    assert await migration_state(kit.db, kit.app.state.migrations_dir) == "ok"
    async with kit.db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'from_a_newer_release'"))
    try:
        assert await migration_state(kit.db, kit.app.state.migrations_dir) == "ahead"
        async with kit.client() as c:
            assert (await c.get("/readyz")).status_code == 200
        async with kit.db.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM alembic_version"))
        assert await migration_state(kit.db, kit.app.state.migrations_dir) == "behind"
        async with kit.client() as c:
            r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["migrations"].startswith("behind")
    finally:
        async with kit.db.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM alembic_version"))
            await conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('kitapp_0001')"))


async def test_reads_and_probes_do_not_queue_behind_a_writer(kit):
    """On SQLite every transaction takes the write lock up front (BEGIN IMMEDIATE); a reading
    connection begins deferred, so it answers while a writer holds the lock, and sees only what
    is committed. On PostgreSQL both simply work."""
    before = await count_events(kit.db)
    async with kit.db.sessionmaker() as writer:
        await writer.execute(OutboxEvent.__table__.update().where(OutboxEvent.position < 0).values(type="x"))
        # The writer now holds its transaction (and on SQLite the write lock) open.
        async with asyncio.timeout(5):  # busy_timeout is 30 s: a queued reader would not make it
            async with kit.db.reading() as conn:
                assert (await conn.execute(select(func.count()).select_from(OutboxEvent))).scalar_one() == before
            async with kit.client("town_worker", area=TOWNSHIP) as c:
                assert (await c.get("/readyz")).status_code == 200
        await writer.rollback()


def test_a_payload_kept_as_text_is_read_back_as_its_object():
    """A service may keep its outbox payloads as ``text`` (scoring does, on PostgreSQL): the feed
    gives readers the same object either way."""
    from servicekit.events.outbox import payload_of

    assert payload_of('{"a":[1,2],"b":"\\u5f20"}') == {"a": [1, 2], "b": "张"}
    stored = {"a": [1, 2]}
    assert payload_of(stored) is stored
