"""Leads (线索): department records about people not in the database, for proactive discovery."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from registry.columns import counter, day, id_column, json, moment, ref, sealed, text


class Lead(SQLModel, table=True):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ux_leads_record", "department", "record_id", unique=True),
        Index("ix_leads_status", "status", "received_at"),
        Index("ix_leads_resident", "resident_bidx"),
        Index("ix_leads_area", "area_code", postgresql_ops={"area_code": "varchar_pattern_ops"}),
    )

    id: str = Field(sa_column=id_column())
    department: str = Field(sa_column=text(48))
    record_id: str = Field(sa_column=text(64))
    item: str = Field(sa_column=text(48))
    resident_bidx: str = Field(sa_column=text(64))
    resident_enc: str = Field(sa_column=sealed())
    resident_masked: str = Field(sa_column=text(18))
    value: Any = Field(default=None, sa_column=json(nullable=True))
    effective_date: date = Field(sa_column=day())
    area_code: str | None = Field(default=None, sa_column=text(12, nullable=True))
    status: str = Field(default="open", sa_column=text(16))  # open | opened | dismissed
    household_id: str | None = Field(default=None, sa_column=ref(nullable=True))
    resolution: str | None = Field(default=None, sa_column=text(200, nullable=True))
    resolved_by: str | None = Field(default=None, sa_column=text(128, nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=moment(nullable=True))
    version: int = Field(default=1, sa_column=counter(1))
    received_at: datetime = Field(sa_column=moment())
