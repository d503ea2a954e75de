"""Queries on declarations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.declarations.tables import Declaration
from registry.households.repository import _lockable


async def get(session: AsyncSession, declaration_id: str, visible: ColumnElement[bool], *,
              for_update: bool = False) -> Declaration | None:
    stmt = select(Declaration).where(Declaration.id == declaration_id, visible)
    return (await session.execute(_lockable(session, stmt, for_update))).scalar_one_or_none()


async def search(session: AsyncSession, visible: ColumnElement[bool], *, status: str | None, limit: int,
                 after: list[Any] | None) -> list[Declaration]:
    stmt = select(Declaration).where(visible)
    if status:
        stmt = stmt.where(Declaration.status == status)
    if after:
        at, did = datetime.fromisoformat(str(after[0])), str(after[1])
        stmt = stmt.where((Declaration.created_at < at) | ((Declaration.created_at == at) & (Declaration.id < did)))
    stmt = stmt.order_by(Declaration.created_at.desc(), Declaration.id.desc()).limit(limit + 1)
    return list((await session.execute(stmt)).scalars())
