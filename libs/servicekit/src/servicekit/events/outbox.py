"""The outbox: events written in the transaction of the change, numbered in commit order.

``publish`` only remembers the event on the session. Right before the commit, the sequencer
takes the lock of the single ``feed_sequence`` row, hands out the next positions and inserts the
rows; the lock is held only for that insert and the commit, so positions follow commit order and
a reader paging by position never skips a row that commits late. A rolled-back transaction
never reaches the sequencer, so it never has events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from pydantic import BaseModel, Field
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import after_commit, register_before_commit
from servicekit.tables import FeedSequence, OutboxEvent

PENDING = "outbox_pending"


class Event(BaseModel):
    """An event as it travels on a feed."""

    position: int = Field(description="Place in the producer's feed, in commit order")
    id: str = Field(description="Unique event id; consumers apply each id once")
    type: str = Field(examples=["household.changed"])
    subject: str = Field(description="The aggregate the event is about (an opaque id)")
    occurred_at: datetime
    traceparent: str | None = None
    data: dict[str, Any]


class FeedPage(BaseModel):
    events: list[Event]
    next_after: int = Field(description="Pass as `after` to continue")
    head: int = Field(description="Newest position committed when this page was read")


def publish(session: AsyncSession, type: str, subject: str, data: dict[str, Any]) -> str:
    """Queue an event to be written with this transaction; returns its id."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # carry the trace across the asynchronous hop
    event_id = str(uuid.uuid4())
    session.info.setdefault(PENDING, []).append(
        {
            "event_id": event_id,
            "type": type,
            "subject": subject,
            "payload": data,
            "traceparent": carrier.get("traceparent"),
            "created_at": datetime.now(UTC),
        }
    )
    return event_id


_listeners: list[Callable[[int], Any]] = []


def on_committed_events(listener: Callable[[int], Any]) -> None:
    """Called with the new head position after a commit that carried events (wakes feed waiters)."""
    if listener not in _listeners:
        _listeners.append(listener)


async def _sequence(session: AsyncSession) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    n = len(pending)
    result = await session.execute(
        update(FeedSequence)
        .where(FeedSequence.id == 1)
        .values(last_position=FeedSequence.last_position + n)
        .returning(FeedSequence.last_position)
    )
    last = result.scalar_one()
    first = last - n + 1
    rows = [dict(row, position=first + i) for i, row in enumerate(pending)]
    await session.execute(insert(OutboxEvent), rows)

    def notify() -> None:
        for listener in _listeners:
            listener(last)

    after_commit(session, notify)


def install_sequencer() -> None:
    register_before_commit(_sequence)


install_sequencer()


def payload_of(stored: Any) -> dict[str, Any]:
    """A payload as read back: an object from a ``json``/``jsonb`` column; the same JSON as text
    where a service keeps its outbox payloads as ``text`` (scoring: PostgreSQL then takes them
    in without parsing every one). Payloads are always objects, so a string is that text."""
    return json.loads(stored) if isinstance(stored, str) else stored


def event_from_row(row: OutboxEvent) -> Event:
    return Event(
        position=row.position,
        id=row.event_id,
        type=row.type,
        subject=row.subject,
        occurred_at=row.created_at,
        traceparent=row.traceparent,
        data=payload_of(row.payload),
    )
