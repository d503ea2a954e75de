"""Every query on members."""

from __future__ import annotations

from sqlalchemy import select, update
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


async def lock_of_household(session: AsyncSession, household_id: str) -> None:
    """Lock a household's members (in id order), as every writer of members locks them before
    their household: a department's feed locks the people it writes, then their household."""
    stmt = select(Member.id).where(Member.household_id == household_id).order_by(Member.id)
    await session.execute(lockable(session, stmt, True))


async def release(session: AsyncSession, household_id: str) -> None:
    """The members of a closed household let go: their blind index moves to ``released_bidx``,
    so that each may join another household and records about them are leads."""
    await session.execute(
        update(Member).where(Member.household_id == household_id, Member.resident_bidx.is_not(None))
        .values(released_bidx=Member.resident_bidx, resident_bidx=None)
        .execution_options(synchronize_session="fetch"))


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
