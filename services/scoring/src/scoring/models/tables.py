"""Scoring models (versions of the rules), the active one, and the record of activations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from servicekit.tables import UTCDateTime


class ScoringModel(SQLModel, table=True):
    """One version of the model: a draft until activated; never edited once it has been active."""

    __tablename__ = "scoring_models"

    version: str = Field(sa_column=Column(String(40), primary_key=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # draft | active | retired
    title_zh: str = Field(sa_column=Column(String(200), nullable=False))
    title_en: str = Field(sa_column=Column(String(300), nullable=False))
    notes: str = Field(sa_column=Column(String(2000), nullable=False))
    document: dict = Field(sa_column=Column(JSON, nullable=False))
    document_hash: str = Field(sa_column=Column(String(64), nullable=False))
    valid: bool = Field(sa_column=Column(Boolean, nullable=False))
    errors: int = Field(sa_column=Column(Integer, nullable=False))
    warnings: int = Field(sa_column=Column(Integer, nullable=False))
    row_version: int = Field(sa_column=Column(Integer, nullable=False))
    created_by: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    activated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    retired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ScoringState(SQLModel, table=True):
    """The single row naming the active model. Scoring a batch holds it shared; an activation
    holds it exclusively, so no household is scored with a model being replaced."""

    __tablename__ = "scoring_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    active_version: str | None = Field(default=None, sa_column=Column(String(40)))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ModelActivation(SQLModel, table=True):
    """An activation: who asked, when, what it changed. At most one runs at a time."""

    __tablename__ = "model_activations"
    __table_args__ = (
        Index("uq_model_activations_running", "status", unique=True,
              postgresql_where=text("status = 'running'"), sqlite_where=text("status = 'running'")),
        Index("ix_model_activations_started", "started_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    model_version: str = Field(sa_column=Column(String(40), nullable=False))
    previous_version: str | None = Field(default=None, sa_column=Column(String(40)))
    status: str = Field(sa_column=Column(String(16), nullable=False))  # running | succeeded | failed
    requested_by: str = Field(sa_column=Column(String(128), nullable=False))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    households: int = Field(sa_column=Column(Integer, nullable=False))
    assessments_changed: int = Field(sa_column=Column(Integer, nullable=False))
    events: int = Field(sa_column=Column(Integer, nullable=False))
    levels_before: dict = Field(sa_column=Column(JSON, nullable=False))
    levels_after: dict = Field(sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(String(500)))
