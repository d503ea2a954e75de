"""The city-level reconciliation queue: a person claimed by households in two jurisdictions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from registry.columns import counter, id_column, moment, ref, sealed, text


class ReconciliationCase(SQLModel, table=True):
    """A request to add a person who already belongs to a household the requester cannot see.

    The requested member (name, phone, relation) is kept encrypted until the city decides.
    """

    __tablename__ = "reconciliation_cases"
    __table_args__ = (Index("ix_reconciliation_status", "status", "created_at"),)

    id: str = Field(sa_column=id_column())
    resident_bidx: str = Field(sa_column=text(64))
    resident_masked: str = Field(sa_column=text(18))
    existing_household_id: str = Field(sa_column=ref())
    requested_household_id: str = Field(sa_column=ref())
    request_enc: str = Field(sa_column=sealed())  # the member as requested, JSON, encrypted
    requested_by: str = Field(sa_column=text(128))
    requested_role: str = Field(sa_column=text(32))
    requested_area: str | None = Field(default=None, sa_column=text(12, nullable=True))
    status: str = Field(default="open", sa_column=text(16))  # open | moved | kept
    note: str | None = Field(default=None, sa_column=text(200, nullable=True))
    resolved_by: str | None = Field(default=None, sa_column=text(128, nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=moment(nullable=True))
    version: int = Field(default=1, sa_column=counter(1))
    created_at: datetime = Field(sa_column=moment())
