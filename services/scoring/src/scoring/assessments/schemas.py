"""API models of assessments: what an officer reads to see a household's score and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HOUSEHOLD_ID = "7d3f9c1e-2b4a-4f6e-9a21-5c8b0e6d4a13"


class BandOut(BaseModel):
    level: int = Field(examples=[1])
    from_: float = Field(serialization_alias="from", examples=[0])
    to: float = Field(examples=[60])
    name_zh: str
    name_en: str


class DimensionScore(BaseModel):
    code: str = Field(examples=["health"])
    name_zh: str
    name_en: str
    score: float = Field(examples=[8])
    max: float = Field(examples=[20])
    base: float = Field(examples=[19])


class FiredIndicator(BaseModel):
    code: str = Field(examples=["major_illness"])
    name_zh: str
    name_en: str
    dimension: str
    tier: int = Field(description="Which tier fired (0 is the most severe)")
    points: float = Field(examples=[-8])
    reason_zh: str
    reason_en: str
    facts: dict[str, Any] | None = Field(
        default=None, description="The facts its condition read, as they were assessed (absent for an assessment of "
        "an older version of the household)", examples=[{"major_illness_members": 1}])


class FactNote(BaseModel):
    field: str = Field(examples=["income_trend_12m"])
    treatment: Literal["imputed", "unknown", "invalid", "clamped"]
    detail_zh: str
    detail_en: str


class NotEvaluated(BaseModel):
    indicator: str
    name_en: str
    missing_facts: list[str]


class Diff(BaseModel):
    previous_assessment_id: str | None
    previous_score: float | None
    previous_level: int | None
    level_moved: Literal["first", "unchanged", "stronger", "weaker"]
    score_change: float | None
    indicators_added: list[str]
    indicators_removed: list[str]
    indicators_changed: list[str] = Field(description="Fired before and now, at another tier")


class ReviewOut(BaseModel):
    id: str
    computed_level: int
    reviewed_level: int
    reason: str
    reviewer_role: str
    created_at: datetime
    standing: bool = Field(description="It still sets the household's level (the computed level has not moved since)")


class AssessmentOut(BaseModel):
    assessment_id: str
    household_id: str = Field(examples=[HOUSEHOLD_ID])
    number: int = Field(description="1 for the household's first assessment, then 2, 3...")
    current: bool
    household_version: int
    area_code: str = Field(examples=["330106001001"])
    label_masked: str = Field(examples=["张*明户"])
    model_version: str = Field(examples=["hz-2026.1"])
    assessed_at: datetime
    cause: Literal["household_changed", "model_activated", "review"]
    triggers: list[dict[str, Any]]
    score: float = Field(examples=[54.5])
    level: int = Field(description="Computed from the score (1 is the weakest resilience)", examples=[1])
    effective_level: int = Field(description="The officer's reviewed level while it stands, else the computed one")
    band: BandOut
    dimensions: list[DimensionScore]
    indicators: list[FiredIndicator]
    facts: list[FactNote] = Field(description="Facts that were missing, invalid or out of range, and how they were treated")
    not_evaluated: list[NotEvaluated] = Field(description="Indicators that could not be checked for missing facts")
    input_hash: str
    diff: Diff
    review: ReviewOut | None


class AssessmentSummary(BaseModel):
    household_id: str = Field(examples=[HOUSEHOLD_ID])
    assessment_id: str
    label_masked: str
    area_code: str
    score: float
    level: int
    effective_level: int
    difficulty: str
    five_types: list[str]
    needs: list[str]
    unclaimed_policies: list[str] = Field(description="Policies it qualifies for but does not receive (政策找人)")
    reviewed: bool
    model_version: str
    assessed_at: datetime


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = Field(ge=1, le=9, strict=True, examples=[1])
    reason: str = Field(min_length=1, max_length=500, examples=["Home visit: the spouse's treatment is not covered yet."])


class LeverOut(BaseModel):
    code: str = Field(examples=["medical_costs_covered"])
    label_zh: str
    label_en: str


class FactChange(BaseModel):
    field: str
    before: Any
    after: Any


class HelpOption(BaseModel):
    levers: list[LeverOut]
    score: float = Field(examples=[63])
    level: int = Field(examples=[2])
    changes: list[FactChange]
    indicators_removed: list[str]
    indicators_added: list[str]
    sentence_zh: str
    sentence_en: str = Field(examples=["If the out-of-pocket medical costs were covered, it would score 63 (level 2)."])


class WhatWouldHelp(BaseModel):
    household_id: str
    model_version: str
    score: float
    level: int
    target_level: int | None = Field(description="The next band up; null at the top band")
    target_score: float | None
    lifted: bool = Field(description="Some set of at most `max_levers` levers lifts the household a band")
    options: list[HelpOption] = Field(description="The smallest lever sets that lift it, best score first; when none "
                                      "does, the sets that come closest")
    levers_considered: int
    max_levers: int
    combinations_scored: int
