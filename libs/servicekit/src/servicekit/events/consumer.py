"""Consuming another service's feed: exactly-once effects with an at-least-once transport.

Each batch is applied in one transaction together with the cursor advance and the processed
event ids, so a crash anywhere either keeps the whole batch or none of it. Positions at or below
the cursor and event ids already applied are skipped. With several replicas, only the holder of
the lease consumes (a PostgreSQL advisory lock, or Redis); the others wait.

Behind a backlog the per-batch overhead is kept small: the cursor is remembered between batches
(the locked cursor row in ``apply`` stays the authority), the next page is fetched while the
current one is applied, the lease is checked every few seconds rather than every batch, and the
processed-id check and its insert are one statement. The collector is paused while a page is
parsed and while a batch is applied: a batch's objects are freed by reference counting when it
is done, and scanning them meanwhile cost a tenth of scoring's CPU catching up with a registry
(bench/scoring_events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from servicekit.collector import gc_paused
from servicekit.db import Database, dialect_insert, unit_of_work
from servicekit.events.outbox import Event, FeedPage
from servicekit.events.reader import PageReader
from servicekit.http import ServiceClient
from servicekit.tables import ConsumerCursor, ProcessedEvent

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, list[Event]], Awaitable[None]]
Resync = Callable[[], Awaitable[int]]


class Lease(Protocol):
    async def acquire(self) -> bool: ...
    async def still_held(self) -> bool: ...
    async def release(self) -> None: ...


class LocalLease:
    """One process, one consumer: the embedded default."""

    async def acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class PostgresLease:
    """A session-level advisory lock held on a dedicated connection."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = int.from_bytes(hashlib.sha256(f"lease:{db.schema}:{name}".encode()).digest()[:8], "big", signed=True)
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._conn is None:
            self._conn = await self.db.engine.connect()
        got = (await self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar_one()
        await self._conn.commit()
        if not got:
            await self._drop()
        return bool(got)

    async def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
            return True
        except Exception:  # the connection died, and the lock with it
            await self._drop()
            return False

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._conn.commit()
        await self._drop()

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


class RedisLease:
    """SET NX with a TTL, renewed while held; released only by its owner."""

    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    def __init__(self, redis: Any, name: str, ttl_ms: int = 15_000) -> None:
        self.redis = redis
        self.key = f"zhongfu:lease:{name}"
        self.token = f"{random.getrandbits(64):016x}"
        self.ttl_ms = ttl_ms

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def still_held(self) -> bool:
        return bool(await self.redis.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.eval(self._RELEASE, 1, self.key, self.token)


def make_lease(db: Database, name: str) -> Lease:
    return PostgresLease(db, name) if db.is_postgres else LocalLease()


_CURSORS = ConsumerCursor.__table__
_CURSOR = select(_CURSORS.c.position).where(_CURSORS.c.feed == bindparam("feed"))
_NEW_CURSOR = insert(_CURSORS).values(feed=bindparam("name"), position=0, updated_at=bindparam("at"))
_ADVANCE = (update(_CURSORS).where(_CURSORS.c.feed == bindparam("name"))
            .values(position=bindparam("to"), last_event_id=bindparam("last"), updated_at=bindparam("at")))
_LOCK_AND_CLAIM = text(
    "WITH cursor AS (SELECT position FROM consumer_cursors WHERE feed = :feed FOR UPDATE), "
    "claimed AS (INSERT INTO processed_events (feed, event_id, processed_at) "
    "SELECT :feed, e.id, :at FROM unnest(CAST(:ids AS varchar[]), CAST(:positions AS bigint[])) AS e(id, position) "
    "WHERE e.position > COALESCE((SELECT position FROM cursor), 0) "
    "ON CONFLICT DO NOTHING RETURNING event_id) "
    "SELECT (SELECT position FROM cursor), ARRAY(SELECT event_id FROM claimed)"
)

# Between two batches on SQLite: longer than the busy handler's first waits (1-10 ms).
SQLITE_WRITER_PAUSE = 0.02


class FeedGone(Exception):
    """The producer pruned past our cursor: resynchronise."""


class FeedConsumer:
    """Follows one producer's feed and applies its events with ``handler``."""

    def __init__(
        self,
        *,
        name: str,
        client: ServiceClient,
        db: Database,
        handler: Handler,
        resync: Resync | None = None,
        lease: Lease | None = None,
        batch_size: int = 200,
        wait_seconds: float = 20.0,
        feed_path: str = "/internal/feed",
        lease_check_seconds: float = 5.0,
        prefetch: bool = True,
        page_model: type[FeedPage] = FeedPage,
        reader: PageReader | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.db = db
        self.handler = handler
        self.resync = resync
        self.lease = lease or make_lease(db, name)
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.feed_path = feed_path
        # Losing the lease is noticed within this many seconds; exactly-once never depends on it
        # (``apply`` locks the cursor row), the lease only keeps replicas from contending.
        self.lease_check_seconds = lease_check_seconds
        self.prefetch = prefetch
        # A FeedPage subclass whose events type their ``data``: parsed in one pass from JSON.
        self.page_model = page_model
        # Reads the pages fetched ahead (behind a backlog) in a worker process (events/reader.py).
        self.reader = reader
        self._stopping = asyncio.Event()
        self._position: int | None = None  # the cursor as of our last commit; None: read it
        self._next: tuple[int, asyncio.Future[list[Event]]] | None = None  # (after, page) fetched ahead
        self._head = 0  # the producer's head as the last page said
        self.applied = 0

    def stop(self) -> None:
        """Finish the current batch, then stop."""
        self._stopping.set()

    async def cursor(self) -> int:
        async with self.db.sessionmaker() as session:
            row = await session.get(ConsumerCursor, self.name)
            return row.position if row else 0

    async def fetch(self, after: int, wait: float, *, ahead: bool = False) -> list[Event]:
        response = await self.client.get(
            self.feed_path,
            params={"after": after, "limit": self.batch_size, "wait": wait},
            timeout=httpx.Timeout(wait + 10.0, connect=2.0),
        )
        if response.status_code == 410:
            raise FeedGone()
        response.raise_for_status()
        if ahead and self.reader is not None:
            read = await self.reader.read(response.content, max(0, self._head - after))
            if read is not None:
                events, self._head = read
                return events
        with gc_paused():
            page = self.page_model.model_validate_json(response.content)
        self._head = page.head
        return page.events

    async def apply(self, events: list[Event]) -> int:
        """Apply one batch in one transaction; returns how many events took effect."""
        if not events:
            return 0
        self._position = None  # unknown until this transaction has committed
        with gc_paused():
            return await self._apply(events)

    async def _apply(self, events: list[Event]) -> int:
        async with unit_of_work(self.db) as session:
            # Statements built once, run on the session's connection: no ORM object for the
            # cursor row (loading and flushing it was a third of the kit's share of one event).
            connection = await session.connection()
            if self.db.is_postgres:  # the cursor locked and the events past it claimed: one round trip
                position, claimed = await self._lock_and_claim(connection, events)
            else:
                position = (await connection.execute(_CURSOR, {"feed": self.name})).scalar_one_or_none()
            fresh = [e for e in events if e.position > (position or 0)]
            if not self.db.is_postgres:
                claimed = await self._claim(session, fresh) if fresh else set()
            if position is None:
                await connection.execute(_NEW_CURSOR, {"name": self.name, "at": datetime.now(UTC)})
                position = 0
            todo: list[Event] = []
            if fresh:
                for e in fresh:  # an id twice in one page: its first delivery only
                    if e.id in claimed:
                        claimed.discard(e.id)
                        todo.append(e)
                if todo:
                    await self.handler(session, todo)
                position = fresh[-1].position
                await connection.execute(_ADVANCE, {"name": self.name, "to": position, "last": fresh[-1].id,
                                                    "at": datetime.now(UTC)})
        self._position = position
        self.applied += len(todo)
        return len(todo)

    async def _lock_and_claim(self, connection: AsyncConnection, events: list[Event]) -> tuple[int | None, set[str]]:
        """PostgreSQL: lock the cursor row and record the events past it as processed (the ids as
        one array: no statement of a thousand VALUES to build and plan). Returns the cursor's
        position (None: no row yet) and the ids not processed before; undone with the batch if
        the handler fails."""
        found = (await connection.execute(_LOCK_AND_CLAIM, {
            "feed": self.name, "ids": [e.id for e in events], "positions": [e.position for e in events],
            "at": datetime.now(UTC)})).one()
        return found[0], set(found[1])

    async def _claim(self, session: AsyncSession, events: list[Event]) -> set[str]:
        """SQLite: record the events as processed; returns the ids not processed before (one
        statement, undone with the batch if the handler fails)."""
        now = datetime.now(UTC)
        table = ProcessedEvent.__table__
        stmt = dialect_insert(session)(table).on_conflict_do_nothing().returning(table.c.event_id)
        rows = [{"feed": self.name, "event_id": e.id, "processed_at": now} for e in events]
        return set((await session.execute(stmt, rows)).scalars())

    async def step(self, wait: float = 0.0) -> int:
        """One fetch and apply; used by the run loop and by tests."""
        after = self._position if self._position is not None else await self.cursor()
        fetching = self._fetched_ahead(after) or asyncio.ensure_future(self.fetch(after, wait))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            # A stop interrupts the wait for events (nothing is applied yet), never an apply.
            await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not fetching.done():
            await _cancel(fetching)
            return 0
        try:
            events = fetching.result()
        except FeedGone:
            self._position = None
            await self._resync()
            return 0
        if self.prefetch and len(events) >= self.batch_size:
            # Behind a backlog: the next page travels while this one is applied.
            last = events[-1].position
            self._next = (last, asyncio.ensure_future(self.fetch(last, 0.0, ahead=True)))
        elif self.reader is not None:
            self.reader.close()  # caught up: the worker's memory is given back until the next backlog
        try:
            return await self.apply(events)
        except BaseException:
            await self._drop_fetched_ahead()
            raise

    def _fetched_ahead(self, after: int) -> asyncio.Future[list[Event]] | None:
        if self._next is None:
            return None
        ahead_of, page = self._next
        self._next = None
        if ahead_of == after:
            return page
        _discard(page)  # fetched from a position that is no longer ours (another replica moved on)
        return None

    async def _drop_fetched_ahead(self) -> None:
        if self._next is not None:
            await _cancel(self._next[1])
            self._next = None

    async def _resync(self) -> None:
        if self.resync is None:
            raise RuntimeError(f"feed {self.name} was pruned past our cursor and no resync is configured")
        log.warning("feed pruned past the cursor; resynchronising", extra={"feed": self.name})
        position = await self.resync()
        async with unit_of_work(self.db) as session:
            cursor = await session.get(ConsumerCursor, self.name)
            now = datetime.now(UTC)
            if cursor is None:
                session.add(ConsumerCursor(feed=self.name, position=position, updated_at=now, resynced_at=now))
            else:
                cursor.position, cursor.updated_at, cursor.resynced_at = position, now, now

    def close(self) -> None:
        """Stop the page reader's worker, if one runs (``run`` does it whenever it gives up the
        lease, and so when it ends; a caller of ``step`` calls it itself)."""
        if self.reader is not None:
            self.reader.close()

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                if not await self.lease.acquire():
                    await self._sleep(5.0)
                    continue
                self._position = None  # another replica may have consumed while we did not hold it
                try:
                    check_at = 0.0
                    while not self._stopping.is_set():
                        if time.monotonic() >= check_at:
                            if not await self.lease.still_held():
                                break
                            check_at = time.monotonic() + self.lease_check_seconds
                        applied = await self.step(wait=self.wait_seconds)
                        backoff = 0.5
                        if applied and not self.db.is_postgres:
                            # SQLite has one write lock: behind a backlog the next batch would
                            # take it again at once, and the API's writers, waiting in SQLite's
                            # busy handler, would starve until the backlog is gone.
                            await self._sleep(SQLITE_WRITER_PAUSE)
                finally:
                    await self._drop_fetched_ahead()
                    self.close()  # another replica consumes meanwhile: no worker kept for nothing
                    await self.lease.release()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Event contents stay out of the log; the type and position are enough to find it.
                log.error("feed consumer %s failed (%s); retrying in %.1fs", self.name, type(exc).__name__, backoff)
                self._position = None
                await self._sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 60.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def _cancel(future: asyncio.Future[Any]) -> None:
    future.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await future


def _discard(future: asyncio.Future[Any]) -> None:
    if future.done():
        if not future.cancelled():
            future.exception()  # retrieved, so it is not reported as never retrieved
    else:
        future.cancel()
