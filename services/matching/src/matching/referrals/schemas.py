"""``alert.disposed`` as docs/events.md defines it: the fields matching uses, checked."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from matching.schemas import AREA_CODE, CODE


# As many living members as alerts accepts from scoring: a referral is never refused for its size.
MAX_MEMBERS = 200
OLDEST = 130


def plausible_ages(ages: list[int]) -> list[int]:
    """The ages as the registry counted them, read within 0-130: a member whose death was never
    reported (140 years old by the ID number) must not cost the family its referral."""
    return [min(max(age, 0), OLDEST) for age in ages]


class ReferredService(BaseModel):
    code: str = Field(pattern=CODE)
    urgency: Literal["urgent", "normal", "low"]


class AlertDisposed(BaseModel):
    # The producer may add fields; these are the ones matching relies on.
    model_config = ConfigDict(extra="ignore")

    alert_id: str = Field(min_length=1, max_length=36)
    household_id: str = Field(min_length=1, max_length=36)
    area_code: str = Field(pattern=AREA_CODE)
    label_masked: str | None = Field(default=None, max_length=32)
    level: int | None = Field(default=None, ge=1, le=9)
    disposition: str
    services: list[ReferredService] = Field(default=[], max_length=31)
    needs_confirmed: list[str] = Field(default=[], max_length=20)
    household_type: str | None = Field(default=None, max_length=16)
    member_ages: Annotated[list[int], AfterValidator(plausible_ages)] = Field(default=[], max_length=MAX_MEMBERS)


class SnapshotItem(AlertDisposed):
    status: str
    disposition: str | None = None  # type: ignore[assignment]
