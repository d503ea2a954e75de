"""API models of webhook subscriptions. Secrets never appear in ordinary responses (which the
idempotency store keeps); they are read from their own endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["alert.raised", "alert.upgraded", "alert.deadline_warning", "alert.overdue", "alert.disposed"]
ALL_TYPES: list[EventType] = ["alert.raised", "alert.upgraded", "alert.deadline_warning", "alert.overdue", "alert.disposed"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionCreate(_Request):
    url: str = Field(min_length=8, max_length=2048, examples=["https://hooks.example.org/zhongfu/alerts"])
    description: str | None = Field(default=None, max_length=200, examples=["Township duty desk"])
    event_types: list[EventType] = Field(default_factory=lambda: list(ALL_TYPES), min_length=1, max_length=5)


class SubscriptionUpdate(_Request):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=200)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=5)
    enabled: bool | None = Field(default=None, description="Re-enable an endpoint that was disabled (e.g. after a 410)")


class SecretRotation(_Request):
    overlap_hours: int = Field(default=24, ge=0, le=168, strict=True, description="How long the old secret keeps signing")


class SecretInfo(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime | None = Field(description="When it stops signing; null for the current secret")


class SigningSecret(SecretInfo):
    secret: str = Field(description="whsec_... as Standard Webhooks libraries take it", examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])


class SigningSecrets(BaseModel):
    items: list[SigningSecret]


class SubscriptionPublic(BaseModel):
    id: str
    area_code: str = Field(description="The township or district whose alerts are sent", examples=["330106001000"])
    url: str
    description: str | None
    event_types: list[str]
    status: Literal["active", "disabled"]
    disabled_reason: str | None = Field(default=None, examples=["gone"])
    disabled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    secrets: list[SecretInfo]


class DeliveryPublic(BaseModel):
    id: str
    event_type: str
    alert_id: str | None
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class PingResult(BaseModel):
    delivered: bool
    status_code: int | None
