"""A consumer applies each event once, with its cursor in the same transaction as the effect."""

import contextvars
import gc
import os
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, update

from kitapp import pages
from kitapp.app import MIGRATIONS, KitSettings, Note
from servicekit.db import Database
from servicekit.events import Event, FeedConsumer, PageReader, PostgresLease
from servicekit.events.consumer import LocalLease, make_lease
from servicekit.events.feed import current_head
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


def make_consumer(kit, db, handler, name=None, **options):
    name = name or f"feed-{uuid.uuid4().hex[:6]}"
    client = ServiceClient(
        "http://producer", token=kit.identity.token_source, transport=httpx.ASGITransport(app=kit.app)
    )
    return FeedConsumer(name=name, client=client, db=db, handler=handler, **{"batch_size": 50, **options})


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


async def test_the_collector_rests_while_a_batch_is_applied_and_works_again_after(kit, consumer_db):
    enabled: list[bool] = []

    async def noting(session, events):
        enabled.append(gc.isenabled())
        await copy_notes(session, events)

    async def failing(session, events):
        enabled.append(gc.isenabled())
        raise RuntimeError("crash in the handler")

    await produce(kit, 2)
    assert gc.isenabled()
    assert await drain(make_consumer(kit, consumer_db, noting)) >= 2
    assert enabled and not any(enabled) and gc.isenabled()
    with pytest.raises(RuntimeError):
        await make_consumer(kit, consumer_db, failing).step()
    assert enabled[-1] is False and gc.isenabled()


async def test_an_event_delivered_twice_in_one_batch_is_applied_once(kit, consumer_db):
    now = datetime.now(UTC)
    twice, once = str(uuid.uuid4()), str(uuid.uuid4())
    events = [Event(position=p, id=i, type="note.created", subject="s", occurred_at=now, data={"area_code": AREA})
              for p, i in ((1, twice), (2, once), (3, twice))]
    handled: list[str] = []

    async def handler(session, todo):
        handled.extend(e.id for e in todo)
        await copy_notes(session, todo)

    before = await copies(consumer_db)
    assert await make_consumer(kit, consumer_db, handler).apply(events) == 2
    assert handled == [twice, once] and await copies(consumer_db) == before + 2


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


async def test_the_lease_is_exclusive_on_postgres_and_local_on_sqlite(consumer_db):
    if not consumer_db.is_postgres:
        # The embedded default runs one process: its lease is always its own.
        lease = make_lease(consumer_db, "lease-test")
        assert isinstance(lease, LocalLease)
        assert await lease.acquire() and await lease.still_held()
        return
    first, second = PostgresLease(consumer_db, "lease-test"), PostgresLease(consumer_db, "lease-test")
    assert await first.acquire()
    assert not await second.acquire()
    assert await first.still_held()
    await first.release()
    assert await second.acquire()
    await second.release()


async def at_head(kit, consumer_db, name):
    """Bring the cursor of ``name`` to the feed's head, applying nothing (earlier tests may have
    pruned the feed: then through a resync)."""
    async def nothing(session, events):
        return None

    async def resync():
        return await current_head(kit.db)

    skipper = make_consumer(kit, consumer_db, nothing, name=name)
    skipper.resync = resync
    await drain(skipper)


async def test_behind_a_backlog_the_next_page_is_fetched_while_one_is_applied(kit, consumer_db):
    name = f"ahead-{uuid.uuid4().hex[:6]}"
    await at_head(kit, consumer_db, name)
    await produce(kit, 120)
    consumer = make_consumer(kit, consumer_db, copy_notes, name=name)
    fetched: list[int] = []
    fetch = consumer.fetch

    async def recording_fetch(after, wait, **kw):
        fetched.append(after)
        return await fetch(after, wait, **kw)

    consumer.fetch = recording_fetch
    assert await consumer.step() == 50
    # the second page was asked for before the first was applied, from where the first ends
    assert len(fetched) == 2 and consumer._next is not None
    applied = 50 + await drain(consumer)
    head = await current_head(kit.db)
    assert await copies(consumer_db) == applied and await consumer.cursor() == head
    assert fetched == sorted(set(fetched))  # no page fetched twice


async def test_a_failed_batch_drops_the_page_fetched_ahead_and_loses_nothing(kit, consumer_db):
    name = f"ahead-{uuid.uuid4().hex[:6]}"
    await at_head(kit, consumer_db, name)
    await produce(kit, 120)
    consumer = make_consumer(kit, consumer_db, copy_notes, name=name)
    assert await consumer.step() == 50
    healthy = consumer.handler

    async def crash(session, events):
        await healthy(session, events)
        raise RuntimeError("crash in the second batch")

    consumer.handler = crash
    with pytest.raises(RuntimeError):
        await consumer.step()
    assert consumer._next is None and consumer._position is None
    consumer.handler = healthy
    assert await drain(consumer) == 70
    assert await copies(consumer_db) == 120


async def test_a_replica_that_fell_behind_applies_nothing_twice(kit, consumer_db):
    name = f"replicas-{uuid.uuid4().hex[:6]}"
    await at_head(kit, consumer_db, name)
    await produce(kit, 120)
    first = make_consumer(kit, consumer_db, copy_notes, name=name)
    assert await first.step() == 50  # and holds the next page, fetched ahead
    second = make_consumer(kit, consumer_db, copy_notes, name=name)
    assert await drain(second) == 70  # took over meanwhile
    assert await drain(first) == 0  # its page ahead and its remembered cursor are stale: skipped
    assert await copies(consumer_db) == 120
    assert await first.cursor() == await second.cursor()


