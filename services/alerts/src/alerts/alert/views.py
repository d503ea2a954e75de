"""Alerts as the API shows them: rule and catalogue names added, times in the city's zone."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.alert.schemas import (
    AlertDetail, AlertSummary, DispositionPublic, EvidencePublic, RuleRef, ServicePick, TransitionPublic,
    TriggerPublic, VerificationPublic,
)
from alerts.alert.tables import Alert, AlertEvidence, AlertTransition, Verification
from alerts.deadline.rules import to_local
from alerts.profile import Profile


def _rule(code: str, profile: Profile) -> RuleRef:
    rule = profile.rule(code)
    # a rule removed from the configuration still shows under its code
    return RuleRef(code=code, name_zh=rule.name_zh if rule else code, name_en=rule.name_en if rule else code)


def summary_fields(alert: Alert, profile: Profile) -> dict:
    z = profile.zone
    return dict(
        id=alert.id, household_id=alert.household_id, label_masked=alert.label_masked, village=alert.area_code,
        township_code=alert.township_code, district_code=alert.district_code, alert_class=alert.alert_class,
        level=alert.level, score=alert.score, status=alert.status,
        rules=[_rule(c, profile) for c in alert.rules], raised_at=to_local(alert.raised_at, z),
        deadline_at=to_local(alert.deadline_at, z), deadline_basis=alert.deadline_basis,
        overdue=alert.overdue_at is not None, escalated_to=alert.escalated_to, accepted_by=alert.accepted_by,
        worker_name=alert.worker_name, version=alert.version,
    )


def summary(alert: Alert, profile: Profile) -> AlertSummary:
    return AlertSummary(**summary_fields(alert, profile))


def detail(alert: Alert, evidence: Sequence[AlertEvidence], verifications: Sequence[Verification], profile: Profile) -> AlertDetail:
    z = profile.zone
    triggers = [TriggerPublic(**{k: t.get(k) for k in ("code", "effective_date", "source")}) for e in evidence for t in e.triggers]
    return AlertDetail(
        **summary_fields(alert, profile),
        triggers=triggers,
        portrait=alert.portrait,
        suggestions=alert.suggestions,
        evidence=[
            EvidencePublic(
                observed_at=to_local(e.observed_at, z), assessment_id=e.assessment_id, level=e.level,
                previous_level=e.previous_level, score=e.score, cause=e.cause, rules=e.rules,
                triggers=[TriggerPublic(**{k: t.get(k) for k in ("code", "effective_date", "source")}) for t in e.triggers],
            )
            for e in evidence
        ],
        verifications=[
            VerificationPublic(
                id=v.id, method=v.method, performed_at=to_local(v.performed_at, z), findings=v.findings,
                needs_confirmed=v.needs_confirmed, recorded_by=v.recorded_by, recorded_at=to_local(v.recorded_at, z),
            )
            for v in verifications
        ],
        disposition=_disposition(alert, profile),
        accepted_at=to_local(alert.accepted_at, z),
        verified_at=to_local(alert.verified_at, z),
        overdue_at=to_local(alert.overdue_at, z),
        warned_at=to_local(alert.warned_at, z),
    )


def _disposition(alert: Alert, profile: Profile) -> DispositionPublic | None:
    if alert.disposition is None or alert.disposed_at is None:
        return None
    d = alert.disposition_detail or {}
    return DispositionPublic(
        kind=alert.disposition,
        policies=[
            RuleRef(code=c, name_zh=p.name_zh if (p := profile.policies.get(c)) else c, name_en=p.name_en if p else c)
            for c in d.get("policies", [])
        ],
        services=[
            ServicePick(code=s["code"], name_zh=(profile.services[s["code"]].name_zh if s["code"] in profile.services else None), urgency=s["urgency"])
            for s in d.get("services", [])
        ],
        needs_confirmed=d.get("needs_confirmed", []),
        reason=d.get("reason"),
        note=d.get("note"),
        disposed_by=alert.disposed_by or "",
        disposed_at=to_local(alert.disposed_at, profile.zone),
    )


def transitions(rows: Sequence[AlertTransition], profile: Profile) -> list[TransitionPublic]:
    return [
        TransitionPublic(
            at=to_local(t.at, profile.zone), action=t.action, from_status=t.from_status, to_status=t.to_status,
            actor=t.actor, actor_role=t.actor_role, detail=t.detail,
        )
        for t in rows
    ]
