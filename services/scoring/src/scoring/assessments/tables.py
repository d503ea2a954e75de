"""Assessments: every one kept (history), the current one per household, officers' reviews.

Rows are compact, because a city is rescored at once: fired indicators as ``code:tier`` tokens,
the portrait and the suggestions as space-separated codes; their reasons are read from the model
version that produced them, which never changes. The difference from the previous assessment
(``previous_id``) is computed when read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Float, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from servicekit.tables import UTCDateTime


class Assessment(SQLModel, table=True):
    """One assessment of one household (append-only)."""

    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("household_id", "number", name="uq_assessments_household_number"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    household_id: str = Field(sa_column=Column(String(36), nullable=False))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    household_version: int = Field(sa_column=Column(BigInteger, nullable=False))
    model_version: str = Field(sa_column=Column(String(40), nullable=False))
    score: float = Field(sa_column=Column(Float, nullable=False))
    level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    effective_level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    previous_id: str | None = Field(default=None, sa_column=Column(String(36)))
    previous_score: float | None = Field(default=None, sa_column=Column(Float))
    previous_level: int | None = Field(default=None, sa_column=Column(SmallInteger))
    dimensions: str = Field(sa_column=Column(Text, nullable=False))  # {"source": 10, ...}
    fired: str = Field(sa_column=Column(Text, nullable=False))  # "major_illness:1 income_level:0"
    difficulty: str = Field(sa_column=Column(String(32), nullable=False))
    causes: str = Field(sa_column=Column(Text, nullable=False))  # " illness debt "
    needs: str = Field(sa_column=Column(Text, nullable=False))
    five_types: str = Field(sa_column=Column(Text, nullable=False))
    eligible: str = Field(sa_column=Column(Text, nullable=False))  # policies it qualifies for
    receiving: str = Field(sa_column=Column(Text, nullable=False))  # policies it receives
    services: str = Field(sa_column=Column(Text, nullable=False))  # " home_nursing/medical ... "
    facts: str = Field(sa_column=Column(Text, nullable=False))
    input_hash: str = Field(sa_column=Column(String(64), nullable=False))
    content_hash: str = Field(sa_column=Column(String(32), nullable=False))
    cause: str = Field(sa_column=Column(String(24), nullable=False))
    triggers: str = Field(sa_column=Column(Text, nullable=False))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    township_code: str = Field(sa_column=Column(String(12), nullable=False))
    district_code: str = Field(sa_column=Column(String(12), nullable=False))
    label_masked: str = Field(sa_column=Column(String(64), nullable=False))
    household_type: str | None = Field(default=None, sa_column=Column(String(16)))  # register status
    assessed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CurrentAssessment(SQLModel, table=True):
    """The newest assessment of each open household, with what lists filter on."""

    __tablename__ = "current_assessments"
    # Only what lists need: a city's rescore writes every row, and each index takes every row.
    __table_args__ = (Index("ix_current_assessments_area", "area_code"),)

    household_id: str = Field(sa_column=Column(String(36), primary_key=True))
    assessment_id: str = Field(sa_column=Column(String(36), nullable=False))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    household_version: int = Field(sa_column=Column(BigInteger, nullable=False))
    model_version: str = Field(sa_column=Column(String(40), nullable=False))
    score: float = Field(sa_column=Column(Float, nullable=False))
    level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    effective_level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    difficulty: str = Field(sa_column=Column(String(32), nullable=False))
    five_types: str = Field(sa_column=Column(String(128), nullable=False))  # " basic care "
    needs: str = Field(sa_column=Column(String(256), nullable=False))
    unclaimed_policies: str = Field(sa_column=Column(String(512), nullable=False))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    township_code: str = Field(sa_column=Column(String(12), nullable=False))
    district_code: str = Field(sa_column=Column(String(12), nullable=False))
    label_masked: str = Field(sa_column=Column(String(64), nullable=False))
    content_hash: str = Field(sa_column=Column(String(32), nullable=False))
    input_hash: str = Field(sa_column=Column(String(64), nullable=False))
    assessed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    etag: int = Field(sa_column=Column(Integer, nullable=False))
    reviewed_level: int | None = Field(default=None, sa_column=Column(SmallInteger))
    review_id: str | None = Field(default=None, sa_column=Column(String(36)))
    review_basis_level: int | None = Field(default=None, sa_column=Column(SmallInteger))


class AssessmentReview(SQLModel, table=True):
    """An officer's reviewed level beside the computed one, with the reason (append-only)."""

    __tablename__ = "assessment_reviews"
    __table_args__ = (Index("ix_assessment_reviews_household", "household_id", "created_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    household_id: str = Field(sa_column=Column(String(36), nullable=False))
    assessment_id: str = Field(sa_column=Column(String(36), nullable=False))
    computed_level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    reviewed_level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    reason: str = Field(sa_column=Column(String(500), nullable=False))
    reviewer: str = Field(sa_column=Column(String(128), nullable=False))
    reviewer_role: str = Field(sa_column=Column(String(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
