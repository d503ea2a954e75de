"""The shape of a scoring model document (config/scoring/*.yaml, or the body of a draft).

Structure only: unknown keys, wrong types and out-of-bounds sizes are refused here. Whether the
model makes sense (fields exist, weights add up, bands cover the scale, every indicator can
fire) is checked by ``scoring.rules.validation``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CODE = r"^[a-z][a-z0-9_]{0,47}$"
VERSION = r"^[a-z0-9][a-z0-9._\-]{0,39}$"
Expr = str  # an expression of scoring.rules.expressions; checked by the validator
DIMENSIONS = ("source", "structure", "health", "property", "expenditure", "employment", "other")
FIVE_TYPES = ("basic", "expenditure", "emergency", "development", "care")
DIFFICULTIES = ("especially_difficult", "relatively_difficult", "generally_difficult")


class _Strict(BaseModel):
    # allow_inf_nan: Python's JSON parser reads NaN and Infinity, which JSON has not; no number of a
    # model may be one (a NaN standard would score every household NaN)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


ZhText = Field(min_length=1, max_length=200)
EnText = Field(min_length=1, max_length=300)


class Dimension(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = ZhText
    name_en: str = EnText
    max: float = Field(gt=0, le=1000)
    base: float | None = Field(default=None, ge=0, le=1000, description="Starting score; the maximum when absent")
    rationale: str = Field(default="", max_length=2000)


class Band(_Strict):
    level: int = Field(ge=1, le=9)
    from_: float = Field(alias="from", ge=-1000, le=1000)
    to: float = Field(ge=-1000, le=1000)
    name_zh: str = Field(default="", max_length=200)
    name_en: str = Field(default="", max_length=300)


class Tier(_Strict):
    when: Expr = Field(min_length=1, max_length=1000)
    points: float = Field(ge=-1000, le=1000)
    reason_zh: str = ZhText
    reason_en: str = EnText


class Indicator(_Strict):
    code: str = Field(pattern=CODE)
    dimension: str = Field(pattern=CODE)
    name_zh: str = ZhText
    name_en: str = EnText
    tiers: list[Tier] = Field(min_length=1, max_length=10)

    @model_validator(mode="before")
    @classmethod
    def _single_tier_shorthand(cls, data: Any) -> Any:
        # `when/points/reason_*` at the top level is a one-tier indicator.
        if isinstance(data, dict) and "tiers" not in data and "when" in data:
            data = dict(data)
            tier = {k: data.pop(k) for k in ("when", "points", "reason_zh", "reason_en") if k in data}
            data["tiers"] = [tier]
        return data


class Treatment(_Strict):
    treat_as: float | bool | str
    note_zh: str = Field(default="", max_length=200)
    note_en: str = Field(default="", max_length=300)


class Standards(_Strict):
    default: dict[str, float] = Field(min_length=1, max_length=50)
    districts: dict[str, dict[str, float]] = Field(default_factory=dict, max_length=500)


class Rule(_Strict):
    code: str = Field(pattern=CODE)
    name_zh: str = Field(default="", max_length=200)
    name_en: str = Field(default="", max_length=300)
    when: Expr = Field(min_length=1, max_length=1000)
    reason_zh: str = ZhText
    reason_en: str = EnText


class Portrait(_Strict):
    difficulty: list[Rule] = Field(min_length=1, max_length=10)
    causes: list[Rule] = Field(min_length=1, max_length=40)
    needs: list[Rule] = Field(min_length=1, max_length=40)
    five_types: list[Rule] = Field(min_length=1, max_length=10)


class PolicyRule(_Strict):
    policy: str = Field(pattern=CODE)
    eligible_when: Expr = Field(min_length=1, max_length=1000)
    rule_zh: str = ZhText
    rule_en: str = EnText
    receiving_when: Expr = Field(min_length=1, max_length=1000)
    receiving_basis: Literal["direct", "proxy"] = "direct"


class ServiceRule(_Strict):
    service: str = Field(pattern=CODE)
    when: Expr | None = Field(default=None, max_length=1000)


class Lever(_Strict):
    code: str = Field(pattern=CODE)
    label_zh: str = ZhText
    label_en: str = EnText
    set: dict[str, float | bool | str] = Field(min_length=1, max_length=20)


class ModelDocument(_Strict):
    """A complete scoring model: what POST /api/v1/models takes as `document`."""

    version: str = Field(pattern=VERSION)
    title_zh: str = ZhText
    title_en: str = EnText
    total: float = Field(default=100, gt=0, le=1000)
    dimensions: list[Dimension] = Field(min_length=1, max_length=20)
    bands: list[Band] = Field(min_length=1, max_length=9)
    standards: Standards
    missing: dict[str, Treatment] = Field(default_factory=dict, max_length=200)
    indicators: list[Indicator] = Field(min_length=1, max_length=300)
    portrait: Portrait
    policies: list[PolicyRule] = Field(min_length=1, max_length=100)
    services: dict[str, list[ServiceRule]] = Field(min_length=1, max_length=40)
    levers: list[Lever] = Field(default_factory=list, max_length=40)
