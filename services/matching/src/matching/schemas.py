"""API value types shared by several domains."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

AREA_CODE = r"^\d{12}$"
CODE = r"^[a-z][a-z0-9_]{1,63}$"


class Forbid(BaseModel):
    """Request bodies refuse unknown fields: no mass assignment."""

    model_config = ConfigDict(extra="forbid")


class Location(BaseModel):
    latitude: float = Field(ge=-90, le=90, examples=[30.2571])
    longitude: float = Field(ge=-180, le=180, examples=[120.1592])


class LocationIn(Forbid, Location):
    pass


class Transition(Forbid):
    """A state change with an optional note (never personal data)."""

    note: str | None = Field(default=None, max_length=500)
