"""API models of department feeds: the catalogue, one record, batch reports, feed health."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.isotime import Day

from registry.facts.schemas import FactValue


class ItemPublic(BaseModel):
    code: str = Field(examples=["major_illness_diagnosis"])
    name_zh: str = Field(examples=["重大疾病诊断"])
    subject: str = Field(examples=["person"])
    type: str = Field(examples=["code"])
    unit: str | None
    fact: str | None = Field(examples=["major_illnesses"],
                             description="The fact the item updates; none for `birth` (the newborn becomes a member)")
    triggers: list[str]


class DepartmentPublic(BaseModel):
    code: str = Field(examples=["health"])
    name_zh: str = Field(examples=["卫生健康委员会"])
    name_en: str
    every_hours: int
    items: list[ItemPublic]


class Catalogue(BaseModel):
    departments: list[DepartmentPublic]
    code_lists: dict[str, list[str]] = Field(description="Codes accepted by items of type `code`")


class FeedRecordIn(BaseModel):
    """One department record; batches carry the same fields per line."""

    model_config = ConfigDict(extra="forbid")

    record_id: str = Field(min_length=1, max_length=64, examples=["HLTH-2026-000001"],
                           description="The department's own id: re-sending it changes nothing")
    item: str = Field(min_length=1, max_length=48, examples=["major_illness_diagnosis"])
    resident_id: str = Field(min_length=1, max_length=32, examples=["330106199003070014"])
    value: FactValue = Field(default=None, examples=["cancer"])
    effective_date: Day
    area_code: str | None = Field(default=None, pattern=r"^\d{12}$", description="Where a lead should go, if known")
    parent_resident_id: str | None = Field(default=None, min_length=1, max_length=32, examples=["330106199003070014"],
                                           description="Birth items only: a parent's ID number")
    name: str | None = Field(default=None, min_length=1, max_length=40, examples=["张小明"],
                             description="Birth items only: the newborn's name, if given yet")


class RecordOutcome(BaseModel):
    record_id: str
    outcome: str = Field(examples=["applied"], description="applied | unchanged | lead")
    household_id: str | None = None


class RejectedLine(BaseModel):
    line: int
    record_id: str | None
    reason_code: str = Field(examples=["resident_id.check_character"])
    reason: str


# How a delivery came: a batch streamed as JSON Lines or CSV, or a record sent on its own.
BatchFormat = Literal["jsonl", "csv", "single"]


class BatchReport(BaseModel):
    id: str
    department: str
    format: BatchFormat = Field(examples=["jsonl"])
    status: str = Field(examples=["completed"], description="processing | completed | failed")
    submitted_by: str
    received_at: datetime
    finished_at: datetime | None
    lines: int
    applied: int
    unchanged: int
    rejected: int
    leads: int
    households_changed: int


class FeedHealth(BaseModel):
    department: str
    name_zh: str
    every_hours: int
    last_delivery: datetime | None
    late: bool = Field(description="Nothing delivered within the schedule")
    deliveries_30d: int
    records_30d: int
    rejection_rate_30d: float | None
    leads_30d: int
