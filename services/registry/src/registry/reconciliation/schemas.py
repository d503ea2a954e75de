"""API models of the reconciliation queue (city officers only)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Decision(StrEnum):
    move = "move"  # the person moves to the requesting household
    keep = "keep"  # the person stays where they are; the request is declined


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    note: str | None = Field(default=None, max_length=200)


class CasePublic(BaseModel):
    id: str
    resident_id_masked: str = Field(examples=["330106********0014"])
    existing_household_id: str
    requested_household_id: str
    requested_by: str
    requested_role: str
    requested_area: str | None
    status: str = Field(examples=["open"], description="open | moved | kept")
    note: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    version: int
    created_at: datetime
