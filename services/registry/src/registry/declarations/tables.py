"""Declarations (主动申报): a citizen's own report of difficulty or of a change, via 浙里办."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from registry.columns import counter, id_column, json, moment, ref, sealed, text


class Declaration(SQLModel, table=True):
    __tablename__ = "declarations"
    __table_args__ = (
        Index("ix_declarations_citizen", "citizen_bidx", "created_at"),
        Index("ix_declarations_area", "area_code", postgresql_ops={"area_code": "varchar_pattern_ops"}),
        Index("ix_declarations_status", "status", "created_at"),
    )

    id: str = Field(sa_column=id_column())
    citizen_bidx: str = Field(sa_column=text(64))  # blind index of the declarant's ID number
    resident_enc: str = Field(sa_column=sealed())
    resident_masked: str = Field(sa_column=text(18))
    area_code: str = Field(sa_column=text(12))
    kind: str = Field(sa_column=text(16))  # difficulty | change
    needs: list[str] = Field(default_factory=list, sa_column=json())
    name_enc: str | None = Field(default=None, sa_column=sealed())
    phone_enc: str | None = Field(default=None, sa_column=sealed())
    address_enc: str | None = Field(default=None, sa_column=sealed())
    description_enc: str | None = Field(default=None, sa_column=sealed())
    status: str = Field(default="submitted", sa_column=text(16))  # submitted | accepted | rejected
    rejection_reason: str | None = Field(default=None, sa_column=text(200, nullable=True))
    household_id: str | None = Field(default=None, sa_column=ref(nullable=True))
    reviewed_by: str | None = Field(default=None, sa_column=text(128, nullable=True))
    reviewed_at: datetime | None = Field(default=None, sa_column=moment(nullable=True))
    version: int = Field(default=1, sa_column=counter(1))
    created_at: datetime = Field(sa_column=moment())
