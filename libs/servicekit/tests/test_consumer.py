"""A consumer applies each event once, with its cursor in the same transaction as the effect."""

import contextvars
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from kitapp.app import MIGRATIONS, KitSettings, Note
from servicekit.db import Database
from servicekit.events import FeedConsumer, PostgresLease
from servicekit.http import ServiceClient
from servicekit.tables import ConsumerCursor
from servicekit.testing import TOWNSHIP, migrated_database, settings_for_tests

AREA = "330106001001"


@pytest.fixture(scope="module")
async def consumer_db():
    async with migrated_database(settings_for_tests(KitSettings), MIGRATIONS) as settings:
        db = Database.from_settings(settings)
        yield db
        await db.dispose()


def make_consumer(kit, db, handler, name=None):
    name = name or f"feed-{uuid.uuid4().hex[:6]}"
    client = ServiceClient(
        "http://producer", token=kit.identity.token_source, transport=httpx.ASGITransport(app=kit.app)
    )
    return FeedConsumer(name=name, client=client, db=db, handler=handler, batch_size=50)


async def copy_notes(session, events):
    # One copy per (consumer, event): the consumer name travels in the session for the test.
    for e in events:
        session.add(Note(id=str(uuid.uuid4()), area_code=e.data["area_code"], text=f"{COPY_TAG.get()}:{e.id}", version=1))


COPY_TAG = contextvars.ContextVar("copy_tag", default="")


async def copies(db) -> int:
    async with db.sessionmaker() as s:
        return (
            await s.execute(select(func.count()).select_from(Note).where(Note.text.startswith(COPY_TAG.get() + ":")))
        ).scalar_one()


async def produce(kit, n):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        for i in range(n):
            assert (await c.post("/api/v1/notes", json={"area_code": AREA, "text": f"c{i}"})).status_code == 201


async def drain(consumer):
    total = 0
    while (n := await consumer.step()) > 0:
        total += n
    return total


@pytest.fixture(autouse=True)
def copy_tag():
    token = COPY_TAG.set(uuid.uuid4().hex[:8])
    yield
    COPY_TAG.reset(token)


async def test_each_event_applied_exactly_once(kit, consumer_db):
    await produce(kit, 5)
    before = await copies(consumer_db)
    consumer = make_consumer(kit, consumer_db, copy_notes)
    applied = await drain(consumer)
    assert applied >= 5
    assert await copies(consumer_db) == before + applied
    assert await consumer.step() == 0
    async with kit.client("service") as c:
        head = (await c.get("/internal/feed")).json()["head"]
    assert await consumer.cursor() == head


async def test_failure_applies_nothing_and_keeps_cursor(kit, consumer_db):
    name = f"fail-{uuid.uuid4().hex[:6]}"
    good = make_consumer(kit, consumer_db, copy_notes, name=name)
    await drain(good)
    await produce(kit, 3)
    calls = 0

    async def half_then_crash(session, events):
        nonlocal calls
        calls += 1
        await copy_notes(session, events[:1])
        raise RuntimeError("crash between two steps")

    before_cursor = await good.cursor()
    before = await copies(consumer_db)
    crashing = make_consumer(kit, consumer_db, half_then_crash, name=name)
    with pytest.raises(RuntimeError):
        await crashing.step()
    assert await copies(consumer_db) == before
    assert await crashing.cursor() == before_cursor
    # restarted healthy, it applies the batch exactly once
    assert await drain(make_consumer(kit, consumer_db, copy_notes, name=name)) == 3
    assert await copies(consumer_db) == before + 3


async def test_rewound_cursor_does_not_reapply(kit, consumer_db):
    name = f"rewind-{uuid.uuid4().hex[:6]}"
    consumer = make_consumer(kit, consumer_db, copy_notes, name=name)
    await produce(kit, 2)
    await drain(consumer)
    before = await copies(consumer_db)
    async with consumer_db.sessionmaker() as s:
        await s.execute(update(ConsumerCursor).where(ConsumerCursor.feed == name).values(position=0))
        await s.commit()
    assert await drain(consumer) == 0  # event ids already applied are skipped
    assert await copies(consumer_db) == before


async def test_resync_when_feed_pruned(kit, consumer_db):
    from datetime import timedelta

    from servicekit.events.feed import current_head, prune

    await produce(kit, 1)
    await prune(kit.db, timedelta(seconds=-1))
    resynced = []

    async def resync():
        head = await current_head(kit.db)
        resynced.append(head)
        return head

    consumer = make_consumer(kit, consumer_db, copy_notes)
    consumer.resync = resync
    assert await consumer.step() == 0
    assert resynced and await consumer.cursor() == resynced[0]


async def test_postgres_lease_is_exclusive(consumer_db):
    if not consumer_db.is_postgres:
        pytest.skip("advisory locks exist only on PostgreSQL; the embedded default runs one consumer")
    first, second = PostgresLease(consumer_db, "lease-test"), PostgresLease(consumer_db, "lease-test")
    assert await first.acquire()
    assert not await second.acquire()
    assert await first.still_held()
    await first.release()
    assert await second.acquire()
    await second.release()
