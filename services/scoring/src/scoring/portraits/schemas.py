"""API models of the family portrait (家庭画像) and assistance suggestions (帮扶建议)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Finding(BaseModel):
    """One rule that holds for the household, why, and the facts it rests on."""

    code: str = Field(examples=["illness"])
    name_zh: str
    name_en: str
    reason_zh: str
    reason_en: str
    facts: dict[str, Any] | None = Field(default=None, examples=[{"fired.major_illness": True}])


class PolicySuggestion(BaseModel):
    code: str = Field(examples=["medical_assistance"])
    name_zh: str
    name_en: str
    category: str
    eligible: bool
    receiving: bool
    receiving_basis: Literal["direct", "proxy"] = Field(
        description="proxy: the scoring view has no direct fact on receipt; the rule approximates it")
    finds_person: bool = Field(description="Eligible but not receiving: a policy finding the person (政策找人)")
    rule_zh: str
    rule_en: str
    facts: dict[str, Any] | None


class ServiceSuggestion(BaseModel):
    code: str = Field(examples=["home_nursing"])
    name_zh: str
    name_en: str
    category: str
    need_type: str
    facts: dict[str, Any] | None


class PortraitOut(BaseModel):
    household_id: str
    assessment_id: str
    model_version: str
    assessed_at: datetime
    score: float
    level: int
    effective_level: int
    difficulty: Finding | None
    causes: list[Finding]
    needs: list[Finding]
    five_types: list[Finding]
    policies: list[PolicySuggestion] = Field(description="Every policy of the catalogue, with its eligibility result")
    services: list[ServiceSuggestion]
