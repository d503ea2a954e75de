"""API models of households (家庭): create, update, status changes, surveys and the views."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.geo import Latitude, Longitude
from servicekit.isotime import Day

from registry.facts.schemas import FactInput, FactPublic
from registry.members.schemas import MemberCreate, MemberPublic

AreaCode = Field(pattern=r"^\d{12}$", examples=["330106001001"], description="The village or community (村社)")


class RegisterStatus(StrEnum):
    dibao = "dibao"  # 低保
    dibian = "dibian"  # 低边
    tekun = "tekun"  # 特困
    off_register = "off_register"  # 非在册


class OffRegisterSource(StrEnum):
    assistance_exit = "assistance_exit"  # 救助退出
    application_refused = "application_refused"  # 新申请未通过
    temporary_assistance = "temporary_assistance"  # 临时救助
    proactive_discovery = "proactive_discovery"  # 主动发现
    other_department = "other_department"  # 其他部门救助


class Channel(StrEnum):
    survey = "survey"  # 走访排摸
    declaration = "declaration"  # 主动申报
    data_sharing = "data_sharing"  # 数据共享
    big_data = "big_data"  # 大数据比对


Location = tuple[Latitude, Longitude]


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area_code: str = AreaCode
    address: str = Field(min_length=1, max_length=200, examples=["竹和社区 1 幢 101"])
    location: Location | None = Field(default=None, description="[latitude, longitude]; kept encrypted")
    register_status: RegisterStatus
    off_register_source: OffRegisterSource | None = Field(default=None, description="Only and always for off_register")
    status_since: Day | None = None
    channel: Channel
    rural_hukou: bool = False
    members: list[MemberCreate] = Field(min_length=1, max_length=30)
    facts: list[FactInput] = Field(default=[], max_length=64)


class HouseholdUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(default=None, min_length=1, max_length=200)
    location: Location | None = None
    rural_hukou: bool | None = None
    facts: list[FactInput] = Field(default=[], max_length=64)


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    register_status: RegisterStatus
    off_register_source: OffRegisterSource | None = None
    effective_date: Day | None = None
    reason: str | None = Field(default=None, max_length=200)


class CloseIn(BaseModel):
    """Closing a household (注销): why, and from when (default today)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, examples=["全户迁出本市"])
    effective_date: Day | None = None


class SurveyIn(BaseModel):
    """A door-to-door visit (走访排摸) and what was found."""

    model_config = ConfigDict(extra="forbid")

    visited_on: Day
    concern: bool = Field(default=False, description="Flag the family for attention (重点关注)")
    household_facts: list[FactInput] = Field(default=[], max_length=64)
    member_facts: dict[str, list[FactInput]] = Field(default={}, max_length=30, description="By member id")
    notes: str | None = Field(default=None, max_length=2000, description="Kept encrypted")


class AreaRef(BaseModel):
    code: str
    name: str
    township_code: str
    township_name: str
    district_code: str
    district_name: str
    centroid: tuple[float, float] = Field(description="The village centroid: the household's location, approximately")


class HouseholdPublic(BaseModel):
    id: str
    area: AreaRef
    register_status: RegisterStatus
    off_register_source: OffRegisterSource | None
    status_since: date
    channel: Channel
    rural_hukou: bool
    label_masked: str = Field(examples=["张*明户"])
    address_masked: str | None = Field(examples=["竹和社区***"])
    members: list[MemberPublic]
    facts: list[FactPublic]
    view: dict[str, Any] | None = Field(description="The scoring view (config/scoring-view.yaml)")
    missing: list[str] | None
    version: int
    synthetic: bool
    closed_on: date | None = Field(default=None, description="Closed (注销) from this date; read-only since")
    closed_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class PendingReview(BaseModel):
    index: int = Field(description="Position of the member in the request")
    reconciliation_id: str


class HouseholdCreated(HouseholdPublic):
    pending_review: list[PendingReview] = Field(
        default=[], description="Members that need a city-level check before they appear"
    )


class HouseholdSummary(BaseModel):
    id: str
    area_code: str
    register_status: RegisterStatus
    off_register_source: OffRegisterSource | None
    channel: Channel
    label_masked: str
    members_total: int | None
    version: int
    updated_at: datetime


class StatusChangePublic(BaseModel):
    from_status: RegisterStatus | None
    from_source: OffRegisterSource | None
    to_status: RegisterStatus | Literal["closed"] = Field(description="`closed` when the household was closed (注销)")
    to_source: OffRegisterSource | None
    effective_date: date
    reason: str | None
    actor: str
    role: str
    at: datetime


class SurveyPublic(BaseModel):
    id: str
    household_id: str
    visited_on: date
    concern: bool
    findings: list[str]
    actor: str
    created_at: datetime


class OwnHouseholdStatus(BaseModel):
    """What a citizen sees of their own household: its status, nothing else."""

    household_id: str
    register_status: RegisterStatus
    status_since: date
    area_name: str
    members_total: int