class CountingLease:
    def __init__(self) -> None:
        self.checks = 0

    async def acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        self.checks += 1
        return True

    async def release(self) -> None:
        return None


@pytest.mark.parametrize("every, at_most", [(3600.0, 1), (0.0, None)])
async def test_the_lease_is_checked_every_few_seconds_not_every_batch(kit, consumer_db, every, at_most):
    import asyncio

    name = f"lease-{uuid.uuid4().hex[:6]}"
    await at_head(kit, consumer_db, name)
    await produce(kit, 160)
    lease = CountingLease()
    consumer = make_consumer(kit, consumer_db, copy_notes, name=name)
    consumer.lease, consumer.lease_check_seconds, consumer.wait_seconds = lease, every, 0.05
    running = asyncio.create_task(consumer.run())
    head = await current_head(kit.db)
    for _ in range(200):
        if consumer._position == head:
            break
        await asyncio.sleep(0.05)
    consumer.stop()
    await running
    assert consumer._position == head and consumer.applied == 160
    if at_most is None:
        assert lease.checks >= 4  # every step: at least one per page of 50
    else:
        assert lease.checks == at_most


# ---- pages fetched ahead, read in a worker process (events/reader.py) -------------------------

async def reading_consumer(kit, consumer_db, read, n=60, ready=True, **options):
    """A consumer behind a backlog of ``n`` events, batches of 10, whose reader's worker is ready."""
    name = f"reader-{uuid.uuid4().hex[:6]}"
    await at_head(kit, consumer_db, name)
    await produce(kit, n)
    readers: list[int | None] = []

    async def noting_reader(session, events):
        readers.extend(e.data.get("read_by") for e in events)
        await copy_notes(session, events)

    reader = PageReader(read, **options)
    if ready:
        await reader.started()
    return make_consumer(kit, consumer_db, noting_reader, name=name, batch_size=10, reader=reader), readers


async def test_pages_fetched_ahead_are_read_in_a_worker_process_and_each_event_applied_once(kit, consumer_db):
    consumer, readers = await reading_consumer(kit, consumer_db, pages.read)
    worker = consumer.reader.pids()
    try:
        assert await drain(consumer) == 60
        assert not consumer.reader.running  # stopped once caught up
    finally:
        consumer.close()
    assert await copies(consumer_db) == 60 and await consumer.cursor() == await current_head(kit.db)
    # the first page was fetched when it was needed and read here; the next ones ahead, by the worker
    assert readers[:10] == [None] * 10
    assert set(readers[10:]) == set(worker) and len(worker) == 1 and worker[0] != os.getpid()
    # five pages ahead, and the empty one after the last full page
    assert consumer.reader.read_there == 6


async def test_a_worker_that_dies_costs_its_speed_and_nothing_else(kit, consumer_db, caplog):
    consumer, readers = await reading_consumer(kit, consumer_db, pages.die)
    assert await drain(consumer) == 60
    assert await copies(consumer_db) == 60 and readers == [None] * 60
    assert consumer.reader.read_there == 0 and consumer.reader.read_here >= 1
    # not started again at once: a page that kills it would cost a process start every page
    assert [r.getMessage()[:41] for r in caplog.records if r.levelname == "WARNING" and r.name == "servicekit.events.reader"] == \
        ["page reader worker stopped (BrokenProcess"]


async def test_a_page_the_worker_cannot_read_is_read_by_the_consumer(kit, consumer_db):
    consumer, readers = await reading_consumer(kit, consumer_db, pages.refuse)
    refused = 0
    read = consumer.reader.read

    async def counting(content, backlog):
        nonlocal refused
        events = await read(content, backlog)
        refused += consumer.reader.running and events is None  # the worker said no, and lives on
        return events

    consumer.reader.read = counting
    assert await drain(consumer) == 60
    assert await copies(consumer_db) == 60 and readers == [None] * 60
    assert consumer.reader.read_there == 0 and consumer.reader.read_here == 6 and refused == 6


async def test_a_worker_starts_only_for_a_backlog_worth_its_start(kit, consumer_db, caplog):
    """It takes seconds to start: behind fewer than ``min_backlog`` events the pages are read here."""
    consumer, readers = await reading_consumer(kit, consumer_db, pages.read, n=40, ready=False, min_backlog=31)
    try:
        assert await drain(consumer) == 40
    finally:
        consumer.close()
    # after the first page 30 events were left (fewer than 31): no worker, every page read here
    assert "page reader worker starting" not in caplog.text
    assert readers == [None] * 40 and consumer.reader.read_here == 4 and await copies(consumer_db) == 40
    # behind 31 or more, it starts
    consumer, readers = await reading_consumer(kit, consumer_db, pages.read, n=41, ready=False, min_backlog=31)
    try:
        assert await drain(consumer) == 41
    finally:
        consumer.close()
    assert "page reader worker starting" in caplog.text


async def test_a_machine_where_no_worker_process_can_be_made_reads_every_page_itself(kit, consumer_db, caplog,
                                                                                    monkeypatch):
    from servicekit.events import reader as reader_module

    def no_processes(*args, **kwargs):
        raise OSError("no shared memory for the queues")

    monkeypatch.setattr(reader_module, "ProcessPoolExecutor", no_processes)
    consumer, readers = await reading_consumer(kit, consumer_db, pages.read, ready=False)
    assert await drain(consumer) == 60
    assert readers == [None] * 60 and await copies(consumer_db) == 60
    assert not consumer.reader.running and "page reader worker stopped (OSError)" in caplog.text
