"""API models of the statistics."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Durations(BaseModel):
    count: int
    mean: float | None
    median: float | None
    p90: float | None


class ServiceCount(BaseModel):
    service_code: str
    total: int
    delivered: int


class AreaCount(BaseModel):
    area_code: str
    name: str | None
    total: int
    open: int
    matched: int
    accepted: int
    delivered: int


class NeedStatistics(BaseModel):
    total: int
    by_status: dict[str, int]
    by_source: dict[str, int]
    unmatched_by_reason: dict[str, int]
    matching_rate: float | None = Field(description="Needs matched at least once (proposed, accepted or delivered) "
                                                    "over needs not cancelled")
    by_service: list[ServiceCount]
    by_area: list[AreaCount]
    days_to_delivery: Durations = Field(description="From the need's creation to the delivery being recorded")


class PartnerPerformance(BaseModel):
    organisation_id: str
    name: str | None
    proposed: int = Field(description="Every match ever proposed to it")
    accepted: int = Field(description="Accepted, delivered included")
    declined: int
    delivered: int
    revoked: int
    acceptance_rate: float | None = Field(description="accepted / (accepted + declined)")
    delivery_rate: float | None = Field(description="delivered / accepted")
    feedback_count: int
    feedback_mean: float | None


class MonthPoints(BaseModel):
    month: str
    issued: int
    redeemed: int


class PointsStatistics(BaseModel):
    accounts: int
    active_accounts: int
    issued_by_kind: dict[str, int]
    issued: int
    redeemed: int
    outstanding: int = Field(description="Points held by accounts now")
    by_month: list[MonthPoints]
