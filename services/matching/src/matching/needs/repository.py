"""Every query on needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from matching.needs.tables import Need
from matching.sql import for_update


async def get(session: AsyncSession, need_id: str, *, lock: bool = False) -> Need | None:
    stmt = select(Need).where(Need.id == need_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def reopen(session: AsyncSession, need_ids: list[str], at: datetime) -> None:
    """Needs whose proposal went away are open again, to be matched by the next run."""
    if need_ids:
        await session.execute(
            update(Need).where(Need.id.in_(need_ids), Need.status == "matched")
            .values(status="open", unmatched_reason=None, updated_at=at, version=Need.version + 1)
        )
