"""API models of partner organisations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from matching.schemas import AREA_CODE, Forbid


class OrganisationKind(StrEnum):
    social_organisation = "social_organisation"  # 社会组织
    charity = "charity"  # 慈善组织
    company = "company"  # 爱心企业
    volunteer_team = "volunteer_team"  # 志愿服务队


class OrganisationStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"


class OrganisationApply(Forbid):
    """An application to join the consortium (入驻助联体); the id is the ``org`` claim of your token."""

    name: str = Field(min_length=2, max_length=100, examples=["示例公益服务中心"])
    kind: OrganisationKind
    credit_code: str | None = Field(default=None, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$",
                                    description="统一社会信用代码", examples=["52330106MJ0000000X"])
    area_code: str = Field(pattern=AREA_CODE, description="Where it is registered (区县, 镇街 or 村社)",
                           examples=["330106000000"])
    description: str = Field(min_length=1, max_length=1000, examples=["为辖区困难老人提供助餐、助浴等服务"])
    hotline: str | None = Field(default=None, pattern=r"^[0-9\-]{5,20}$", description="The organisation's public line")


class Decision(Forbid):
    reason: str | None = Field(default=None, max_length=500, examples=["资质齐全"])


class Rejection(Forbid):
    reason: str = Field(min_length=1, max_length=500, examples=["登记证书已过期"])


class OrganisationPublic(BaseModel):
    id: str = Field(examples=["org-demo-0001"])
    name: str
    kind: OrganisationKind
    credit_code: str | None
    area_code: str
    description: str
    hotline: str | None
    status: OrganisationStatus
    applied_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    version: int
