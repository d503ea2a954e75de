"""API models of the statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RulePrecision(BaseModel):
    code: str = Field(examples=["major_illness"])
    name_zh: str = Field(examples=["重大疾病"])
    alerts: int = Field(description="Alerts this rule raised or joined")
    disposed: int
    confirmed: int = Field(description="Disposed as anything but a false alarm")
    false_alarm: int
    precision: float | None = Field(description="confirmed / disposed; null until one is disposed", examples=[0.92])


class AreaStatistics(BaseModel):
    area_code: str = Field(examples=["330106001000"])
    raised: int
    open: int
    overdue_open: int = Field(description="Open and past their deadline")
    overdue_total: int = Field(description="Ever past their deadline")
    verified: int
    verified_on_time: int
    on_time_rate: float | None = Field(description="verified_on_time / verified")
    median_hours_to_verification: float | None
    dispositions: dict[str, int] = Field(examples=[{"policy_referral": 3, "service_referral": 5, "no_need": 1, "false_alarm": 1}])
    rules: list[RulePrecision]


class Statistics(BaseModel):
    group_by: Literal["township", "district"]
    raised_from: datetime | None
    raised_until: datetime | None
    items: list[AreaStatistics]
    total: AreaStatistics
