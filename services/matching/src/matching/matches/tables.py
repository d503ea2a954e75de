"""Matches, the steps of each, and the engine's runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Date, Float, ForeignKey, Index, text as sql
from sqlmodel import Field, SQLModel

from matching.columns import BigId, JSONType, id_column, integer, text, ts

LIVE = ("proposed", "accepted", "delivered")
SPENT = ("accepted", "delivered")  # a slot spent for good, whatever the next full run decides
CLOSED = ("declined", "revoked")  # never proposed again for the same need and offer


class Match(SQLModel, table=True):
    __tablename__ = "matches"
    __table_args__ = (
        Index("ix_matches_offer_period", "offer_id", "period_key", "status"),
        Index("ix_matches_closed", "need_id", "offer_id",
              postgresql_where=sql("status IN ('declined', 'revoked')"),
              sqlite_where=sql("status IN ('declined', 'revoked')")),
        # One live match per need, whatever runs or accepts race: the database says no.
        Index("uq_matches_live_need", "need_id", unique=True,
              postgresql_where=sql("status IN ('proposed', 'accepted', 'delivered')"),
              sqlite_where=sql("status IN ('proposed', 'accepted', 'delivered')")),
        Index("ix_matches_closed_at", "closed_at", postgresql_where=sql("closed_at IS NOT NULL"),
              sqlite_where=sql("closed_at IS NOT NULL")),
        CheckConstraint("feedback_score IS NULL OR feedback_score BETWEEN 1 AND 5", name="ck_matches_feedback"),
    )

    id: str = Field(sa_column=id_column())
    # No foreign keys (migration 0003): needs and offers are never deleted, and a full run writes
    # 140,000 of these at once.
    need_id: str = Field(sa_column=text(36))
    offer_id: str = Field(sa_column=text(36))
    organisation_id: str = Field(sa_column=text(64))
    site_code: str = Field(sa_column=text(32))
    status: str = Field(sa_column=text(12))  # proposed | accepted | declined | delivered | revoked | withdrawn
    period_key: str = Field(sa_column=text(10))
    distance_km: float = Field(sa_column=Column(Float, nullable=False))
    priority: int = Field(sa_column=integer())
    run_id: str | None = Field(default=None, sa_column=text(36, nullable=True))
    reference: str = Field(sa_column=text(16))  # quoted to the relay hotline; derived from the id
    proposed_at: datetime = Field(sa_column=ts())
    accepted_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))  # declined/revoked/withdrawn
    close_reason: str | None = Field(default=None, sa_column=text(24, nullable=True))
    close_note: str | None = Field(default=None, sa_column=text(500, nullable=True))
    delivered_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))
    delivery_notes: str | None = Field(default=None, sa_column=text(500, nullable=True))
    feedback_score: int | None = Field(default=None, sa_column=integer(nullable=True))
    feedback_comment: str | None = Field(default=None, sa_column=text(500, nullable=True))
    feedback_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))
    version: int = Field(sa_column=integer())


class MatchStep(SQLModel, table=True):
    """Append-only: every step of a match after its proposal (which is the match row itself)."""

    __tablename__ = "match_steps"
    __table_args__ = (Index("ix_match_steps_match", "match_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    match_id: str = Field(sa_column=text(36, ForeignKey("matches.id")))
    step: str = Field(sa_column=text(16))
    actor_role: str = Field(sa_column=text(32))
    actor: str = Field(sa_column=text(128))
    at: datetime = Field(sa_column=ts())
    detail: dict = Field(sa_column=Column(JSONType, nullable=False))


class MatchingRun(SQLModel, table=True):
    __tablename__ = "matching_runs"
    __table_args__ = (Index("ix_matching_runs_started", "started_at"),)

    id: str = Field(sa_column=id_column())
    mode: str = Field(sa_column=text(12))  # incremental | full
    triggered_by: str = Field(sa_column=text(128))
    started_at: datetime = Field(sa_column=ts())
    finished_at: datetime = Field(sa_column=ts())
    needs_considered: int = Field(sa_column=integer())
    offers_considered: int = Field(sa_column=integer())
    proposed: int = Field(sa_column=integer())
    kept: int = Field(sa_column=integer())
    withdrawn: int = Field(sa_column=integer())
    unmatched: dict = Field(sa_column=Column(JSONType, nullable=False))
    objective: int = Field(sa_column=Column(BigId, nullable=False))
    solver_seconds: float = Field(sa_column=Column(Float, nullable=False))
    total_seconds: float = Field(sa_column=Column(Float, nullable=False))
