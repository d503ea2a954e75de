"""The needs table (帮扶需求): nothing in it identifies a family."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from matching.columns import id_column, integer, json_list, text, ts


class Need(SQLModel, table=True):
    __tablename__ = "needs"
    __table_args__ = (
        Index("ix_needs_status", "status"),
        Index("ix_needs_area", "area_code"),
        Index("ix_needs_requester", "requester_digest"),
        Index("ix_needs_created", "created_at"),
        Index("ix_needs_service_area", "service_code", "area_code"),
        UniqueConstraint("alert_id", "service_code", name="uq_needs_referral"),
    )

    id: str = Field(sa_column=id_column())
    source: str = Field(sa_column=text(16))  # alert_referral | worker_visit | citizen
    service_code: str = Field(sa_column=text(64))
    alert_id: str | None = Field(default=None, sa_column=text(36, nullable=True))
    household_id: str | None = Field(default=None, sa_column=text(36, nullable=True))  # opaque, registry's
    requester_digest: str | None = Field(default=None, sa_column=text(64, nullable=True))  # HMAC, citizens
    area_code: str = Field(sa_column=text(12))  # the village (村社)
    label_masked: str | None = Field(default=None, sa_column=text(32, nullable=True))
    level: int | None = Field(default=None, sa_column=integer(nullable=True))
    urgency: str = Field(sa_column=text(8))
    priority: int = Field(sa_column=integer())
    household_type: str | None = Field(default=None, sa_column=text(16, nullable=True))
    member_ages: list = Field(sa_column=json_list())
    need_types: list = Field(sa_column=json_list())
    wish: str | None = Field(default=None, sa_column=text(200, nullable=True))  # micro-wishes (微心愿)
    # open | accepted | delivered | cancelled. "matched" is not stored: an open need with a live
    # proposal shows as matched, so a run of the engine never rewrites the indexed status.
    status: str = Field(sa_column=text(12))
    unmatched_reason: str | None = Field(default=None, sa_column=text(24, nullable=True))
    created_by: str = Field(sa_column=text(128))
    version: int = Field(sa_column=integer())
    created_at: datetime = Field(sa_column=ts())
    updated_at: datetime = Field(sa_column=ts())
