"""Every query on points accounts and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.points.tables import PointsAccount, PointsEntry
from matching.sql import for_update


async def get(session: AsyncSession, account_id: str, *, lock: bool = False) -> PointsAccount | None:
    stmt = select(PointsAccount).where(PointsAccount.id == account_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def by_holder(session: AsyncSession, digest: str, *, lock: bool = False) -> PointsAccount | None:
    stmt = select(PointsAccount).where(PointsAccount.holder_digest == digest)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def by_household(session: AsyncSession, household_id: str) -> PointsAccount | None:
    stmt = select(PointsAccount).where(PointsAccount.household_id == household_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(session: AsyncSession, scope: Any, after: str | None, limit: int) -> list[PointsAccount]:
    stmt = select(PointsAccount).where(scope).order_by(PointsAccount.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(PointsAccount.id > after)
    return list((await session.execute(stmt)).scalars())


async def active_in_scope_locked(session: AsyncSession, scope: Any) -> list[PointsAccount]:
    stmt = select(PointsAccount).where(scope, PointsAccount.status == "active").order_by(PointsAccount.id)
    return list((await session.execute(for_update(session, stmt))).scalars())


async def credited_for(session: AsyncSession, rule: str, period: str, account_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(account_ids), 5000):
        stmt = select(PointsEntry.account_id).where(
            PointsEntry.rule_code == rule, PointsEntry.period_key == period,
            PointsEntry.account_id.in_(account_ids[i:i + 5000]))
        found |= set((await session.execute(stmt)).scalars())
    return found


async def entries(session: AsyncSession, account_id: str, *, before_id: int | None = None,
                  since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
                  newest_first: bool = False) -> list[PointsEntry]:
    stmt = select(PointsEntry).where(PointsEntry.account_id == account_id)
    if before_id is not None:
        stmt = stmt.where(PointsEntry.id < before_id)
    if since is not None:
        stmt = stmt.where(PointsEntry.created_at >= since)
    if until is not None:
        stmt = stmt.where(PointsEntry.created_at < until)
    stmt = stmt.order_by(PointsEntry.id.desc() if newest_first else PointsEntry.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt)).scalars())


async def balance_before(session: AsyncSession, account_id: str, at: datetime) -> int:
    stmt = (select(PointsEntry.balance_after).where(PointsEntry.account_id == account_id, PointsEntry.created_at < at)
            .order_by(PointsEntry.id.desc()).limit(1))
    return int((await session.execute(stmt)).scalar_one_or_none() or 0)


async def ledger_sum(session: AsyncSession, account_id: str) -> int:
    stmt = select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(PointsEntry.account_id == account_id)
    return int((await session.execute(stmt)).scalar_one())
