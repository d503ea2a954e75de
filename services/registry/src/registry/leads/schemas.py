"""API models of leads (线索): department records about people not yet in the database."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.households.schemas import HouseholdCreated, OffRegisterSource
from registry.members.schemas import Phone


class LeadPublic(BaseModel):
    id: str
    department: str = Field(examples=["health"])
    record_id: str
    item: str = Field(examples=["major_illness_diagnosis"])
    resident_id_masked: str = Field(examples=["330106********0014"])
    value: Any
    effective_date: date
    area_code: str | None = Field(description="Where the department placed the person; null: the city sorts it")
    status: str = Field(examples=["open"], description="open | opened | dismissed")
    household_id: str | None
    resolution: str | None
    version: int
    received_at: datetime


class LeadOpen(BaseModel):
    """Open an off-register household (主动发现) from a lead, in one step."""

    model_config = ConfigDict(extra="forbid")

    area_code: str | None = Field(default=None, pattern=r"^\d{12}$", description="Required when the lead has none")
    address: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=40, description="The person's name, as verified")
    phone: str | None = Phone
    off_register_source: OffRegisterSource = OffRegisterSource.proactive_discovery
    rural_hukou: bool = False


class LeadDismiss(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class LeadOpened(BaseModel):
    lead: LeadPublic
    household: HouseholdCreated
