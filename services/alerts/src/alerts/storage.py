"""Small storage helpers shared by the domains: UTC timestamps and upserts (the
database's clock is servicekit.db.db_now).

Deadlines and the sweeper run on the database's clock, never a pod's: every pod then agrees on
what is overdue, however its own clock drifts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from servicekit.db import dialect_insert
from servicekit.tables import JSONType  # noqa: F401  (re-exported for the domains' tables)

BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def insert_for(session: AsyncSession, table: Any) -> Any:
    """A dialect insert (for ON CONFLICT) for this session's database, of the table itself: rows
    given as dicts go straight to the driver, without the ORM's bulk bookkeeping."""
    return dialect_insert(session)(getattr(table, "__table__", table))
