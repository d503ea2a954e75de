"""Tables of webhook subscriptions: endpoints, their signing secrets, and the delivery outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from alerts.storage import JSONType, UTCDateTime


class Subscription(SQLModel, table=True):
    """A township's or district's webhook endpoint for the alerts in its jurisdiction."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_status", "status", "scope_prefix"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    area_code: str = Field(sa_column=Column(String(12), nullable=False))
    scope_prefix: str = Field(sa_column=Column(String(12), nullable=False))
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(200)))
    event_types: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(String(64)))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_by: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))


class SubscriptionSecret(SQLModel, table=True):
    """A signing secret, encrypted at rest; an old one signs alongside the new until it expires."""

    __tablename__ = "subscription_secrets"
    __table_args__ = (Index("ix_subscription_secrets_sub", "subscription_id", "created_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    subscription_id: str = Field(sa_column=Column(String(36), ForeignKey("subscriptions.id"), nullable=False))
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class WebhookDelivery(SQLModel, table=True):
    """The delivery outbox: written in the transaction of the change, sent after commit, retried."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "dedupe_key", name="uq_webhook_deliveries_once"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_sub", "subscription_id", "status", "next_attempt_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    subscription_id: str = Field(sa_column=Column(String(36), ForeignKey("subscriptions.id"), nullable=False))
    dedupe_key: str = Field(sa_column=Column(String(80), nullable=False))
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    alert_id: str | None = Field(default=None, sa_column=Column(String(36)))
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_status: int | None = Field(default=None, sa_column=Column(Integer))
    last_error: str | None = Field(default=None, sa_column=Column(String(128)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
