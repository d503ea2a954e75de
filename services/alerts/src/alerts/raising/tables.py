"""What the raising side remembers of each household: its latest assessment, so a resync from
scoring's snapshot can still tell which levels fell."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, Integer, String
from sqlmodel import Field, SQLModel

from alerts.storage import UTCDateTime


class HouseholdAssessment(SQLModel, table=True):
    __tablename__ = "household_assessments"

    household_id: str = Field(sa_column=Column(String(36), primary_key=True))
    assessment_id: str = Field(sa_column=Column(String(36), nullable=False))
    household_version: int = Field(sa_column=Column(Integer, nullable=False))
    level: int = Field(sa_column=Column(Integer, nullable=False))
    score: float | None = Field(default=None, sa_column=Column(Float))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
