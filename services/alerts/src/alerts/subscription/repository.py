"""Every query on subscriptions, their secrets and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.pagination import PageParams

from alerts.storage import is_postgres
from alerts.subscription.tables import Subscription, SubscriptionSecret, WebhookDelivery


async def active(session: AsyncSession) -> Sequence[Subscription]:
    return (await session.execute(select(Subscription).where(Subscription.status == "active"))).scalars().all()


async def get_in_scope(session: AsyncSession, caller: Caller, sub_id: str, *, for_update: bool = False) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.id == sub_id, Subscription.status != "deleted", caller.scope(Subscription.area_code))
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, sub_id: str) -> Subscription | None:
    return await session.get(Subscription, sub_id)


async def page(session: AsyncSession, caller: Caller, paging: PageParams) -> Sequence[Subscription]:
    stmt = select(Subscription).where(Subscription.status != "deleted", caller.scope(Subscription.area_code))
    if paging.after:
        stmt = stmt.where(Subscription.id > str(paging.after[0]))
    return (await session.execute(stmt.order_by(Subscription.id).limit(paging.limit + 1))).scalars().all()


async def secrets(session: AsyncSession, sub_id: str, now: datetime) -> Sequence[SubscriptionSecret]:
    """The secrets that sign now: the current one and any still within their overlap."""
    stmt = (
        select(SubscriptionSecret)
        .where(SubscriptionSecret.subscription_id == sub_id,
               or_(SubscriptionSecret.expires_at.is_(None), SubscriptionSecret.expires_at > now))
        .order_by(SubscriptionSecret.created_at.desc())
    )
    return (await session.execute(stmt)).scalars().all()


async def retire_secrets(session: AsyncSession, sub_id: str, expires_at: datetime) -> None:
    await session.execute(
        update(SubscriptionSecret)
        .where(SubscriptionSecret.subscription_id == sub_id,
               or_(SubscriptionSecret.expires_at.is_(None), SubscriptionSecret.expires_at > expires_at))
        .values(expires_at=expires_at)
    )


async def cancel_pending(session: AsyncSession, sub_id: str, reason: str) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub_id, WebhookDelivery.status == "pending")
        .values(status="cancelled", last_error=reason)
    )


async def endpoints_with_due(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    stmt = (
        select(WebhookDelivery.subscription_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .group_by(WebhookDelivery.subscription_id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def due(session: AsyncSession, sub_id: str, now: datetime, limit: int) -> Sequence[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub_id, WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def record_attempts(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """One attempt more on each delivery still pending; one statement per shape of outcome
    (delivered, to retry, failed), each executed for all its rows at once."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for o in outcomes:
        shapes.setdefault(tuple(sorted(k for k in o if k != "id")), []).append(o)
    table = WebhookDelivery.__table__
    for keys, rows in shapes.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == "pending")
            .values(attempts=table.c.attempts + 1, **{k: bindparam(f"b_{k}") for k in keys})
        )
        await session.execute(stmt, [{"b_id": o["id"], **{f"b_{k}": o[k] for k in keys}} for o in rows])


async def deliveries_page(session: AsyncSession, sub_id: str, paging: PageParams) -> Sequence[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
    if paging.after:
        created, last_id = paging.after
        created_at = datetime.fromisoformat(str(created))
        stmt = stmt.where(or_(WebhookDelivery.created_at < created_at,
                              and_(WebhookDelivery.created_at == created_at, WebhookDelivery.id < str(last_id))))
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(paging.limit + 1)
    return (await session.execute(stmt)).scalars().all()
