"""Queries on declarations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.declarations.tables import Declaration
from registry.queries import lockable, newest_first


async def get(session: AsyncSession, declaration_id: str, visible: ColumnElement[bool], *,
              for_update: bool = False) -> Declaration | None:
    stmt = select(Declaration).where(Declaration.id == declaration_id, visible)
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


async def search(session: AsyncSession, visible: ColumnElement[bool], *, status: str | None, limit: int,
                 after: list[Any] | None) -> list[Declaration]:
    stmt = select(Declaration).where(visible)
    if status:
        stmt = stmt.where(Declaration.status == status)
    return list((await session.execute(newest_first(stmt, Declaration.created_at, Declaration.id, after, limit))).scalars())
