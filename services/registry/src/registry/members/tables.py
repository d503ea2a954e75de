"""Members (家庭成员): one row per person and household; the blind index makes a person unique
among the open households city-wide. Closing a household releases its members: their blind
index moves to ``released_bidx`` (their rows stay, read-only, with the closed household), so
that they can join another household and records about them are read as about a person not
registered (leads)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, text as sql_text
from sqlmodel import Field, SQLModel

from registry.columns import counter, day, flag, id_column, json, moment, sealed, text


class Member(SQLModel, table=True):
    __tablename__ = "members"
    __table_args__ = (
        Index("ux_members_resident", "resident_bidx", unique=True),
        Index("ix_members_household", "household_id"),
        Index("ix_members_released", "released_bidx", postgresql_where=sql_text("released_bidx IS NOT NULL"),
              sqlite_where=sql_text("released_bidx IS NOT NULL")),
    )

    id: str = Field(sa_column=id_column())
    household_id: str = Field(sa_column=Column(String(36), ForeignKey("households.id"), nullable=False))
    # HMAC of the normalised ID number; None once the household is closed (then in released_bidx).
    resident_bidx: str | None = Field(default=None, sa_column=text(64, nullable=True))
    released_bidx: str | None = Field(default=None, sa_column=text(64, nullable=True))
    resident_enc: str = Field(sa_column=sealed())
    resident_masked: str = Field(sa_column=text(18))
    name_enc: str | None = Field(default=None, sa_column=sealed())
    name_masked: str | None = Field(default=None, sa_column=text(40, nullable=True))
    phone_enc: str | None = Field(default=None, sa_column=sealed())
    phone_masked: str | None = Field(default=None, sa_column=text(16, nullable=True))
    sex: str = Field(sa_column=text(8))
    birth_date: date = Field(sa_column=day())
    relation: str = Field(sa_column=text(16))
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=json())
    version: int = Field(default=1, sa_column=counter(1))
    synthetic: bool = Field(default=False, sa_column=flag())
    created_at: datetime = Field(sa_column=moment())
    updated_at: datetime = Field(sa_column=moment())
