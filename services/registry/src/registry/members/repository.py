"""Every query on members."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller

from registry.queries import lockable
from registry.households.tables import Household
from registry.members.tables import Member


async def by_indexes(session: AsyncSession, indexes: list[str]) -> dict[str, Member]:
    if not indexes:
        return {}
    rows = await session.execute(select(Member).where(Member.resident_bidx.in_(indexes)))
    return {m.resident_bidx: m for m in rows.scalars()}


async def by_index(session: AsyncSession, index: str, *, for_update: bool = False) -> Member | None:
    stmt = select(Member).where(Member.resident_bidx == index)
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


async def get_in_scope(session: AsyncSession, caller: Caller, member_id: str, *, for_update: bool = False) -> tuple[Member, Household] | None:
    stmt = (
        select(Member, Household)
        .join(Household, Household.id == Member.household_id)
        .where(Member.id == member_id, caller.scope(Household.area_code))
    )
    row = (await session.execute(lockable(session, stmt, for_update))).first()
    return (row[0], row[1]) if row else None


async def in_scope_by_index(session: AsyncSession, caller: Caller, index: str) -> tuple[Member, Household] | None:
    stmt = (
        select(Member, Household)
        .join(Household, Household.id == Member.household_id)
        .where(Member.resident_bidx == index, caller.scope(Household.area_code))
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None
