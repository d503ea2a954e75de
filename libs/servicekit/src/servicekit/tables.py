"""The kit's own tables, present in every service's schema: outbox, feed sequence, idempotency
keys, consumer cursors, processed events and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from servicekit.auth import SUBJECT_MAX_LENGTH
from servicekit.logging import REQUEST_ID_MAX_LENGTH

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps.

    PostgreSQL stores ``timestamptz``; SQLite keeps no zone and hands back naive values, which
    would compare wrongly against aware ones (deadlines, retention).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous here: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts_column(**kw: Any) -> Column:
    return Column(UTCDateTime(), nullable=False, default=utcnow, **kw)


class OutboxEvent(SQLModel, table=True):
    """An event written in the same transaction as the change it describes.

    ``position`` is assigned by the sequencer just before commit, in commit order.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_created_at", "created_at"),)

    position: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    subject: str = Field(sa_column=Column(String(64), nullable=False))
    payload: dict = Field(sa_column=Column(JSONType, nullable=False))
    traceparent: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(sa_column=ts_column())


class FeedSequence(SQLModel, table=True):
    """The single sequencer row: its lock orders commits that carry events."""

    __tablename__ = "feed_sequence"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_position: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    pruned_through: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_created_at", "created_at"),)

    caller: str = Field(sa_column=Column(String(128), primary_key=True))
    key: str = Field(sa_column=Column(String(128), primary_key=True))
    method: str = Field(sa_column=Column(String(8), nullable=False))
    path: str = Field(sa_column=Column(String(512), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    response_body: str = Field(sa_column=Column(Text, nullable=False))
    response_headers: dict = Field(sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=ts_column())


class ConsumerCursor(SQLModel, table=True):
    """How far this service has consumed another service's feed."""

    __tablename__ = "consumer_cursors"

    feed: str = Field(sa_column=Column(String(64), primary_key=True))
    position: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    last_event_id: str | None = Field(default=None, sa_column=Column(String(36)))
    updated_at: datetime = Field(sa_column=ts_column())
    resynced_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ProcessedEvent(SQLModel, table=True):
    """Event ids already applied, so a replayed event (after a resync) changes nothing."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_at", "processed_at"),)

    feed: str = Field(sa_column=Column(String(64), primary_key=True))
    event_id: str = Field(sa_column=Column(String(36), primary_key=True))
    processed_at: datetime = Field(sa_column=ts_column())


class AuditRecord(SQLModel, table=True):
    """Append-only: who read or wrote which personal data, when and why."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_resource", "resource_type", "resource_id"),
        Index("ix_audit_log_actor", "actor"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=ts_column())
    actor: str = Field(sa_column=Column(String(SUBJECT_MAX_LENGTH), nullable=False))
    role: str = Field(sa_column=Column(String(32), nullable=False))
    action: str = Field(sa_column=Column(String(32), nullable=False))
    resource_type: str = Field(sa_column=Column(String(64), nullable=False))
    resource_id: str = Field(sa_column=Column(String(64), nullable=False))
    fields: list = Field(sa_column=Column(JSONType, nullable=False))
    purpose: str | None = Field(default=None, sa_column=Column(String(256)))
    area_code: str | None = Field(default=None, sa_column=Column(String(12)))
    trace_id: str | None = Field(default=None, sa_column=Column(String(32)))
    request_id: str | None = Field(default=None, sa_column=Column(String(REQUEST_ID_MAX_LENGTH)))


KIT_TABLES = (
    OutboxEvent.__table__,
    FeedSequence.__table__,
    IdempotencyKey.__table__,
    ConsumerCursor.__table__,
    ProcessedEvent.__table__,
    AuditRecord.__table__,
)
