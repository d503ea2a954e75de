"""API models of areas (区县 / 镇街 / 村社): read-only views of the city profile."""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry.profile.areas import Level


class AreaPublic(BaseModel):
    code: str = Field(examples=["330106001001"])
    name: str = Field(examples=["竹和社区"])
    level: Level
    kind: str = Field(examples=["community"], description="district | county | county_city; street | town | township; community | village")
    centroid: tuple[float, float] = Field(examples=[[30.2571, 120.1592]], description="[latitude, longitude]")
    parent_code: str | None = Field(examples=["330106001000"])
    children_count: int


class AreaDetail(AreaPublic):
    parents: list[AreaPublic] = Field(description="The parent chain from the city down")
    children: list[AreaPublic]


class AreaNode(BaseModel):
    code: str
    name: str
    level: Level
    kind: str
    centroid: tuple[float, float]
    children: list[AreaNode] = []


class AreaCounts(BaseModel):
    district: int = Field(examples=[14])
    township: int = Field(examples=[192])
    village: int = Field(examples=[3222])
