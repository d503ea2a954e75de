"""Tables of the alert domain: the alert (one open case per household), its evidence, its rules,
its recorded transitions and verifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from alerts.storage import BigId, JSONType, UTCDateTime

OPEN_STATUSES = ("raised", "accepted", "verifying")


class Alert(SQLModel, table=True):
    """One case: raised for a household, verified by its township, disposed with a referral."""

    __tablename__ = "alerts"
    __table_args__ = (
        # One case per household: at most one alert that is not disposed.
        Index(
            "uq_alerts_open_household", "household_id", unique=True,
            sqlite_where=text("status <> 'disposed'"), postgresql_where=text("status <> 'disposed'"),
        ),
        Index("ix_alerts_area_deadline", "area_code", "deadline_at", "id"),
        Index("ix_alerts_status_deadline", "status", "deadline_at"),
        Index("ix_alerts_township", "township_code", "raised_at"),
        Index("ix_alerts_district", "district_code", "raised_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    household_id: str = Field(sa_column=Column(String(36), nullable=False))
    raised_by_event: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    assessment_id: str = Field(sa_column=Column(String(36), nullable=False))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    township_code: str = Field(sa_column=Column(String(12), nullable=False))
    district_code: str = Field(sa_column=Column(String(12), nullable=False))
    label_masked: str = Field(sa_column=Column(String(64), nullable=False))
    alert_class: str = Field(sa_column=Column(String(16), nullable=False))
    level: int = Field(sa_column=Column(Integer, nullable=False))
    score: float | None = Field(default=None, sa_column=Column(Float))
    rules: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    portrait: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    suggestions: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    household_type: str | None = Field(default=None, sa_column=Column(String(32)))
    member_ages: list[int] | None = Field(default=None, sa_column=Column(JSONType))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    raised_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    deadline_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    deadline_basis: str = Field(sa_column=Column(String(32), nullable=False))
    warned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    overdue_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    escalated_to: str | None = Field(default=None, sa_column=Column(String(12)))
    accepted_by: str | None = Field(default=None, sa_column=Column(String(128)))
    worker_name: str | None = Field(default=None, sa_column=Column(String(64)))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    disposition: str | None = Field(default=None, sa_column=Column(String(24)))
    disposition_detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    disposed_by: str | None = Field(default=None, sa_column=Column(String(128)))
    disposed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    version: int = Field(sa_column=Column(Integer, nullable=False))

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AlertEvidence(SQLModel, table=True):
    """One assessment that raised an alert or joined it; unique per event, so a redelivered
    event can never count twice."""

    __tablename__ = "alert_evidence"
    __table_args__ = (Index("ix_alert_evidence_alert", "alert_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    alert_id: str = Field(sa_column=Column(String(36), ForeignKey("alerts.id"), nullable=False))
    event_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    assessment_id: str = Field(sa_column=Column(String(36), nullable=False))
    level: int = Field(sa_column=Column(Integer, nullable=False))
    previous_level: int | None = Field(default=None, sa_column=Column(Integer))
    score: float | None = Field(default=None, sa_column=Column(Float))
    cause: str | None = Field(default=None, sa_column=Column(String(32)))
    rules: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    triggers: list[dict[str, Any]] = Field(sa_column=Column(JSONType, nullable=False))
    observed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class AlertRule(SQLModel, table=True):
    """Which rules an alert was raised or joined by (for the precision of each rule)."""

    __tablename__ = "alert_rules"

    alert_id: str = Field(sa_column=Column(String(36), ForeignKey("alerts.id"), primary_key=True))
    rule_code: str = Field(sa_column=Column(String(64), primary_key=True))


class AlertTransition(SQLModel, table=True):
    """Every change of an alert: who, when, from which status to which."""

    __tablename__ = "alert_transitions"
    __table_args__ = (Index("ix_alert_transitions_alert", "alert_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    alert_id: str = Field(sa_column=Column(String(36), ForeignKey("alerts.id"), nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    action: str = Field(sa_column=Column(String(24), nullable=False))
    from_status: str | None = Field(default=None, sa_column=Column(String(16)))
    to_status: str = Field(sa_column=Column(String(16), nullable=False))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    actor_role: str = Field(sa_column=Column(String(32), nullable=False))
    detail: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))


class Verification(SQLModel, table=True):
    """A verification (核实): by phone (电话询问) or home visit (入户走访)."""

    __tablename__ = "verifications"
    __table_args__ = (Index("ix_verifications_alert", "alert_id", "recorded_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    alert_id: str = Field(sa_column=Column(String(36), ForeignKey("alerts.id"), nullable=False))
    method: str = Field(sa_column=Column(String(16), nullable=False))
    performed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    findings: str = Field(sa_column=Column(Text, nullable=False))
    needs_confirmed: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(128), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
