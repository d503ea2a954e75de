"""Queries on the fact history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.facts.tables import FactRecord
from registry.queries import by_id_descending, is_postgres


async def insert_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(insert(FactRecord), rows)


async def seen_records(session: AsyncSession, source: str, record_ids: list[str]) -> set[str]:
    """Which of these record ids of a source the registry has already accepted."""
    if not record_ids:
        return set()
    if is_postgres(session):
        # One index probe per id (the LIMIT keeps the subquery a probe), not ``= ANY(list)``
        # nor a plain join: the history grows during a batch faster than its statistics, and
        # plans made on them filtered every row against the whole list (quadratic: 31 s of a
        # 1M-record batch) or, joined, scanned the whole history for each chunk (1.9 s).
        rows = await session.execute(text(
            "SELECT r.id FROM unnest(CAST(:ids AS varchar[])) AS r(id) JOIN LATERAL (SELECT 1 FROM fact_history f "
            "WHERE f.source = :source AND f.record_id = r.id LIMIT 1) AS f ON true"
        ), {"ids": record_ids, "source": source})
    else:
        rows = await session.execute(
            select(FactRecord.record_id).where(FactRecord.source == source, FactRecord.record_id.in_(record_ids)))
    return set(rows.scalars())


async def history_of(session: AsyncSession, household_id: str, limit: int, after: list[Any] | None) -> list[FactRecord]:
    stmt = select(FactRecord).where(FactRecord.household_id == household_id)
    return list((await session.execute(by_id_descending(stmt, FactRecord.id, after, limit))).scalars())
