"""Every query on alerts, their evidence, rules, transitions and verifications."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.db import one_of
from servicekit.pagination import PageParams

from alerts.alert.auth import alert_scope
from alerts.alert.schemas import InboxFilters
from alerts.alert.tables import OPEN_STATUSES, Alert, AlertEvidence, AlertRule, AlertTransition, Verification
from alerts.storage import insert_for, is_postgres


async def get_in_scope(session: AsyncSession, caller: Caller, alert_id: str, *, for_update: bool = False) -> Alert | None:
    stmt = select(Alert).where(Alert.id == alert_id, alert_scope(caller))
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def inbox(session: AsyncSession, caller: Caller, filters: InboxFilters, paging: PageParams) -> Sequence[Alert]:
    stmt = select(Alert).where(alert_scope(caller))
    if filters.status:
        stmt = stmt.where(Alert.status.in_(filters.status))
    if filters.alert_class:
        stmt = stmt.where(Alert.alert_class == filters.alert_class)
    if filters.village:
        stmt = stmt.where(Alert.area_code == filters.village)
    if filters.deadline_before:
        stmt = stmt.where(Alert.deadline_at < filters.deadline_before)
    if filters.deadline_after:
        stmt = stmt.where(Alert.deadline_at >= filters.deadline_after)
    if filters.overdue is not None:
        stmt = stmt.where(Alert.overdue_at.is_not(None) if filters.overdue else Alert.overdue_at.is_(None))
    if filters.escalated is not None:
        stmt = stmt.where(Alert.escalated_to.is_not(None) if filters.escalated else Alert.escalated_to.is_(None))
    if paging.after:
        deadline, last_id = _cursor(paging.after)
        stmt = stmt.where(or_(Alert.deadline_at > deadline, and_(Alert.deadline_at == deadline, Alert.id > last_id)))
    stmt = stmt.order_by(Alert.deadline_at, Alert.id).limit(paging.limit + 1)
    return (await session.execute(stmt)).scalars().all()


def _cursor(values: list[Any]) -> tuple[datetime, str]:
    from servicekit.errors import BadRequest

    try:
        deadline, last_id = values
        return datetime.fromisoformat(deadline), str(last_id)
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not one this API handed out.") from exc


async def open_by_household(session: AsyncSession, household_ids: Iterable[str]) -> dict[str, Alert]:
    ids = list(set(household_ids))
    if not ids:
        return {}
    stmt = select(Alert).where(one_of(session, Alert.household_id, ids), Alert.status.in_(OPEN_STATUSES))
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return {a.household_id: a for a in (await session.execute(stmt)).scalars()}


async def add_alerts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New alerts in one insert."""
    if rows:
        await session.execute(insert_for(session, Alert), rows)


async def add_evidence(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert_for(session, AlertEvidence).on_conflict_do_nothing(), rows)


async def add_rules(session: AsyncSession, rows: list[dict[str, str]]) -> None:
    if rows:
        await session.execute(insert_for(session, AlertRule).on_conflict_do_nothing(), rows)


async def add_transitions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert_for(session, AlertTransition), rows)


async def history(session: AsyncSession, alert_id: str, limit: int = 500) -> Sequence[AlertTransition]:
    stmt = select(AlertTransition).where(AlertTransition.alert_id == alert_id).order_by(AlertTransition.id).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def evidence(session: AsyncSession, alert_id: str, limit: int = 50) -> Sequence[AlertEvidence]:
    stmt = select(AlertEvidence).where(AlertEvidence.alert_id == alert_id).order_by(AlertEvidence.id.desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def verifications(session: AsyncSession, alert_id: str) -> Sequence[Verification]:
    stmt = select(Verification).where(Verification.alert_id == alert_id).order_by(Verification.recorded_at)
    return (await session.execute(stmt)).scalars().all()


async def snapshot_page(session: AsyncSession, after_id: str | None, limit: int) -> Sequence[Alert]:
    stmt = select(Alert)
    if after_id:
        stmt = stmt.where(Alert.id > after_id)
    return (await session.execute(stmt.order_by(Alert.id).limit(limit + 1))).scalars().all()


async def due_for_warning(session: AsyncSession, alert_class: str, now: datetime, horizon: datetime, limit: int) -> Sequence[Alert]:
    """Open alerts of one class whose deadline is within the warning lead and not yet warned."""
    stmt = (
        select(Alert)
        .where(Alert.status.in_(OPEN_STATUSES), Alert.alert_class == alert_class, Alert.warned_at.is_(None),
               Alert.overdue_at.is_(None), Alert.deadline_at > now, Alert.deadline_at <= horizon)
        .order_by(Alert.deadline_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return (await session.execute(stmt)).scalars().all()


async def due_for_overdue(session: AsyncSession, now: datetime, limit: int) -> Sequence[Alert]:
    stmt = (
        select(Alert)
        .where(Alert.status.in_(OPEN_STATUSES), Alert.overdue_at.is_(None), Alert.deadline_at <= now)
        .order_by(Alert.deadline_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return (await session.execute(stmt)).scalars().all()
