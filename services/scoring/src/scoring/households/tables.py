"""Scoring's own copy of every household's scoring view (from the registry's feed)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, LargeBinary, String, Text, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from servicekit.tables import UTCDateTime

from scoring.rules.view import canonical_json


class JSONText(TypeDecorator[Any]):
    """A JSON value kept as text: PostgreSQL takes it in without parsing it (``json`` input checks
    the syntax of every value: nearly half of a COPY of the registry's views, migration 0010); a
    value given as text is taken as JSON text already (the canonical view)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return canonical_json(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class HouseholdView(SQLModel, table=True):
    """The newest view of one household the registry sent, as sent and as scoring reads it.

    ``features`` is the view prepared for the kernel (one float64 per field, in the contract's
    order, NaN for unknown): a whole city is read back as one matrix without parsing JSON.
    ``layout`` names the field list and ranges it was prepared with; a row of another layout is
    prepared again from ``view``.
    """

    __tablename__ = "household_views"
    __table_args__ = (
        Index("ix_household_views_area", "area_code"),
        # Closed households only (migration 0011): the snapshot of withdrawals pages through them.
        Index("ix_household_views_closed", "household_id",
              postgresql_where=text("closed"), sqlite_where=text("closed")),
    )

    household_id: str = Field(sa_column=Column(String(36), primary_key=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    township_code: str = Field(sa_column=Column(String(12), nullable=False))
    district_code: str = Field(sa_column=Column(String(12), nullable=False))
    label_masked: str = Field(sa_column=Column(String(64), nullable=False))
    synthetic: bool = Field(sa_column=Column(Boolean, nullable=False))
    closed: bool = Field(sa_column=Column(Boolean, nullable=False))
    view: dict = Field(sa_column=Column(JSONText, nullable=False))  # canonical JSON text (rules.view.canonical_json)
    missing: list = Field(sa_column=Column(JSON, nullable=False))  # as the registry sent it
    # What preparing the view found, as JSON text ready for the assessment: {"missing": [...],
    # "invalid": [...], "clamped": [...]} (unknown, wrong, out of range).
    facts: str = Field(sa_column=Column(Text, nullable=False))
    features: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    layout: str = Field(sa_column=Column(String(16), nullable=False))
    input_hash: str = Field(sa_column=Column(String(64), nullable=False))
    # The living members' ages as the registry sent them, as JSON text ready for the assessment
    # ("[45,43,8]", oldest first); null for a view stored before the registry sent them.
    member_ages: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
