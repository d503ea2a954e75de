"""What alerts reads from scoring's ``assessment.updated`` (docs/events.md), validated.

Unknown fields are ignored (a producer may add fields without breaking us); the ones we use
are bounded, so a malformed event is refused whole rather than half-applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servicekit.events import Event
from servicekit.events.outbox import FeedPage

AREA = r"^\d{12}$"


class Trigger(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = Field(max_length=64)
    member_ref: str | None = Field(default=None, max_length=64)
    effective_date: str | None = Field(default=None, max_length=32)
    source: str | None = Field(default=None, max_length=64)


class Indicator(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = Field(max_length=64)


class AssessmentWithdrawn(BaseModel):
    """Scoring's ``assessment.withdrawn``: the household was closed in the registry."""

    model_config = ConfigDict(extra="ignore")

    household_id: str = Field(min_length=1, max_length=36)


class AssessmentUpdated(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assessment_id: str = Field(max_length=36)
    household_id: str = Field(max_length=36)
    household_version: int = 0
    area_code: str = Field(pattern=AREA)
    township_code: str = Field(pattern=AREA)
    district_code: str = Field(pattern=AREA)
    label_masked: str = Field(default="", max_length=64)
    score: float | None = None
    level: int = Field(ge=1, le=9)
    previous_level: int | None = Field(default=None, ge=1, le=9)
    previous_score: float | None = None
    cause: str | None = Field(default=None, max_length=32)
    triggers: list[Trigger] = Field(default=[], max_length=200)
    indicators: list[Indicator] = Field(default=[], max_length=500)
    portrait: dict[str, Any] = {}
    suggestions: dict[str, Any] = {}
    assessed_at: datetime | None = None
    # Carried into alert.disposed (docs/events.md); the ages of the living members, oldest first.
    household_type: str | None = Field(default=None, max_length=32)
    # Generous: an assessment is never refused for the size of the family (matching reads 200).
    member_ages: list[int] | None = Field(default=None, max_length=200)


class SnapshotItem(AssessmentUpdated):
    """One item of scoring's ``/internal/snapshot/assessments`` (the latest per household)."""


class AssessmentEvent(Event):
    """A feed event whose data is read straight from the page's JSON as an assessment; one that
    does not fit stays a plain dict, to be reported and skipped by the handler."""

    data: AssessmentUpdated | dict[str, Any] = Field(union_mode="left_to_right")


class AssessmentPage(FeedPage):
    """A page of scoring's feed, parsed in one pass (a backlog spends its time parsing)."""

    events: list[AssessmentEvent]
