"""API models of scoring models: drafts, their reports, simulations and activations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scoring.rules.validation import ValidationReport

DOCUMENT_HELP = ("The whole model as one JSON object: the keys of config/scoring/model.yaml, portrait.yaml and "
                 "suggestions.yaml together; its JSON Schema is at GET /api/v1/models/schema. Its `version` names "
                 "the draft.")
EXAMPLE_NOTES = "Raise the weight of medical costs after the 2026 review."


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: str = Field(default="", max_length=2000, examples=[EXAMPLE_NOTES])
    document: dict[str, Any] = Field(description=DOCUMENT_HELP, max_length=40)


class ModelUpdate(ModelCreate):
    pass


class ModelSummary(BaseModel):
    version: str = Field(examples=["hz-2026.2"])
    status: Literal["draft", "active", "retired"]
    title_zh: str
    title_en: str
    notes: str
    valid: bool
    errors: int
    warnings: int
    document_hash: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None


class ModelDetail(ModelSummary):
    document: dict[str, Any]
    report: ValidationReport


class LevelCount(BaseModel):
    level: int
    households: int


class Transition(BaseModel):
    from_level: int
    to_level: int
    households: int


class DistrictLevels(BaseModel):
    district_code: str
    before: dict[int, int]
    after: dict[int, int]


class IndicatorMovement(BaseModel):
    code: str
    fired_before: int = Field(description="Households where it fired under the active model")
    fired_after: int = Field(description="Households where it fires under this model")
    points_before: float
    points_after: float
    points_change: float


class Simulation(BaseModel):
    model_version: str
    compared_with: str = Field(description="The active model")
    households: int
    levels_before: list[LevelCount]
    levels_after: list[LevelCount]
    transitions: list[Transition]
    by_district: list[DistrictLevels]
    indicators_moving_most: list[IndicatorMovement]
    mean_score_before: float | None
    mean_score_after: float | None
    seconds: float


class ActivationPublic(BaseModel):
    id: str
    model_version: str
    previous_version: str | None
    status: Literal["running", "succeeded", "failed"]
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    households: int
    assessments_changed: int
    events: int
    levels_before: dict[str, int]
    levels_after: dict[str, int]
    error: str | None
