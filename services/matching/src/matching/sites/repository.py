"""Every query on sites."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import jurisdiction_prefix

from matching.sites.schemas import SiteFilters
from matching.sites.tables import Site
from matching.sql import for_update, json_array_contains


async def get(session: AsyncSession, code: str, *, lock: bool = False) -> Site | None:
    stmt = select(Site).where(Site.code == code)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def page(session: AsyncSession, filters: SiteFilters, after: str | None, limit: int) -> list[Site]:
    stmt = select(Site).order_by(Site.code).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Site.code > after)
    if filters.level is not None:
        stmt = stmt.where(Site.level == filters.level.value)
    if filters.area is not None:
        stmt = stmt.where(Site.area_code.startswith(jurisdiction_prefix(filters.area), autoescape=True))
    if filters.co_located is not None:
        stmt = stmt.where(json_array_contains(session, Site.co_located, filters.co_located))
    if filters.active is not None:
        stmt = stmt.where(Site.active == filters.active)
    return list((await session.execute(stmt)).scalars())


async def codes_like(session: AsyncSession, stem: str) -> set[str]:
    rows = await session.execute(select(Site.code).where(Site.code.startswith(stem, autoescape=True)))
    return set(rows.scalars())


async def all_codes(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Site.code))).scalars())


async def add_many(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        await session.execute(insert(Site), batch)
