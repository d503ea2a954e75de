"""The offers table (帮扶项目)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from matching.columns import id_column, integer, json_list, text, ts


class Offer(SQLModel, table=True):
    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_org", "organisation_id"),
        Index("ix_offers_status", "status"),
        UniqueConstraint("organisation_id", "external_id", name="uq_offers_external"),
        CheckConstraint("capacity > 0", name="ck_offers_capacity"),
    )

    id: str = Field(sa_column=id_column())
    organisation_id: str = Field(sa_column=text(64, ForeignKey("organisations.id")))
    title: str = Field(sa_column=text(100))
    description: str = Field(sa_column=text(1000))
    services: list = Field(sa_column=json_list())
    areas: list = Field(sa_column=json_list())
    site_code: str = Field(sa_column=text(32, ForeignKey("sites.code")))
    capacity: int = Field(sa_column=integer())
    period: str = Field(sa_column=text(8))  # week | month | quarter | year | once
    min_age: int | None = Field(default=None, sa_column=integer(nullable=True))
    max_age: int | None = Field(default=None, sa_column=integer(nullable=True))
    need_types: list = Field(sa_column=json_list())
    household_types: list = Field(sa_column=json_list())
    contact_route: str = Field(sa_column=text(16))
    status: str = Field(sa_column=text(12))  # draft | published | paused | closed
    external_id: str | None = Field(default=None, sa_column=text(128, nullable=True))
    created_by: str = Field(sa_column=text(128))
    version: int = Field(sa_column=integer())
    created_at: datetime = Field(sa_column=ts())
    updated_at: datetime = Field(sa_column=ts())
    published_at: datetime | None = Field(default=None, sa_column=ts(nullable=True))

    @property
    def constrained(self) -> bool:
        return self.min_age is not None or self.max_age is not None or bool(self.need_types or self.household_types)
