"""API models of needs. Nothing here identifies a family: an opaque household id, the village,
a masked label, ages for eligibility."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from matching.schemas import AreaCode, Code, Codes, Forbid, Location

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Masked already, like the registry's `张*明户`: at least one '*', short, no spaces.
MASKED = r"^[^\s*]{0,6}\*[^\s]{0,10}$"


class Urgency(StrEnum):
    urgent = "urgent"
    normal = "normal"
    low = "low"


class NeedSource(StrEnum):
    alert_referral = "alert_referral"  # 预警处置转介
    worker_visit = "worker_visit"  # 走访发现
    citizen = "citizen"  # 浙里办 主动申报 / 微心愿


class NeedStatus(StrEnum):
    open = "open"
    matched = "matched"
    accepted = "accepted"
    delivered = "delivered"
    cancelled = "cancelled"


class UnmatchedReason(StrEnum):
    no_offer_in_area = "no_offer_in_area"
    not_eligible = "not_eligible"
    capacity_exhausted = "capacity_exhausted"


Ages = list[Annotated[int, Field(ge=0, le=120, strict=True)]]  # strict: `true` is not an age


class NeedCreate(Forbid):
    """A need recorded by a village or township worker after a visit."""

    service_code: Code = Field(examples=["meal_assistance"])
    area_code: AreaCode = Field(description="The family's village (村社)", examples=["330106001001"])
    urgency: Urgency = Urgency.normal
    level: int | None = Field(default=None, ge=1, le=3, strict=True, description="Risk level, if assessed (1 is the weakest)")
    household_id: str | None = Field(default=None, pattern=UUID, description="The registry's opaque household id")
    label_masked: str | None = Field(default=None, pattern=MASKED, max_length=16, examples=["张*明户"])
    household_type: Code | None = Field(default=None, examples=["dibao"])
    member_ages: Ages = Field(default=[], max_length=20, examples=[[8, 41, 67]])
    need_types: Codes | None = Field(default=None, max_length=9, description="Default: the service's need types")
    wish: str | None = Field(default=None, min_length=1, max_length=200, description="What the micro-wish (微心愿) is",
                             examples=["一个新书包"])


class CitizenNeedCreate(Forbid):
    """A citizen's own request through the Zheliban app, a micro-wish (微心愿) for example."""

    service_code: Code = Field(examples=["micro_wish"])
    member_ages: Ages = Field(default=[], max_length=20)
    wish: str | None = Field(default=None, min_length=1, max_length=200, examples=["一个新书包"])


class NeedPublic(BaseModel):
    """A need as officials see it."""

    id: str
    source: NeedSource
    service_code: str
    area_code: str
    township_code: str
    district_code: str
    location: Location = Field(description="The village's centroid: families are never located more precisely")
    label_masked: str | None
    household_id: str | None
    alert_id: str | None
    level: int | None
    urgency: Urgency
    priority: int
    household_type: str | None
    member_ages: list[int]
    need_types: list[str]
    wish: str | None
    status: NeedStatus
    unmatched_reason: UnmatchedReason | None = Field(description="Why the last run left it unmatched")
    version: int
    created_at: datetime
    updated_at: datetime


class NeedDeidentified(BaseModel):
    """A need as the partner it is matched to sees it (脱敏): no household id, no ages."""

    id: str
    service_code: str
    area_code: str
    village_name: str | None
    priority: int
    urgency: Urgency
    label_masked: str | None
    wish: str | None


class OwnMatch(BaseModel):
    """What the family sees of the help found: who, when it was delivered, its own feedback."""

    id: str
    status: str
    organisation_id: str
    delivered_on: date | None
    feedback_score: int | None


class NeedOwn(BaseModel):
    """A need as the citizen who asked sees it."""

    id: str
    service_code: str
    wish: str | None
    status: NeedStatus
    match: OwnMatch | None = None
    created_at: datetime
    version: int
