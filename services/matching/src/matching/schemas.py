"""API value types shared by several domains."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from servicekit.geo import Latitude, Longitude

AREA_CODE = r"^\d{12}$"
CODE = r"^[a-z][a-z0-9_]{1,63}$"


class Forbid(BaseModel):
    """Request bodies refuse unknown fields: no mass assignment."""

    model_config = ConfigDict(extra="forbid")


class Location(BaseModel):
    latitude: Latitude = Field(examples=[30.2571])
    longitude: Longitude = Field(examples=[120.1592])


class LocationIn(Forbid, Location):
    pass


class Transition(Forbid):
    """A state change with an optional note (never personal data)."""

    note: str | None = Field(default=None, max_length=500)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("a code appears twice")
    return values


AreaCode = Annotated[str, Field(pattern=AREA_CODE)]
Code = Annotated[str, Field(pattern=CODE)]
Codes = Annotated[list[Code], AfterValidator(_unique)]
AreaCodes = Annotated[list[AreaCode], AfterValidator(_unique)]
