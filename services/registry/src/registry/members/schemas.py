"""API models of members (家庭成员): masked by default, unmasked only through reveal."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.isotime import Day

from registry.facts.schemas import FactInput, FactPublic

ResidentIdText = Field(min_length=1, max_length=32, examples=["330106199003070014"],
                       description="Resident ID number (居民身份证号码), 18 characters")
Phone = Field(default=None, min_length=3, max_length=20, pattern=r"^[0-9+\-() ]+$", examples=["13800001234"])


class Relation(StrEnum):
    """Relation to the head of household (与户主关系)."""

    head = "head"
    spouse = "spouse"
    child = "child"
    parent = "parent"
    grandchild = "grandchild"
    grandparent = "grandparent"
    sibling = "sibling"
    child_in_law = "child_in_law"
    other = "other"


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resident_id: str = ResidentIdText
    name: str = Field(min_length=1, max_length=40, examples=["张三明"])
    relation: Relation
    phone: str | None = Phone
    birth_date: Day | None = Field(default=None, description="Optional; must agree with the ID number")
    sex: str | None = Field(default=None, pattern=r"^(male|female)$", description="Optional; must agree with the ID number")
    facts: list[FactInput] = Field(default=[], max_length=64)


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=40)
    phone: str | None = Phone
    relation: Relation | None = None
    facts: list[FactInput] = Field(default=[], max_length=64)


class MemberPublic(BaseModel):
    """A member as officials see it by default: identifying fields masked, age instead of birth date."""

    id: str
    household_id: str
    resident_id_masked: str = Field(examples=["330106********0014"])
    name_masked: str | None = Field(examples=["张*明"])
    phone_masked: str | None = Field(examples=["138****1234"])
    sex: str = Field(examples=["female"])
    age: int = Field(examples=[36])
    relation: Relation
    deceased: bool
    facts: list[FactPublic]
    version: int
    synthetic: bool
    updated_at: datetime


class LookupIn(BaseModel):
    """Find a member by resident ID number: the number travels in the body, never in a URL."""

    model_config = ConfigDict(extra="forbid")

    resident_id: str = ResidentIdText


class RevealPurpose(StrEnum):
    verification = "verification"  # 核实 (phone call or home visit)
    assistance_referral = "assistance_referral"  # 救助转介
    service_delivery = "service_delivery"  # 服务递送
    data_correction = "data_correction"  # 数据更正


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: RevealPurpose
    note: str | None = Field(default=None, max_length=200, description="Why, in a few words (kept in the audit log)")


class RevealedMember(BaseModel):
    id: str
    household_id: str
    resident_id: str = Field(examples=["330106199003070014"])
    name: str | None = Field(examples=["张三明"])
    phone: str | None = Field(examples=["13800001234"])
    birth_date: date
    address: str | None = Field(examples=["北山街道竹和社区 1 幢 101"])
    purpose: RevealPurpose
