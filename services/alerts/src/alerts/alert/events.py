"""What an alert tells the world: events on the alerts feed (docs/events.md, exactly) and
webhook deliveries to the endpoints of its township and district -- both in the transaction of
the change, so a committed change is always announced and a rolled-back one never."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.events import publish

from alerts.alert.tables import Alert
from alerts.subscription.outbox import enqueue, iso_utc


def _base(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "household_id": alert.household_id,
        "area_code": alert.area_code,
        "township_code": alert.township_code,
        "district_code": alert.district_code,
    }


def raised_payload(alert: Alert) -> dict[str, Any]:
    return {
        **_base(alert),
        "class": alert.alert_class,
        "level": alert.level,
        "deadline_at": iso_utc(alert.deadline_at),
        "rules": list(alert.rules),
    }


def disposed_payload(alert: Alert) -> dict[str, Any]:
    detail = alert.disposition_detail or {}
    return {
        **_base(alert),
        "label_masked": alert.label_masked,
        "level": alert.level,
        "disposition": alert.disposition,
        "policies": list(detail.get("policies", [])),
        "services": [{"code": s["code"], "urgency": s["urgency"]} for s in detail.get("services", [])],
        "needs_confirmed": list(detail.get("needs_confirmed", [])),
        "household_type": alert.household_type,
        "member_ages": list(alert.member_ages or []),
        "disposed_at": iso_utc(alert.disposed_at) if alert.disposed_at else None,
    }


async def _notify(session: AsyncSession, alert: Alert, event_type: str, key: str, now: datetime) -> None:
    await enqueue(
        session, event_type=event_type, area_code=alert.area_code, dedupe_key=key,
        data={"alert_id": alert.id}, now=now, alert_id=alert.id,
    )


async def announce_raised(session: AsyncSession, alert: Alert, now: datetime) -> None:
    event_id = publish(session, "alert.raised", alert.id, raised_payload(alert))
    await _notify(session, alert, "alert.raised", event_id, now)


async def announce_overdue(session: AsyncSession, alert: Alert, now: datetime) -> None:
    payload = {**raised_payload(alert), "escalated_to": alert.escalated_to}
    event_id = publish(session, "alert.overdue", alert.id, payload)
    await _notify(session, alert, "alert.overdue", event_id, now)


async def announce_disposed(session: AsyncSession, alert: Alert, now: datetime) -> None:
    event_id = publish(session, "alert.disposed", alert.id, disposed_payload(alert))
    await _notify(session, alert, "alert.disposed", event_id, now)


async def announce_upgraded(session: AsyncSession, alert: Alert, now: datetime) -> None:
    # Webhook only: the feed contract has no such event; the version makes the key unique.
    await _notify(session, alert, "alert.upgraded", f"{alert.id}:upgraded:{alert.version}", now)


async def announce_deadline_warning(session: AsyncSession, alert: Alert, now: datetime) -> None:
    # One warning per deadline: an upgrade that moves the deadline earlier warns again.
    key = f"{alert.id}:warning:{int(alert.deadline_at.timestamp())}"
    await _notify(session, alert, "alert.deadline_warning", key, now)
