"""The feed: a service's events served in order over REST, with long-polling.

``GET /internal/feed?after=P&limit=N&wait=S`` returns the events after position P. With nothing
new it waits up to S seconds: woken at once by a local commit, by a Redis message from another
replica when Redis is configured, and otherwise by a short poll -- Redis only shortens the wait,
nothing depends on it. Events older than the retention are pruned; a reader behind the pruning
point gets 410 and resynchronises from the service's snapshot endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json
from sqlalchemy import delete, func, select

from servicekit.auth import ServiceCaller
from servicekit.db import Database, unit_of_work
from servicekit.errors import Forbidden, Gone, Unauthorized, problem_responses
from servicekit.events.outbox import FeedPage, on_committed_events, payload_of
from servicekit.tables import FeedSequence, OutboxEvent, ProcessedEvent

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 1.0
MAX_WAIT_SECONDS = 30.0


class FeedNotifier:
    """Wakes long-poll waiters when events commit, here or (through Redis) on another replica."""

    def __init__(self, channel: str, redis_url: str | None = None) -> None:
        self.channel = channel
        self.redis_url = redis_url
        self._cond = asyncio.Condition()
        self._generation = 0
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        on_committed_events(self.local_commit)

    def local_commit(self, head: int) -> None:
        self._wake()
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._publish(head))
            task.add_done_callback(lambda t: t.exception())

    async def _publish(self, head: int) -> None:
        try:
            await self._redis.publish(self.channel, str(head))
        except Exception:  # losing a wake-up only lengthens a wait to the next poll
            log.warning("could not publish a feed wake-up to Redis")

    def _wake(self) -> None:
        self._generation += 1

        async def notify() -> None:
            async with self._cond:
                self._cond.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(notify())

    async def wait(self, timeout: float) -> None:
        start = self._generation
        with contextlib.suppress(TimeoutError):
            async with self._cond:
                await asyncio.wait_for(self._cond.wait_for(lambda: self._generation != start), timeout)

    async def start(self) -> None:
        if not self.redis_url:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(self.redis_url)
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("feed wake-up subscription lost; polling until it is back")
                await asyncio.sleep(2.0)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()


_EVENT_COLUMNS = (
    OutboxEvent.position, OutboxEvent.event_id, OutboxEvent.type, OutboxEvent.subject,
    OutboxEvent.created_at, OutboxEvent.traceparent, OutboxEvent.payload,
)


async def read_page_raw(db: Database, after: int, limit: int) -> dict[str, Any]:
    """A page as plain data: catch-up reads are hot, so no ORM objects and no re-validation."""
    async with db.sessionmaker() as session:
        seq = (await session.execute(select(FeedSequence).where(FeedSequence.id == 1))).scalar_one()
        if after < seq.pruned_through:
            raise Gone(
                "Events after that position have been pruned; resynchronise from the snapshot "
                "endpoint and continue from the position it gives.",
                pruned_through=seq.pruned_through,
            )
        rows = (
            await session.execute(
                select(*_EVENT_COLUMNS).where(OutboxEvent.position > after).order_by(OutboxEvent.position).limit(limit)
            )
        ).all()
    events = [
        {"position": r[0], "id": r[1], "type": r[2], "subject": r[3], "occurred_at": _aware(r[4]),
         "traceparent": r[5], "data": payload_of(r[6])}
        for r in rows
    ]
    return {"events": events, "next_after": events[-1]["position"] if events else after, "head": seq.last_position}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time on a feed is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def read_page(db: Database, after: int, limit: int) -> FeedPage:
    return FeedPage.model_validate(await read_page_raw(db, after, limit))


async def current_head(db: Database) -> int:
    async with db.sessionmaker() as session:
        return (await session.execute(select(FeedSequence.last_position).where(FeedSequence.id == 1))).scalar_one()


def feed_router() -> APIRouter:
    router = APIRouter(prefix="/internal", tags=["internal"])

    @router.get(
        "/feed",
        operation_id="feed:read",
        summary="Read this service's events in commit order (service tokens only)",
        response_model=FeedPage,
        responses=problem_responses(Unauthorized, Forbidden, Gone),
    )
    async def read_feed(
        request: Request,
        _caller: ServiceCaller,
        after: Annotated[int, Query(ge=0, description="Return events after this position")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll seconds")] = 0,
    ) -> Response:
        db: Database = request.app.state.db
        notifier: FeedNotifier = request.app.state.feed_notifier
        deadline = time.monotonic() + wait
        while True:
            page = await read_page_raw(db, after, limit)
            remaining = deadline - time.monotonic()
            if page["events"] or remaining <= 0 or getattr(request.app.state, "shutting_down", False):
                return Response(to_json(page), media_type="application/json")
            await notifier.wait(min(remaining, POLL_INTERVAL_SECONDS))

    return router


async def prune(db: Database, retention: timedelta, *, batch: int = 10_000) -> int:
    """Delete events older than the retention and remember where the feed now starts."""
    cutoff = datetime.now(UTC) - retention
    removed = 0
    async with unit_of_work(db) as session:
        newest_old = (
            await session.execute(select(func.max(OutboxEvent.position)).where(OutboxEvent.created_at < cutoff))
        ).scalar_one()
        if newest_old is None:
            return 0
        result = await session.execute(delete(OutboxEvent).where(OutboxEvent.position <= newest_old))
        removed = result.rowcount or 0
        seq = (await session.execute(select(FeedSequence).where(FeedSequence.id == 1).with_for_update())).scalar_one()
        seq.pruned_through = max(seq.pruned_through, newest_old)
        await session.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff))
    return removed
