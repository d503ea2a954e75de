"""API models of the catalogue."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServicePublic(BaseModel):
    code: str = Field(examples=["meal_assistance"])
    name_zh: str = Field(examples=["助餐服务"])
    name_en: str = Field(examples=["Meal assistance"])
    category: str = Field(examples=["living_care"])
    need_types: list[str] = Field(examples=[["living", "care"]])


class CategoryPublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    services: list[ServicePublic]


class CataloguePublic(BaseModel):
    need_types: dict[str, str] = Field(description="Need types (需求类型) and their names")
    categories: list[CategoryPublic]
