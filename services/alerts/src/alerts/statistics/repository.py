"""The queries behind the statistics: the alerts of a period in the caller's jurisdiction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller

from alerts.alert.auth import alert_scope
from alerts.alert.tables import Alert, AlertRule


def _period(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(Alert.raised_at >= since)
    if until is not None:
        stmt = stmt.where(Alert.raised_at < until)
    return stmt


async def alert_facts(session: AsyncSession, caller: Caller, group: str, since: datetime | None, until: datetime | None) -> list[Any]:
    column = getattr(Alert, group)
    stmt = select(
        column.label("area"), Alert.status, Alert.raised_at, Alert.deadline_at, Alert.verified_at,
        Alert.overdue_at, Alert.disposition,
    ).where(alert_scope(caller))
    return list((await session.execute(_period(stmt, since, until))).all())


async def rule_outcomes(session: AsyncSession, caller: Caller, group: str, since: datetime | None, until: datetime | None) -> list[Any]:
    column = getattr(Alert, group)
    stmt = (
        select(column.label("area"), AlertRule.rule_code, Alert.disposition)
        .join(Alert, Alert.id == AlertRule.alert_id)
        .where(alert_scope(caller))
    )
    return list((await session.execute(_period(stmt, since, until))).all())
