"""The webhook delivery outbox: deliveries are written in the transaction of the change they
announce, one per matching active endpoint, and sent by the dispatcher after commit.

Payloads are thin -- the type, the time and ids -- so nothing personal travels to an endpoint;
the receiver reads the alert through the API with its own token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
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


async def enqueue(
    session: AsyncSession,
    *,
    event_type: str,
    area_code: str,
    dedupe_key: str,
    data: dict[str, str],
    now: datetime,
    alert_id: str | None = None,
) -> int:
    """Queue one delivery to every active endpoint whose jurisdiction covers ``area_code``."""
    rows = [
        {
            "id": str(uuid.uuid4()), "subscription_id": sub.id, "dedupe_key": dedupe_key,
            "event_type": event_type, "alert_id": alert_id,
            "payload": thin_payload(event_type, now, data), "status": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now,
        }
        for sub in await active_subscriptions(session)
        if area_code.startswith(sub.scope_prefix) and event_type in sub.event_types
    ]
    if rows:
        # The unique (endpoint, dedupe key) makes a replayed change enqueue nothing new.
        stmt = insert_for(session, WebhookDelivery).on_conflict_do_nothing()
        await session.execute(stmt, rows)
        if not session.info.get(_WAKE):
            session.info[_WAKE] = True
            after_commit(session, _wake)
    return len(rows)
