"""Query helpers every repository of the registry shares: row locks, keyset pages (the
dialect-aware IN is servicekit.db.one_of). Candidates for servicekit: nothing here is
registry-specific."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def lockable(session: AsyncSession, stmt: Select, for_update: bool) -> Select:
    """SELECT ... FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers)."""
    return stmt.with_for_update() if for_update and is_postgres(session) else stmt


def newest_first(stmt: Select, at: Any, key: Any, after: list[Any] | None, limit: int) -> Select:
    """A keyset page ordered by (time, id) descending, after the cursor values ``[time, id]``."""
    if after:
        t, k = datetime.fromisoformat(str(after[0])), str(after[1])
        stmt = stmt.where((at < t) | ((at == t) & (key < k)))
    return stmt.order_by(at.desc(), key.desc()).limit(limit + 1)


def oldest_first(stmt: Select, at: Any, key: Any, after: list[Any] | None, limit: int) -> Select:
    if after:
        t, k = datetime.fromisoformat(str(after[0])), str(after[1])
        stmt = stmt.where((at > t) | ((at == t) & (key > k)))
    return stmt.order_by(at, key).limit(limit + 1)


def by_id_descending(stmt: Select, key: Any, after: list[Any] | None, limit: int) -> Select:
    if after:
        stmt = stmt.where(key < int(after[0]))
    return stmt.order_by(key.desc()).limit(limit + 1)
