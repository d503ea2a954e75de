"""The partner organisations table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from matching.columns import integer, text, ts


class Organisation(SQLModel, table=True):
    """A social organisation, charity or company of the consortium; its id is the ``org`` claim."""

    __tablename__ = "organisations"
    __table_args__ = (Index("ix_organisations_status", "status"), Index("ix_organisations_area", "area_code"))

    id: str = Field(sa_column=text(64, primary_key=True))
    name: str = Field(sa_column=text(100))
    kind: str = Field(sa_column=text(24))
    credit_code: str | None = Field(default=None, sa_column=text(18, nullable=True))
    area_code: str = Field(sa_column=text(12))
    description: str = Field(sa_column=text(1000))
    hotline: str | None = Field(default=None, sa_column=text(20, nullable=True))
    status: str = Field(sa_column=text(12))  # pending | approved | rejected | suspended
    applied_by: str = Field(sa_column=text(128))
    applied_at: datetime = Field(sa_column=ts())
    decided_by: str | None = Field(default=None, sa_column=text(128, nullable=True))
    decided_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))
    decision_reason: str | None = Field(default=None, sa_column=text(500, nullable=True))
    version: int = Field(sa_column=integer())
