"""API models of the working calendar and deadlines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class ClassDeadline(BaseModel):
    name_zh: str = Field(examples=["重要"])
    levels: list[int]
    days: int = Field(examples=[3])
    warn_before_hours: float


class CalendarOverview(BaseModel):
    timezone: str = Field(examples=["Asia/Shanghai"])
    counting: Literal["calendar_days", "working_days"]
    classes: dict[str, ClassDeadline]
    known_years: list[int] = Field(examples=[[2025, 2026]])
    unknown_years: str = Field(
        description="What happens when a deadline reaches a year the calendar does not know",
        examples=["Working days fall back to calendar days (never a later deadline); the alert says calendar_days_fallback."],
    )


class HolidayPublic(BaseModel):
    name_zh: str = Field(examples=["国庆节"])
    name_en: str = Field(examples=["National Day"])
    first_day: date
    last_day: date


class CalendarYearPublic(BaseModel):
    year: int
    source: str
    holidays: list[HolidayPublic]
    make_up_working_days: list[date] = Field(description="Weekend days worked instead (调休上班)")


class DeadlinePreview(BaseModel):
    raised_at: datetime
    alert_class: Literal["important", "general"] = Field(alias="class")
    deadline_at: datetime
    basis: Literal["calendar_days", "working_days", "calendar_days_fallback"]

    model_config = {"populate_by_name": True, "serialize_by_alias": True}
