"""API models of matches, their steps and the engine's runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from servicekit.isotime import Day

from matching.needs.schemas import NeedDeidentified
from matching.schemas import Forbid


class MatchStatus(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    declined = "declined"
    delivered = "delivered"
    revoked = "revoked"
    withdrawn = "withdrawn"  # the engine or the offer took the proposal back


class DeclineReason(StrEnum):
    no_capacity = "no_capacity"
    not_suitable = "not_suitable"
    unreachable = "unreachable"
    other = "other"


class Contact(BaseModel):
    """How the partner reaches the family: through the platform, never directly."""

    route: Literal["platform_relay"] = "platform_relay"
    hotline: str = Field(examples=["12345"])
    reference: str = Field(description="Quote this to the hotline", examples=["MK4Q2Z7XH3PLA"])
    note: str


class Feedback(BaseModel):
    score: int = Field(ge=1, le=5)
    comment: str | None
    at: datetime


class MatchPublic(BaseModel):
    id: str
    status: MatchStatus
    need: NeedDeidentified
    offer_id: str
    organisation_id: str
    site_code: str
    period_key: str = Field(description="The capacity period the match holds a slot of", examples=["2026-11"])
    distance_km: float
    contact: Contact
    proposed_at: datetime
    accepted_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    delivered_on: date | None
    delivery_notes: str | None
    feedback: Feedback | None
    version: int


class Decline(Forbid):
    reason: DeclineReason
    note: str | None = Field(default=None, max_length=500)


class Delivery(Forbid):
    delivered_on: Day = Field(examples=["2026-11-30"])
    notes: str | None = Field(default=None, max_length=500, examples=["已上门送餐，老人身体状况良好"],
                              description="What was done; never names, numbers or addresses")


class FeedbackIn(Forbid):
    score: int = Field(ge=1, le=5, strict=True, description="Satisfaction, 1 (poor) to 5 (very good)")
    comment: str | None = Field(default=None, max_length=500)


class Revocation(Forbid):
    reason: str = Field(min_length=1, max_length=500, examples=["家庭已搬离本村"])


class Step(BaseModel):
    step: str = Field(examples=["accepted"])
    actor_role: str
    at: datetime
    detail: dict


class RunRequest(Forbid):
    mode: Literal["incremental", "full"] = "incremental"


class RunPublic(BaseModel):
    id: str
    mode: str
    triggered_by: str
    started_at: datetime
    finished_at: datetime
    needs_considered: int
    offers_considered: int
    proposed: int
    kept: int
    withdrawn: int
    unmatched: dict[str, int] = Field(description="Needs left unmatched, by reason")
    objective: int = Field(description="Sum over matches of priority x priority_unit - distance units")
    solver_seconds: float
    total_seconds: float
