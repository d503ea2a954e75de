"""API models of sites, kept apart from the table."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from matching.profile.sites import OpeningHours, SiteLevel
from matching.schemas import AREA_CODE, CODE, AreaCodes, Codes, Forbid, Location, LocationIn

_HOURS = Field(min_length=1, max_length=14)
_CO = Field(max_length=16, examples=[["charity_supermarket", "party_service_centre"]])



class SiteCreate(Forbid):
    level: SiteLevel
    name: str = Field(min_length=1, max_length=80, examples=["北山街道助联体服务站（二部）"])
    area_code: str = Field(pattern=AREA_CODE, description="The area the site sits in (district, township or village, by level)",
                           examples=["330106001000"])
    location: LocationIn
    hours: list[OpeningHours] = _HOURS
    co_located: Codes = _CO
    serves: AreaCodes | None = Field(default=None, min_length=1, max_length=200,
                                     description="Areas served; default: the site's own area")


class SiteUpdate(Forbid):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=80)
    location: LocationIn | None = None
    hours: list[OpeningHours] | None = Field(default=None, min_length=1, max_length=14)
    co_located: Codes | None = Field(default=None, max_length=16)
    serves: AreaCodes | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None


class SitePublic(BaseModel):
    code: str = Field(examples=["TS330106001"])
    level: SiteLevel
    name: str
    area_code: str
    location: Location
    hours: list[OpeningHours]
    co_located: list[str]
    supermarket: bool = Field(description="Accepts points redemptions (幸福超市)")
    serves: list[str]
    active: bool
    source: str = Field(description="profile: from config/matching/sites.yaml; admin: added through the API")
    version: int
    updated_at: datetime


class SiteFilters(BaseModel):
    level: SiteLevel | None = None
    area: str | None = Field(default=None, pattern=r"^\d{4,12}$")
    co_located: str | None = Field(default=None, pattern=CODE)
    active: bool | None = None
