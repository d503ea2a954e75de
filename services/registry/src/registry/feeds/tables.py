"""Department deliveries (数据共享): one row per batch (or single record), and rejected lines."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from registry.columns import counter, id_column, moment, ref, text


class FeedBatch(SQLModel, table=True):
    """A delivery and its report: counts by outcome, kept up to date chunk by chunk."""

    __tablename__ = "feed_batches"
    __table_args__ = (Index("ix_feed_batches_department", "department", "received_at"),
                      Index("ix_feed_batches_received", "received_at", "id"))  # every department's, newest first

    id: str = Field(sa_column=id_column())
    department: str = Field(sa_column=text(48))
    format: str = Field(sa_column=text(8))  # schemas.BatchFormat: jsonl | csv | single
    status: str = Field(sa_column=text(16))  # processing | completed | failed
    submitted_by: str = Field(sa_column=text(128))
    received_at: datetime = Field(sa_column=moment())
    finished_at: datetime | None = Field(default=None, sa_column=moment(nullable=True))
    lines: int = Field(default=0, sa_column=counter())
    applied: int = Field(default=0, sa_column=counter())
    unchanged: int = Field(default=0, sa_column=counter())
    rejected: int = Field(default=0, sa_column=counter())
    leads: int = Field(default=0, sa_column=counter())
    households_changed: int = Field(default=0, sa_column=counter())


class FeedRejection(SQLModel, table=True):
    """A rejected line: where, which record, why (never the value or the person)."""

    __tablename__ = "feed_rejections"
    __table_args__ = (Index("ix_feed_rejections_batch", "batch_id", "line"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    batch_id: str = Field(sa_column=ref())
    line: int = Field(sa_column=counter())
    record_id: str | None = Field(default=None, sa_column=text(64, nullable=True))
    reason_code: str = Field(sa_column=text(48))
    reason: str = Field(sa_column=text(200))
