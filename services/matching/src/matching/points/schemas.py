"""API models of the points programme (春风点数)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from matching.needs.schemas import UUID
from matching.schemas import AreaCode, Code, Forbid


class EntryKind(StrEnum):
    allowance = "allowance"  # monthly, by risk level
    reward = "reward"  # a configured reward
    officer_credit = "officer_credit"
    redemption = "redemption"  # spent at a charity supermarket (幸福超市)


class Enrolment(Forbid):
    """Enrol a household in the charity-supermarket programme (春风用户)."""

    household_id: str = Field(pattern=UUID, description="The registry's opaque household id")
    area_code: AreaCode = Field(description="The household's village", examples=["330106001001"])
    level: int | None = Field(default=None, ge=1, le=3, strict=True, description="Risk level: sets the monthly allowance")
    holder_resident_id: str | None = Field(default=None, min_length=18, max_length=18,
                                           description="The member who uses Zheliban; only a keyed digest is kept")


class Lookup(Forbid):
    resident_id: str = Field(min_length=18, max_length=18)


class AccountPublic(BaseModel):
    id: str
    household_id: str
    area_code: str
    level: int | None
    status: str
    balance: int
    zheliban_linked: bool = Field(description="A holder's ID was given, so the family sees it in Zheliban")
    enrolled_at: datetime
    version: int


class AccountOwn(BaseModel):
    """What a family sees in Zheliban."""

    id: str
    programme: str = Field(examples=["春风点数"])
    balance: int
    status: str


class Credit(Forbid):
    """A reward by its configured rule, or an officer's credit of an amount; not both."""

    rule_code: Code | None = Field(default=None, examples=["volunteer_service"])
    amount: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    note: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> Credit:
        if (self.rule_code is None) == (self.amount is None):
            raise ValueError("give either rule_code or amount")
        return self


class Item(Forbid):
    good: Code = Field(examples=["rice_5kg"])
    quantity: int = Field(ge=1, le=20, strict=True)


class Redemption(Forbid):
    site_code: str = Field(min_length=2, max_length=32, examples=["DC330106"])
    items: list[Item] = Field(min_length=1, max_length=20)


class AllowanceRun(Forbid):
    period: str = Field(pattern=r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])$", examples=["2026-11"])  # year 0 was a 500


class AllowanceResult(BaseModel):
    period: str
    credited: int = Field(description="Accounts credited by this run")
    already: int = Field(description="Accounts that had this month's allowance already")
    points: int


class EntryPublic(BaseModel):
    id: int
    kind: EntryKind
    amount: int
    balance_after: int
    rule_code: str | None
    period_key: str | None
    site_code: str | None
    items: list[dict] | None
    note: str | None
    actor_role: str
    created_at: datetime


class Statement(BaseModel):
    account_id: str
    date_from: date = Field(alias="from", serialization_alias="from")
    date_to: date = Field(alias="to", serialization_alias="to")
    opening_balance: int
    credits: int
    debits: int
    closing_balance: int
    entries: list[EntryPublic]

    model_config = {"populate_by_name": True}


class Good(BaseModel):
    code: str
    name_zh: str
    name_en: str
    points: int
