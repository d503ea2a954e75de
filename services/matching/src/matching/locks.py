"""The engine's lock: a run holds it exclusively; changes to what holds capacity (accepts,
declines, revocations, pauses, cancellations) hold it shared, so none races a run. PostgreSQL
only: an advisory lock for the transaction; SQLite has a single writer anyway."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from matching.sql import is_postgres

ENGINE_LOCK = 0x6D61_7463_6869_6E67  # "matching"


async def lock_exclusive(session: AsyncSession) -> None:
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ENGINE_LOCK})


async def lock_shared(session: AsyncSession) -> None:
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": ENGINE_LOCK})
