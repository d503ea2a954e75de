"""The webhook delivery outbox: deliveries are written in the transaction of the change they
announce, one per matching active endpoint, and sent by the dispatcher after commit.

Payloads are thin -- the type, the time and ids -- so nothing personal travels to an endpoint;
the receiver reads the alert through the API with its own token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import after_commit

from alerts.storage import insert_for
from alerts.subscription import repository
from alerts.subscription.tables import Subscription, WebhookDelivery

WEBHOOK_EVENT_TYPES = (
    "alert.raised", "alert.upgraded", "alert.deadline_warning", "alert.overdue", "alert.disposed",
)
_CACHE = "alerts.active_subscriptions"
_WAKE = "alerts.webhooks_enqueued"
_listeners: list[Callable[[], None]] = []


def on_enqueued(listener: Callable[[], None]) -> None:
    """Called after a commit that queued deliveries (wakes the dispatcher at once)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _wake() -> None:
    for listener in _listeners:
        listener()


async def active_subscriptions(session: AsyncSession) -> Sequence[Subscription]:
    """The active endpoints, read once per transaction (a batch may announce many alerts)."""
    cached = session.info.get(_CACHE)
    if cached is None:
        cached = await repository.active(session)
        session.info[_CACHE] = cached
    return cached


def thin_payload(event_type: str, at: datetime, data: dict[str, str]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso_utc(at), "data": data}


def iso_utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Notice:
    """One change to announce: to every endpoint whose jurisdiction covers ``area_code``."""

    event_type: str
    area_code: str
    dedupe_key: str
    data: dict[str, str]
    alert_id: str | None = None


async def enqueue(session: AsyncSession, notices: Sequence[Notice], now: datetime) -> int:
    """Queue each notice to every active endpoint that wants it, in one insert."""
    subscriptions = await active_subscriptions(session) if notices else ()
    rows = [
        {
            "id": str(uuid.uuid4()), "subscription_id": sub.id, "dedupe_key": n.dedupe_key,
            "event_type": n.event_type, "alert_id": n.alert_id,
            "payload": thin_payload(n.event_type, now, n.data), "status": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now,
        }
        for n in notices
        for sub in subscriptions
        if n.area_code.startswith(sub.scope_prefix) and n.event_type in sub.event_types
    ]
    if rows:
        # The unique (endpoint, dedupe key) makes a replayed change enqueue nothing new.
        stmt = insert_for(session, WebhookDelivery).on_conflict_do_nothing()
        await session.execute(stmt, rows)
        if not session.info.get(_WAKE):
            session.info[_WAKE] = True
            after_commit(session, _wake)
    return len(rows)
