"""Points accounts and their append-only ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from matching.columns import BigId, JSONType, id_column, integer, text, ts


class PointsAccount(SQLModel, table=True):
    """The account of an enrolled household (春风用户)."""

    __tablename__ = "points_accounts"
    __table_args__ = (
        Index("ix_points_accounts_area", "area_code"),
        UniqueConstraint("household_id", name="uq_points_accounts_household"),
        UniqueConstraint("holder_digest", name="uq_points_accounts_holder"),
        CheckConstraint("balance >= 0", name="ck_points_accounts_balance"),
    )

    id: str = Field(sa_column=id_column())
    household_id: str = Field(sa_column=text(36))  # opaque, the registry's
    holder_digest: str | None = Field(default=None, sa_column=text(64, nullable=True))  # HMAC of the holder's ID
    area_code: str = Field(sa_column=text(12))
    level: int | None = Field(default=None, sa_column=integer(nullable=True))
    status: str = Field(sa_column=text(12))  # active | suspended
    balance: int = Field(sa_column=integer())
    enrolled_by: str = Field(sa_column=text(128))
    enrolled_at: datetime = Field(sa_column=ts())
    version: int = Field(sa_column=integer())


class PointsEntry(SQLModel, table=True):
    """One line of the ledger; never updated or deleted (database triggers refuse it)."""

    __tablename__ = "points_entries"
    __table_args__ = (
        Index("ix_points_entries_account", "account_id", "id"),
        Index("ix_points_entries_at", "created_at"),
        UniqueConstraint("account_id", "rule_code", "period_key", name="uq_points_entries_period"),
        CheckConstraint("balance_after >= 0", name="ck_points_entries_balance"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(sa_column=text(36, ForeignKey("points_accounts.id")))
    kind: str = Field(sa_column=text(16))  # allowance | reward | officer_credit | redemption
    amount: int = Field(sa_column=integer())  # positive credits, negative redemptions
    balance_after: int = Field(sa_column=integer())
    rule_code: str | None = Field(default=None, sa_column=text(64, nullable=True))
    period_key: str | None = Field(default=None, sa_column=text(10, nullable=True))
    site_code: str | None = Field(default=None, sa_column=text(32, nullable=True))
    items: list | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    note: str | None = Field(default=None, sa_column=text(200, nullable=True))
    actor_role: str = Field(sa_column=text(32))
    actor: str = Field(sa_column=text(128))
    created_at: datetime = Field(sa_column=ts())
