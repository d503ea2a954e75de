"""API models of alerts, kept apart from the tables. Requests forbid unknown fields and bound
every string and list; times in responses are shown in the city's time zone (Asia/Shanghai)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.isotime import Instant

Status = Literal["raised", "accepted", "verifying", "disposed"]
AlertClassName = Literal["important", "general"]
Method = Literal["phone", "home_visit"]
Urgency = Literal["urgent", "normal", "low"]
CODE = r"^[a-z][a-z0-9_]{1,63}$"
AREA = r"^\d{12}$"
ALERT_ID = "3f1c2b9e-6d4a-4e1b-9a77-0c5d2e8f4a10"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InboxFilters(BaseModel):
    status: list[Status] | None = None
    alert_class: AlertClassName | None = None
    village: str | None = None
    deadline_before: datetime | None = None
    deadline_after: datetime | None = None
    overdue: bool | None = None
    escalated: bool | None = None


class TriggerPublic(BaseModel):
    code: str = Field(examples=["major_illness_diagnosed"])
    effective_date: str | None = Field(default=None, examples=["2026-11-20"])
    source: str | None = Field(default=None, examples=["health"])


class RuleRef(BaseModel):
    code: str = Field(examples=["major_illness"])
    name_zh: str = Field(examples=["重大疾病"])
    name_en: str = Field(examples=["Major illness diagnosed"])


class AlertSummary(BaseModel):
    """One line of a worker's inbox."""

    id: str = Field(examples=[ALERT_ID])
    household_id: str = Field(examples=["9b2e4c1a-0f3d-4a5e-8c7b-1d2e3f4a5b6c"])
    label_masked: str = Field(description="The household's masked label (户)", examples=["张*明户"])
    village: str = Field(description="The village (村社) code", examples=["330106001001"])
    township_code: str = Field(examples=["330106001000"])
    district_code: str = Field(examples=["330106000000"])
    alert_class: AlertClassName = Field(alias="class", description="important (重要) or general (一般)")
    level: int = Field(description="Risk level now (1 is the weakest resilience)", examples=[1])
    score: float | None = Field(default=None, examples=[54.5])
    status: Status
    rules: list[RuleRef]
    raised_at: datetime
    deadline_at: datetime = Field(description="Verify before this instant (local time)")
    deadline_basis: Literal["calendar_days", "working_days", "calendar_days_fallback"]
    overdue: bool
    escalated_to: str | None = Field(default=None, description="The district an overdue alert went up to")
    accepted_by: str | None = None
    worker_name: str | None = None
    version: int

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class EvidencePublic(BaseModel):
    observed_at: datetime
    assessment_id: str
    level: int
    previous_level: int | None
    score: float | None
    cause: str | None
    rules: list[str]
    triggers: list[TriggerPublic]


class VerificationPublic(BaseModel):
    id: str
    method: Method = Field(description="phone (电话询问) or home_visit (入户走访)")
    performed_at: datetime
    findings: str
    needs_confirmed: list[str]
    recorded_by: str
    recorded_at: datetime


class ServicePick(BaseModel):
    code: str
    name_zh: str | None = None
    urgency: Urgency


class DispositionPublic(BaseModel):
    kind: Literal["policy_referral", "service_referral", "no_need", "false_alarm", "household_closed"]
    policies: list[RuleRef] = []
    services: list[ServicePick] = []
    needs_confirmed: list[str] = []
    reason: str | None = None
    note: str | None = None
    disposed_by: str
    disposed_at: datetime


class AlertDetail(AlertSummary):
    """An alert with what a worker needs without opening the registry."""

    triggers: list[TriggerPublic] = Field(description="Triggers of all evidence, newest first")
    portrait: dict[str, Any] = Field(description="The family portrait (家庭画像) from the latest assessment")
    suggestions: dict[str, Any] = Field(description="Assistance suggestions (帮扶建议) from the latest assessment")
    evidence: list[EvidencePublic]
    verifications: list[VerificationPublic]
    disposition: DispositionPublic | None = None
    accepted_at: datetime | None = None
    verified_at: datetime | None = None
    overdue_at: datetime | None = None
    warned_at: datetime | None = None


class TransitionPublic(BaseModel):
    at: datetime
    action: str = Field(examples=["accepted"])
    from_status: Status | None
    to_status: Status
    actor: str
    actor_role: str
    detail: dict[str, Any]


class AlertHistory(BaseModel):
    items: list[TransitionPublic]


# ---- requests ------------------------------------------------------------------------------

class AcceptRequest(_Request):
    """Accept the alert: the caller becomes its named worker."""

    worker_name: str | None = Field(default=None, min_length=1, max_length=64, description="How colleagues know the worker", examples=["王社工"])
    note: str | None = Field(default=None, max_length=500)


class VerificationRequest(_Request):
    """A verification (核实) by phone (电话询问) or a home visit (入户走访)."""

    method: Method
    performed_at: Instant = Field(description="When the call or visit took place (with its offset)", examples=["2026-11-29T10:30:00+08:00"])
    findings: str = Field(min_length=1, max_length=2000, examples=["Visited the family; the treatment costs exceed their savings."])
    needs_confirmed: list[Annotated[str, Field(pattern=CODE)]] = Field(default=[], max_length=20, examples=[["medical", "living"]])


class PolicyReferral(_Request):
    """Eligible: referral to the joint assistance process (救助"一件事"联办)."""

    kind: Literal["policy_referral"]
    policies: list[Annotated[str, Field(pattern=CODE)]] = Field(min_length=1, max_length=16, examples=[["medical_assistance"]])
    note: str | None = Field(default=None, max_length=500)


class ServiceChoice(_Request):
    code: str = Field(pattern=CODE, examples=["home_nursing"])
    urgency: Urgency = "normal"


class ServiceReferral(_Request):
    """Not eligible but in need: referral to the service consortium (助联体)."""

    kind: Literal["service_referral"]
    services: list[ServiceChoice] = Field(min_length=1, max_length=31)
    note: str | None = Field(default=None, max_length=500)


class NoNeed(_Request):
    kind: Literal["no_need"]
    reason: str = Field(min_length=1, max_length=500, examples=["Income restored; the family declined help."])


class FalseAlarm(_Request):
    kind: Literal["false_alarm"]
    reason: str = Field(min_length=1, max_length=500, examples=["The diagnosis record belonged to a member who moved out."])


Disposition = Annotated[PolicyReferral | ServiceReferral | NoNeed | FalseAlarm, Field(discriminator="kind")]


class DispositionRequest(_Request):
    disposition: Disposition


class Snapshot(BaseModel):
    position: int = Field(description="The feed head when the snapshot began; continue after it")
    items: list[dict[str, Any]]
    next_cursor: str | None = None
