"""Raising alerts from assessments: one open case per household, new triggers join it.

A batch of assessments is applied in one transaction with one read of the open alerts (and, for
a caller that has not deduplicated, of the evidence already applied) and bulk writes: the backlog
of a full rescore goes through quickly. New alerts are plain records, written in one insert --
building ORM objects for thousands of them cost more than everything else in a batch.
A new alert is important (重要) or general (一般) by the household's level; when a joining
assessment makes the class more severe, the deadline moves earlier -- never later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import db_now

from alerts.alert import events, repository as alerts_repo
from alerts.alert.tables import Alert
from alerts.deadline.rules import Deadline, compute_deadline
from alerts.profile import CLASS_SEVERITY, Profile
from alerts.raising import repository
from alerts.raising.rules import fired_rules
from alerts.raising.schemas import AssessmentUpdated

SYSTEM_ACTOR = "system:rules"
CLOSED = "household_closed"  # the disposition of an alert whose household the registry closed


@dataclass(frozen=True)
class Observation:
    """One assessment to apply: from a feed event, or from a snapshot during a resync."""

    event_id: str
    assessment: AssessmentUpdated
    previous_level: int | None = None  # overrides the event's own (resync)


@dataclass(slots=True)
class NewAlert:
    """An alert raised in this batch: the columns of a new ``alerts`` row, nothing more."""

    id: str
    household_id: str
    raised_by_event: str
    assessment_id: str
    area_code: str
    township_code: str
    district_code: str
    label_masked: str
    alert_class: str
    level: int
    score: float | None
    rules: list[str]
    portrait: dict[str, Any]
    suggestions: dict[str, Any]
    household_type: str | None
    member_ages: list[int] | None
    raised_at: datetime
    deadline_at: datetime
    deadline_basis: str
    status: str = "raised"
    warned_at: datetime | None = None
    version: int = 1

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RaiseResult:
    raised: list[str] = field(default_factory=list)
    joined: int = 0
    upgraded: int = 0
    skipped: int = 0


class _Deadlines:
    """Deadlines for this batch: every alert of one batch is raised at the same database time."""

    def __init__(self, profile: Profile, now: datetime) -> None:
        self.profile, self.now, self._cache = profile, now, {}

    def __call__(self, alert_class: str) -> Deadline:
        if alert_class not in self._cache:
            d = self.profile.deadlines
            self._cache[alert_class] = compute_deadline(
                self.now, d.classes[alert_class].days, counting=d.counting,  # type: ignore[index]
                calendar=self.profile.calendar, zone=self.profile.zone,
            )
        return self._cache[alert_class]


async def apply(
    session: AsyncSession, profile: Profile, observations: list[Observation], *, deduplicated: bool = False,
) -> RaiseResult:
    """Apply assessments. ``deduplicated``: the caller guarantees no event id was applied before
    (the feed consumer records every id it applies in the same transaction), so the evidence
    need not be asked; anyone else gets the check."""
    result = RaiseResult()
    todo = observations
    if not deduplicated:
        done = await repository.applied_event_ids(session, [o.event_id for o in observations])
        todo = [o for o in observations if o.event_id not in done]
        result.skipped = len(observations) - len(todo)
    if not todo:
        return result
    now = await db_now(session)
    deadline = _Deadlines(profile, now)
    open_alerts: dict[str, Alert | NewAlert] = dict(
        await alerts_repo.open_by_household(session, (o.assessment.household_id for o in todo))
    )
    new: list[NewAlert] = []
    changed: dict[str, Alert] = {}
    upgraded: dict[str, Alert | NewAlert] = {}
    evidence, rule_rows, transitions, states = [], [], [], {}

    for obs in todo:
        a = obs.assessment
        before = a.previous_level if obs.previous_level is None else obs.previous_level
        fired = fired_rules(a, profile.rules, previous_level=before)
        states[a.household_id] = _state(a, now)
        alert = open_alerts.get(a.household_id)
        if alert is None:
            if not fired:
                continue
            alert = _new_alert(obs.event_id, a, fired, profile, deadline, now)
            open_alerts[a.household_id] = alert
            new.append(alert)
            transitions.append(_transition(alert, now, "raised", None, {"rules": fired}))
        else:
            _refresh(alert, a)
            if fired:
                alert.rules = list(dict.fromkeys([*alert.rules, *fired]))
                transitions.append(_transition(alert, now, "evidence_joined", alert.status, {"rules": fired}))
                result.joined += 1
            if _upgrade(alert, profile.class_for_level(a.level), deadline):
                transitions.append(_transition(alert, now, "upgraded", alert.status, {"class": alert.alert_class}))
                upgraded[alert.id] = alert
            if isinstance(alert, Alert):
                changed[alert.id] = alert
        if fired:
            evidence.append(_evidence(alert.id, obs.event_id, a, before, fired, now))
            rule_rows.extend({"alert_id": alert.id, "rule_code": code} for code in fired)

    await alerts_repo.add_alerts(session, [a.row() for a in new])
    for alert in changed.values():
        alert.version += 1
    await session.flush()
    await alerts_repo.add_evidence(session, evidence)
    await alerts_repo.add_rules(session, rule_rows)
    await alerts_repo.add_transitions(session, transitions)
    await repository.remember_assessments(session, list(states.values()))
    await events.announce_raised(session, new, now)
    await events.announce_upgraded(session, list(upgraded.values()), now)
    result.raised = [a.id for a in new]
    result.upgraded = len(upgraded)
    return result


async def withdraw(session: AsyncSession, household_ids: list[str]) -> list[str]:
    """Households the registry closed (scoring's ``assessment.withdrawn``): the open alert of each
    is disposed of by the system as ``household_closed`` -- no deadline, overdue or escalation
    for a household that is no more -- and announced as ``alert.disposed``. Returns their ids."""
    open_alerts = list((await alerts_repo.open_by_household(session, household_ids)).values())
    if not open_alerts:
        return []
    now = await db_now(session)
    transitions = []
    for alert in open_alerts:
        before, alert.status = alert.status, "disposed"
        alert.disposition = CLOSED
        alert.disposition_detail = {"kind": CLOSED, "reason": "The registry closed the household (注销)."}
        alert.disposed_by, alert.disposed_at = SYSTEM_ACTOR, now
        alert.version += 1
        transitions.append(_transition(alert, now, "disposed", before, {"kind": CLOSED}))
    await session.flush()
    await alerts_repo.add_transitions(session, transitions)
    await events.announce_disposed(session, open_alerts, now)
    return [a.id for a in open_alerts]


def _new_alert(event_id: str, a: AssessmentUpdated, fired: list[str], profile: Profile, deadline: _Deadlines, now: datetime) -> NewAlert:
    alert_class = profile.class_for_level(a.level)
    due = deadline(alert_class)
    return NewAlert(
        id=str(uuid.uuid4()), household_id=a.household_id, raised_by_event=event_id,
        assessment_id=a.assessment_id, area_code=a.area_code, township_code=a.township_code,
        district_code=a.district_code, label_masked=a.label_masked, alert_class=alert_class,
        level=a.level, score=a.score, rules=list(fired), portrait=a.portrait, suggestions=a.suggestions,
        household_type=a.household_type, member_ages=a.member_ages, raised_at=now,
        deadline_at=due.at, deadline_basis=due.basis,
    )


def _refresh(alert: Alert | NewAlert, a: AssessmentUpdated) -> None:
    """The latest assessment is what the worker sees; the class and deadline only get stricter."""
    alert.assessment_id, alert.level, alert.score = a.assessment_id, a.level, a.score
    alert.portrait, alert.suggestions = a.portrait, a.suggestions
    if a.label_masked:
        alert.label_masked = a.label_masked
    if a.household_type is not None:
        alert.household_type = a.household_type
    if a.member_ages is not None:
        alert.member_ages = a.member_ages


def _upgrade(alert: Alert | NewAlert, new_class: str, deadline: _Deadlines) -> bool:
    if CLASS_SEVERITY[new_class] <= CLASS_SEVERITY[alert.alert_class]:
        return False
    alert.alert_class = new_class
    due = deadline(new_class)
    if due.at < alert.deadline_at:
        alert.deadline_at, alert.deadline_basis = due.at, due.basis
        alert.warned_at = None  # the warning of the old deadline no longer holds
    return True


def _evidence(alert_id: str, event_id: str, a: AssessmentUpdated, before: int | None, fired: list[str], now: datetime) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "event_id": event_id, "assessment_id": a.assessment_id, "level": a.level,
        "previous_level": before, "score": a.score, "cause": a.cause, "rules": fired,
        "triggers": [t.model_dump(exclude_none=True) for t in a.triggers], "observed_at": now,
    }


def _transition(alert: Alert | NewAlert, now: datetime, action: str, from_status: str | None, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": alert.id, "at": now, "action": action, "from_status": from_status,
        "to_status": alert.status, "actor": SYSTEM_ACTOR, "actor_role": "system", "detail": detail,
    }


def _state(a: AssessmentUpdated, now: datetime) -> dict[str, Any]:
    return {
        "household_id": a.household_id, "assessment_id": a.assessment_id,
        "household_version": a.household_version, "level": a.level, "score": a.score,
        "area_code": a.area_code, "updated_at": now,
    }
