"""SQL that differs between PostgreSQL and SQLite, written once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, any_, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def json_array_contains(session: AsyncSession, column: Any, value: str) -> ColumnElement[bool]:
    """``value`` is one of the strings of the JSON array in ``column``."""
    if is_postgres(session):
        return type_coerce(column, JSONB).contains([value])
    each = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == value))


def for_update(session: AsyncSession, stmt: Any) -> Any:
    """Lock the selected rows on PostgreSQL; SQLite already holds the database's write lock."""
    return stmt.with_for_update() if is_postgres(session) else stmt


def month_of(session: AsyncSession, column: Any, timezone: str) -> Any:
    """'YYYY-MM' of a timestamp in the city's time zone (SQLite: UTC, which it stores)."""
    if is_postgres(session):
        return func.to_char(func.timezone(timezone, column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def in_subquery(session: AsyncSession, column: Any, subquery: Any) -> ColumnElement[bool]:
    """``column IN (subquery)``; on PostgreSQL as ``= ANY(ARRAY(subquery))``, which the planner can
    OR with other indexed conditions (a bitmap OR) where ``IN`` would be a filter on every row."""
    if is_postgres(session):
        return column == any_(func.array(subquery.scalar_subquery()))
    return column.in_(subquery)


SQLITE_IN_LIST = 10_000  # SQLite takes at most 32,766 bound values in a statement


def in_parts(session: AsyncSession, values: list[str]) -> Iterator[list[str]]:
    """``values`` in as few parts as ``servicekit.db.one_of`` can take: one on PostgreSQL (an array)."""
    step = len(values) if is_postgres(session) else SQLITE_IN_LIST
    for k in range(0, len(values), max(step, 1)):
        yield values[k:k + step]
