"""Queries on the reconciliation queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.households.repository import _lockable
from registry.reconciliation.tables import ReconciliationCase


async def get(session: AsyncSession, case_id: str, *, for_update: bool = False) -> ReconciliationCase | None:
    stmt = select(ReconciliationCase).where(ReconciliationCase.id == case_id)
    return (await session.execute(_lockable(session, stmt, for_update))).scalar_one_or_none()


async def search(session: AsyncSession, *, status: str | None, limit: int, after: list[Any] | None) -> list[ReconciliationCase]:
    stmt = select(ReconciliationCase)
    if status:
        stmt = stmt.where(ReconciliationCase.status == status)
    if after:
        at, cid = datetime.fromisoformat(str(after[0])), str(after[1])
        stmt = stmt.where((ReconciliationCase.created_at > at) | ((ReconciliationCase.created_at == at) & (ReconciliationCase.id > cid)))
    stmt = stmt.order_by(ReconciliationCase.created_at, ReconciliationCase.id).limit(limit + 1)
    return list((await session.execute(stmt)).scalars())
