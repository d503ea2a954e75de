"""The history of facts: every value the registry accepted, with where it came from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from registry.columns import day, json, moment, ref, text


class FactRecord(SQLModel, table=True):
    """One accepted value of one fact (provenance: source, its record id, effective date)."""

    __tablename__ = "fact_history"
    __table_args__ = (
        Index("ux_fact_history_record", "source", "record_id", "fact", unique=True),
        Index("ix_fact_history_household", "household_id", "received_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    household_id: str = Field(sa_column=ref())
    member_id: str | None = Field(default=None, sa_column=ref(nullable=True))
    fact: str = Field(sa_column=text(48))
    value: Any = Field(default=None, sa_column=json(nullable=True))
    source: str = Field(sa_column=text(48))  # department code, or survey / declaration / worker
    record_id: str | None = Field(default=None, sa_column=text(64, nullable=True))
    effective_date: date = Field(sa_column=day())
    received_at: datetime = Field(sa_column=moment())
