"""API models of declarations (主动申报): what a citizen sends, sees, and what a worker decides."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from registry.members.schemas import Phone


class DeclarationKind(StrEnum):
    difficulty = "difficulty"  # 困难申报
    change = "change"  # 情况变化报告


class DeclarationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DeclarationKind
    area_code: str | None = Field(default=None, pattern=r"^\d{12}$", description="Village of residence; default: the token's")
    name: str = Field(min_length=1, max_length=40, examples=["张三明"])
    phone: str | None = Phone
    address: str | None = Field(default=None, max_length=200)
    needs: list[str] = Field(default=[], max_length=9, description="Need types of the service catalogue")
    description: str = Field(min_length=1, max_length=2000, examples=["家中老人住院，收入中断"])


class DeclarationPublic(BaseModel):
    """A declaration as its citizen or the reviewing worker sees it."""

    id: str
    kind: DeclarationKind
    area_code: str
    needs: list[str]
    status: str = Field(examples=["submitted"], description="submitted | accepted | rejected")
    rejection_reason: str | None = Field(description="Shown to the citizen when rejected")
    description: str | None
    name_masked: str | None
    phone_masked: str | None
    resident_id_masked: str
    household_id: str | None
    version: int
    created_at: datetime
    reviewed_at: datetime | None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, examples=["收入高于低边标准，建议申请临时救助"])
