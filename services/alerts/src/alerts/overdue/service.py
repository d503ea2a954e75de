"""One sweep: warn open alerts whose deadline is near, mark those past it overdue and escalate
them to their district. Runs on the database's clock, in batches, each in its own transaction;
rows are locked with SKIP LOCKED, so a worker's transition is never blocked for long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, db_now, unit_of_work

from alerts.alert import events, repository
from alerts.alert.tables import Alert
from alerts.profile import Profile

SWEEPER = "system:sweeper"


@dataclass
class SweepResult:
    warned: int = 0
    overdue: int = 0


async def sweep(db: Database, profile: Profile, batch: int = 500) -> SweepResult:
    """Sweep until nothing is due (each batch its own transaction)."""
    total = SweepResult()
    while True:
        async with unit_of_work(db) as session:
            step = await sweep_batch(session, profile, batch)
        total.warned += step.warned
        total.overdue += step.overdue
        if step.warned < batch and step.overdue < batch:
            return total


async def sweep_batch(session: AsyncSession, profile: Profile, batch: int) -> SweepResult:
    result = SweepResult()
    now = await db_now(session)
    for name, policy in profile.deadlines.classes.items():
        if policy.warn_before_hours <= 0:
            continue
        horizon = now + timedelta(hours=policy.warn_before_hours)
        warned = await repository.due_for_warning(session, name, now, horizon, batch)
        for alert in warned:
            alert.warned_at = now
            await _record(session, alert, now, "deadline_warning", {"deadline_at": alert.deadline_at.isoformat()})
        await events.announce_deadline_warning(session, warned, now)
        result.warned += len(warned)
    overdue = await repository.due_for_overdue(session, now, batch)
    for alert in overdue:
        alert.overdue_at = now
        alert.escalated_to = alert.district_code  # 逾期上报: the district now follows it too
        await _record(session, alert, now, "overdue", {"escalated_to": alert.district_code})
    await events.announce_overdue(session, overdue, now)
    result.overdue += len(overdue)
    await session.flush()
    return result


async def _record(session: AsyncSession, alert: Alert, now: datetime, action: str, detail: dict) -> None:
    alert.version += 1
    await repository.add_transitions(session, [{
        "alert_id": alert.id, "at": now, "action": action, "from_status": alert.status, "to_status": alert.status,
        "actor": SWEEPER, "actor_role": "system", "detail": detail,
    }])
