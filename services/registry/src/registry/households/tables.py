"""Households (家庭), their status history and door-to-door surveys (走访排摸)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from registry.columns import counter, day, flag, id_column, json, moment, ref, sealed, text


class Household(SQLModel, table=True):
    """A household of the low-income population database; its village decides who may see it."""

    __tablename__ = "households"
    __table_args__ = (
        Index("ix_households_area", "area_code", postgresql_ops={"area_code": "varchar_pattern_ops"}),
        Index("ix_households_status", "register_status"),
        Index("ix_households_updated", "updated_at", "id"),
    )

    id: str = Field(sa_column=id_column())
    area_code: str = Field(sa_column=text(12))
    register_status: str = Field(sa_column=text(16))  # dibao | dibian | tekun | off_register
    off_register_source: str | None = Field(default=None, sa_column=text(32, nullable=True))
    status_since: date = Field(sa_column=day())
    channel: str = Field(sa_column=text(16))  # survey | declaration | data_sharing | big_data
    rural_hukou: bool = Field(default=False, sa_column=flag())
    address_enc: str | None = Field(default=None, sa_column=sealed())
    location_enc: str | None = Field(default=None, sa_column=sealed())
    label_masked: str = Field(sa_column=text(40))
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=json())
    view: dict[str, Any] | None = Field(default=None, sa_column=json(nullable=True))
    missing: list[str] | None = Field(default=None, sa_column=json(nullable=True))
    version: int = Field(default=1, sa_column=counter(1))
    synthetic: bool = Field(default=False, sa_column=flag())
    # Closed (注销): kept with its history, read-only from then on.
    closed_on: date | None = Field(default=None, sa_column=day(nullable=True))
    closed_reason: str | None = Field(default=None, sa_column=text(200, nullable=True))
    created_by: str = Field(sa_column=text(128))
    created_at: datetime = Field(sa_column=moment())
    updated_at: datetime = Field(sa_column=moment())


class StatusChange(SQLModel, table=True):
    """One change of register status (在册状态), dated, with who made it."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_household", "household_id", "at"),)

    id: str = Field(sa_column=id_column())
    household_id: str = Field(sa_column=ref())
    from_status: str | None = Field(default=None, sa_column=text(16, nullable=True))
    from_source: str | None = Field(default=None, sa_column=text(32, nullable=True))
    to_status: str = Field(sa_column=text(16))
    to_source: str | None = Field(default=None, sa_column=text(32, nullable=True))
    effective_date: date = Field(sa_column=day())
    reason: str | None = Field(default=None, sa_column=text(200, nullable=True))
    actor: str = Field(sa_column=text(128))
    role: str = Field(sa_column=text(32))
    at: datetime = Field(sa_column=moment())


class Survey(SQLModel, table=True):
    """A door-to-door visit (走访排摸): when, by whom, what was found."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_household", "household_id", "visited_on"),)

    id: str = Field(sa_column=id_column())
    household_id: str = Field(sa_column=ref())
    visited_on: date = Field(sa_column=day())
    actor: str = Field(sa_column=text(128))
    role: str = Field(sa_column=text(32))
    concern: bool = Field(default=False, sa_column=flag())
    findings: list[str] = Field(default_factory=list, sa_column=json())  # fact keys recorded
    notes_enc: str | None = Field(default=None, sa_column=sealed())
    created_at: datetime = Field(sa_column=moment())
