"""Every query on needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller

from matching.needs.tables import Need
from matching.sql import for_update


async def get(session: AsyncSession, need_id: str, *, lock: bool = False) -> Need | None:
    stmt = select(Need).where(Need.id == need_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def reopen(session: AsyncSession, need_ids: list[str], at: datetime, *, from_status: str = "matched") -> None:
    """Needs whose match went away are open again, to be matched by the next run."""
    if need_ids:
        await session.execute(
            update(Need).where(Need.id.in_(need_ids), Need.status == from_status)
            .values(status="open", unmatched_reason=None, updated_at=at, version=Need.version + 1)
        )


async def set_status(session: AsyncSession, need_id: str, status: str, at: datetime) -> None:
    await session.execute(
        update(Need).where(Need.id == need_id)
        .values(status=status, unmatched_reason=None, updated_at=at, version=Need.version + 1)
    )


async def page(session: AsyncSession, *, scope: Any, requester: str | None, status: str | None,
               service: str | None, source: str | None, area: str | None, after: tuple[datetime, str] | None,
               limit: int) -> list[Need]:
    stmt = select(Need).order_by(Need.created_at.desc(), Need.id.desc()).limit(limit + 1)
    if scope is not None:
        stmt = stmt.where(scope)
    if requester is not None:
        stmt = stmt.where(Need.requester_digest == requester)
    if status is not None:
        stmt = stmt.where(Need.status == status)
    if service is not None:
        stmt = stmt.where(Need.service_code == service)
    if source is not None:
        stmt = stmt.where(Need.source == source)
    if area is not None:
        stmt = stmt.where(Need.area_code.startswith(area, autoescape=True))
    if after is not None:
        created, last_id = after
        stmt = stmt.where((Need.created_at < created) | ((Need.created_at == created) & (Need.id < last_id)))
    return list((await session.execute(stmt)).scalars())


def in_scope(caller: Caller) -> Any:
    return caller.scope(Need.area_code)


async def existing_referrals(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    wanted = list(pairs)
    if not wanted:
        return set()
    rows = await session.execute(
        select(Need.alert_id, Need.service_code).where(tuple_(Need.alert_id, Need.service_code).in_(wanted))
    )
    return {(a, s) for a, s in rows}


async def add_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Need), rows)
