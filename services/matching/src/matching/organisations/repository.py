"""Every query on organisations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.organisations.tables import Organisation
from matching.sql import for_update


async def get(session: AsyncSession, org_id: str, *, lock: bool = False) -> Organisation | None:
    stmt = select(Organisation).where(Organisation.id == org_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def page(session: AsyncSession, *, status: str | None, only: str | None, after: str | None,
               limit: int) -> list[Organisation]:
    stmt = select(Organisation).order_by(Organisation.id).limit(limit + 1)
    if only is not None:
        stmt = stmt.where(Organisation.id == only)
    if status is not None:
        stmt = stmt.where(Organisation.status == status)
    if after is not None:
        stmt = stmt.where(Organisation.id > after)
    return list((await session.execute(stmt)).scalars())


async def names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids)))
    return {r.id: r.name for r in rows}
