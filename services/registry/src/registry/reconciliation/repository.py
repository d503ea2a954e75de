"""Queries on the reconciliation queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.queries import lockable, oldest_first
from registry.reconciliation.tables import ReconciliationCase


async def get(session: AsyncSession, case_id: str, *, for_update: bool = False) -> ReconciliationCase | None:
    stmt = select(ReconciliationCase).where(ReconciliationCase.id == case_id)
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


async def search(session: AsyncSession, *, status: str | None, limit: int, after: list[Any] | None) -> list[ReconciliationCase]:
    stmt = select(ReconciliationCase)
    if status:
        stmt = stmt.where(ReconciliationCase.status == status)
    stmt = oldest_first(stmt, ReconciliationCase.created_at, ReconciliationCase.id, after, limit)
    return list((await session.execute(stmt)).scalars())
