"""Small storage helpers shared by the domains: upserts (UTC timestamps are servicekit.tables'
UTCDateTime, the database's clock servicekit.db.db_now).

Deadlines and the sweeper run on the database's clock, never a pod's: every pod then agrees on
what is overdue, however its own clock drifts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import dialect_insert
from servicekit.tables import JSONType, UTCDateTime  # noqa: F401  (re-exported for the domains' tables)

BigId = BigInteger().with_variant(Integer, "sqlite")


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def insert_for(session: AsyncSession, table: Any) -> Any:
    """A dialect insert (for ON CONFLICT) for this session's database, of the table itself: rows
    given as dicts go straight to the driver, without the ORM's bulk bookkeeping."""
    return dialect_insert(session)(getattr(table, "__table__", table))
