"""Queries on the fact history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import one_of

from registry.facts.tables import FactRecord
from registry.queries import by_id_descending


async def insert_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(insert(FactRecord), rows)


async def seen_records(session: AsyncSession, source: str, record_ids: list[str]) -> set[str]:
    """Which of these record ids of a source the registry has already accepted."""
    if not record_ids:
        return set()
    rows = await session.execute(
        select(FactRecord.record_id).where(FactRecord.source == source, one_of(session, FactRecord.record_id, record_ids))
    )
    return set(rows.scalars())


async def history_of(session: AsyncSession, household_id: str, limit: int, after: list[Any] | None) -> list[FactRecord]:
    stmt = select(FactRecord).where(FactRecord.household_id == household_id)
    return list((await session.execute(by_id_descending(stmt, FactRecord.id, after, limit))).scalars())
