"""Subscriptions: create (URL checked), change, rotate the secret, disable on 410, delete."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, jurisdiction_prefix
from servicekit.concurrency import check_version
from servicekit.crypto import FieldCipher
from servicekit.db import db_now
from servicekit.errors import FieldIssue, Forbidden, NotFound, Unprocessable

from alerts.subscription import repository
from alerts.subscription.addresses import AddressGuard, AddressRefused
from alerts.subscription.schemas import SecretRotation, SubscriptionCreate, SubscriptionUpdate
from alerts.subscription.secrets import new_secret, seal
from alerts.subscription.tables import Subscription, SubscriptionSecret

NOT_FOUND = "No subscription with that id is in your jurisdiction."


async def check_url(guard: AddressGuard, url: str) -> None:
    try:
        await guard.vet(url)
    except AddressRefused as refused:
        raise Unprocessable(
            refused.reason, errors=[FieldIssue(location="body.url", issue=refused.code, message=refused.reason)]
        ) from None


async def create(session: AsyncSession, caller: Caller, body: SubscriptionCreate, guard: AddressGuard, cipher: FieldCipher) -> Subscription:
    if not caller.area:
        raise Forbidden("Your token names no jurisdiction to subscribe for.")
    await check_url(guard, body.url)
    now = await db_now(session)
    sub = Subscription(
        id=str(uuid.uuid4()), area_code=caller.area, scope_prefix=jurisdiction_prefix(caller.area),
        url=body.url.strip(), description=body.description, event_types=list(dict.fromkeys(body.event_types)),
        status="active", created_by=caller.subject, created_at=now, updated_at=now, version=1,
    )
    session.add(sub)
    await session.flush()
    _add_secret(session, sub.id, cipher, now)
    await session.flush()
    return sub


def _add_secret(session: AsyncSession, sub_id: str, cipher: FieldCipher, now: datetime) -> None:
    secret_id = str(uuid.uuid4())
    session.add(SubscriptionSecret(
        id=secret_id, subscription_id=sub_id, secret_encrypted=seal(cipher, new_secret(), secret_id), created_at=now,
    ))


async def load_for_change(session: AsyncSession, caller: Caller, sub_id: str, expected: int) -> Subscription:
    sub = await repository.get_in_scope(session, caller, sub_id, for_update=True)
    if sub is None:
        raise NotFound(NOT_FOUND)
    check_version(expected, sub.version)
    return sub


async def update(session: AsyncSession, sub: Subscription, body: SubscriptionUpdate, guard: AddressGuard) -> Subscription:
    now = await db_now(session)
    if body.url is not None:
        await check_url(guard, body.url)
        sub.url = body.url.strip()
    if "description" in body.model_fields_set:
        sub.description = body.description
    if body.event_types is not None:
        sub.event_types = list(dict.fromkeys(body.event_types))
    if body.enabled is True and sub.status == "disabled":
        await check_url(guard, sub.url)
        sub.status, sub.disabled_reason, sub.disabled_at = "active", None, None
    elif body.enabled is False and sub.status == "active":
        sub.status, sub.disabled_reason, sub.disabled_at = "disabled", "by_owner", now
        await repository.cancel_pending(session, sub.id, "disabled_by_owner")
    sub.updated_at = now
    sub.version += 1
    await session.flush()
    return sub


async def rotate(session: AsyncSession, sub: Subscription, body: SecretRotation, cipher: FieldCipher) -> Subscription:
    """A new secret signs from now on; the old ones keep signing until the overlap ends."""
    now = await db_now(session)
    await repository.retire_secrets(session, sub.id, now + timedelta(hours=body.overlap_hours))
    _add_secret(session, sub.id, cipher, now + timedelta(microseconds=1))
    sub.updated_at = now
    sub.version += 1
    await session.flush()
    return sub


async def delete(session: AsyncSession, sub: Subscription) -> None:
    now = await db_now(session)
    sub.status, sub.disabled_reason, sub.disabled_at, sub.updated_at = "deleted", "deleted", now, now
    sub.version += 1
    await repository.cancel_pending(session, sub.id, "subscription_deleted")
    await session.flush()
