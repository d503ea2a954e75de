"""Queries on leads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller

from registry.queries import lockable, newest_first
from registry.leads.tables import Lead


async def get_in_scope(session: AsyncSession, caller: Caller, lead_id: str, *, for_update: bool = False) -> Lead | None:
    stmt = select(Lead).where(Lead.id == lead_id, caller.scope(Lead.area_code))
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


async def open_of_person(session: AsyncSession, resident_bidx: str) -> list[Lead]:
    stmt = select(Lead).where(Lead.resident_bidx == resident_bidx, Lead.status == "open").order_by(Lead.effective_date)
    return list((await session.execute(lockable(session, stmt, True))).scalars())


async def search(session: AsyncSession, caller: Caller, *, status: str | None, department: str | None,
                 limit: int, after: list[Any] | None) -> list[Lead]:
    stmt = select(Lead).where(caller.scope(Lead.area_code))
    if status:
        stmt = stmt.where(Lead.status == status)
    if department:
        stmt = stmt.where(Lead.department == department)
    return list((await session.execute(newest_first(stmt, Lead.received_at, Lead.id, after, limit))).scalars())
