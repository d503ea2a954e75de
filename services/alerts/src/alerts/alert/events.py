"""What an alert tells the world: events on the alerts feed (docs/events.md, exactly) and
webhook deliveries to the endpoints of its township and district -- both in the transaction of
the change, so a committed change is always announced and a rolled-back one never. Each takes
the alerts of one transaction at once: their deliveries are one insert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.events import publish

from alerts.alert.tables import Alert
from alerts.subscription.outbox import Notice, enqueue, iso_utc


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


def _notice(alert: Alert, event_type: str, key: str) -> Notice:
    return Notice(event_type=event_type, area_code=alert.area_code, dedupe_key=key, data={"alert_id": alert.id}, alert_id=alert.id)


async def announce_raised(session: AsyncSession, alerts: Sequence[Alert], now: datetime) -> None:
    notices = [_notice(a, "alert.raised", publish(session, "alert.raised", a.id, raised_payload(a))) for a in alerts]
    await enqueue(session, notices, now)


async def announce_overdue(session: AsyncSession, alerts: Sequence[Alert], now: datetime) -> None:
    notices = [
        _notice(a, "alert.overdue", publish(session, "alert.overdue", a.id, {**raised_payload(a), "escalated_to": a.escalated_to}))
        for a in alerts
    ]
    await enqueue(session, notices, now)


async def announce_disposed(session: AsyncSession, alerts: Sequence[Alert], now: datetime) -> None:
    notices = [_notice(a, "alert.disposed", publish(session, "alert.disposed", a.id, disposed_payload(a))) for a in alerts]
    await enqueue(session, notices, now)


async def announce_upgraded(session: AsyncSession, alerts: Sequence[Alert], now: datetime) -> None:
    # Webhook only: the feed contract has no such event; the version makes the key unique.
    await enqueue(session, [_notice(a, "alert.upgraded", f"{a.id}:upgraded:{a.version}") for a in alerts], now)


async def announce_deadline_warning(session: AsyncSession, alerts: Sequence[Alert], now: datetime) -> None:
    # One warning per deadline: an upgrade that moves the deadline earlier warns again.
    notices = [_notice(a, "alert.deadline_warning", f"{a.id}:warning:{int(a.deadline_at.timestamp())}") for a in alerts]
    await enqueue(session, notices, now)
