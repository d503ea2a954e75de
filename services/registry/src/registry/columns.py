"""Column helpers shared by the registry's tables (one spelling for ids, times and JSON)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Column, Date, Integer, String, Text

from servicekit.resident_id import CHINA_STANDARD_TIME
from servicekit.tables import JSONType, UTCDateTime, utcnow


def city_day(moment: datetime) -> date:
    """The calendar day in the city at ``moment``: what "today" is for ages, views and facts."""
    return moment.astimezone(CHINA_STANDARD_TIME).date()


def new_id() -> str:
    """Row ids are chosen before the insert: encrypted fields are bound to them."""
    return str(uuid.uuid4())


def id_column(**kw: Any) -> Column:
    return Column(String(36), primary_key=True, **kw)


def ref(nullable: bool = False, **kw: Any) -> Column:
    return Column(String(36), nullable=nullable, **kw)


def text(length: int, nullable: bool = False, **kw: Any) -> Column:
    return Column(String(length), nullable=nullable, **kw)


def sealed() -> Column:
    """An encrypted field (servicekit.crypto.FieldCipher envelope)."""
    return Column(Text, nullable=True)


def json(nullable: bool = False) -> Column:
    return Column(JSONType, nullable=nullable)


def day(nullable: bool = False) -> Column:
    return Column(Date, nullable=nullable)


def moment(nullable: bool = False) -> Column:
    # Aware UTC in Python on both databases (SQLite keeps no zone: its values came back naive,
    # and the API wrote them without one).
    return Column(UTCDateTime(), nullable=nullable, default=None if nullable else utcnow)


def flag(default: bool = False) -> Column:
    return Column(Boolean, nullable=False, default=default)


def counter(default: int = 0) -> Column:
    return Column(Integer, nullable=False, default=default)


__all__ = ["new_id", "id_column", "ref", "text", "sealed", "json", "day", "moment", "flag", "counter", "utcnow"]
