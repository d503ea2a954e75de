"""API models of offers (帮扶项目)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.errors import FieldIssue

from matching.periods import Period
from matching.schemas import AreaCodes, Codes, Forbid


class OfferStatus(StrEnum):
    draft = "draft"
    published = "published"
    paused = "paused"
    closed = "closed"


class ContactRoute(StrEnum):
    platform_relay = "platform_relay"  # 平台转接: the family is put through by the platform
    site_visit = "site_visit"  # the family comes to the site
    home_visit = "home_visit"  # the partner visits, arranged through the platform


class Eligibility(Forbid):
    """Who the offer is for; an empty eligibility admits every need of its services."""

    min_age: int | None = Field(default=None, ge=0, le=120, strict=True, description="Some member is at least this old")
    max_age: int | None = Field(default=None, ge=0, le=120, strict=True, description="Some member is at most this old")
    need_types: Codes = Field(default=[], max_length=9, examples=[["care"]])
    household_types: Codes = Field(default=[], max_length=8, examples=[["dibao", "tekun"]])

    @model_validator(mode="after")
    def _range(self) -> Eligibility:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        return self


class OfferFields(Forbid):
    title: str = Field(min_length=1, max_length=100, examples=["北山街道长者助餐"])
    description: str = Field(default="", max_length=1000, examples=["每周一至周五午餐送餐上门"])
    services: Codes = Field(min_length=1, max_length=10, examples=[["meal_assistance"]])
    areas: AreaCodes = Field(min_length=1, max_length=200, description="Areas covered: district, township or village codes",
                             examples=[["330106001000"]])
    site_code: str = Field(min_length=2, max_length=32, examples=["TS330106001"])
    capacity: int = Field(ge=1, le=100_000, strict=True, description="Needs it can take per period", examples=[20])
    period: Period = Period.month
    eligibility: Eligibility = Eligibility()
    contact_route: ContactRoute = ContactRoute.platform_relay


class OfferCreate(OfferFields):
    pass


class OfferUpdate(Forbid):
    """Fields to change; absent fields stay as they are. Closed offers cannot change."""

    title: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    services: Codes | None = Field(default=None, min_length=1, max_length=10)
    areas: AreaCodes | None = Field(default=None, min_length=1, max_length=200)
    site_code: str | None = Field(default=None, min_length=2, max_length=32)
    capacity: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    period: Period | None = None
    eligibility: Eligibility | None = None
    contact_route: ContactRoute | None = None


class OfferPublic(BaseModel):
    id: str
    organisation_id: str
    title: str
    description: str
    services: list[str]
    areas: list[str]
    site_code: str
    capacity: int
    period: Period
    held: int = Field(description="Slots held in the current period by proposed, accepted and delivered matches")
    eligibility: Eligibility
    contact_route: ContactRoute
    status: OfferStatus
    external_id: str | None = Field(default=None, description="The id in the partner's own directory (HSDS import)")
    version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


class HsdsDocument(BaseModel):
    """An Open Referral HSDS 3.x document. HSDS has many fields matching does not use, so unknown
    fields are ignored here (on purpose, unlike other request bodies); the lists are bounded."""

    model_config = ConfigDict(extra="ignore")

    organizations: list[dict[str, Any]] = Field(default=[], max_length=100)
    services: list[dict[str, Any]] = Field(min_length=1, max_length=500)
    locations: list[dict[str, Any]] = Field(default=[], max_length=5000)


class Imported(BaseModel):
    index: int
    id: str = Field(description="The service's id in the document, kept as the offer's external_id")
    offer_id: str


class Rejected(BaseModel):
    index: int
    id: str | None
    errors: list[FieldIssue]


class ImportReport(BaseModel):
    imported: list[Imported] = Field(description="Imported as drafts: check and publish them")
    rejected: list[Rejected]
