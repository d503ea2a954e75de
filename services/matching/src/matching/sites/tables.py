"""The sites table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Float, Index
from sqlmodel import Field, SQLModel

from matching.columns import integer, json_list, text, ts


class Site(SQLModel, table=True):
    """A site of the consortium: 区县助联体, 镇街服务站 or 村社服务点."""

    __tablename__ = "sites"
    __table_args__ = (Index("ix_sites_area", "area_code"), Index("ix_sites_level", "level"))

    code: str = Field(sa_column=text(32, primary_key=True))
    level: str = Field(sa_column=text(20))
    name: str = Field(sa_column=text(80))
    area_code: str = Field(sa_column=text(12))
    latitude: float = Field(sa_column=Column(Float, nullable=False))
    longitude: float = Field(sa_column=Column(Float, nullable=False))
    hours: list = Field(sa_column=json_list())
    co_located: list = Field(sa_column=json_list())
    serves: list = Field(sa_column=json_list())
    active: bool = Field(sa_column=Column(Boolean, nullable=False))
    source: str = Field(sa_column=text(8))  # profile | admin
    version: int = Field(sa_column=integer())
    created_at: datetime = Field(sa_column=ts())
    updated_at: datetime = Field(sa_column=ts())
