"""Column helpers shared by the matching service's tables."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String
from sqlalchemy.dialects.postgresql import JSONB

from servicekit.tables import UTCDateTime, utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only


def new_id() -> str:
    return str(uuid.uuid4())


def id_column() -> Column:
    return Column(String(36), primary_key=True)


def ts(nullable: bool = False, **kw: Any) -> Column:
    """A timestamp, aware UTC in Python on both databases (SQLite keeps no zone)."""
    return Column(UTCDateTime(), nullable=nullable, **({"default": utcnow} if not nullable else {}), **kw)


def text(length: int, *args: Any, nullable: bool = False, **kw: Any) -> Column:
    return Column(String(length), *args, nullable=nullable, **kw)


def json_list(nullable: bool = False) -> Column:
    return Column(JSONType, nullable=nullable)


def integer(nullable: bool = False, **kw: Any) -> Column:
    return Column(Integer, nullable=nullable, **kw)
