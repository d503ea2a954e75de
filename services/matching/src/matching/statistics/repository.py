"""Every query of the statistics: grouped counts, scoped to the caller's jurisdiction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.matches.tables import Match
from matching.needs.repository import proposed
from matching.needs.tables import Need
from matching.organisations.tables import Organisation
from matching.points.tables import PointsAccount, PointsEntry
from matching.sql import month_of


async def counts(session: AsyncSession, scope: Any, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).where(scope).group_by(column))
    return {str(k): int(v) for k, v in rows.all() if k is not None}


async def shown_statuses(session: AsyncSession, scope: Any) -> dict[str, int]:
    """Needs by the status users see: open needs with a proposal count as ``matched``."""
    stored = await counts(session, scope, Need.status)
    matched = int((await session.execute(
        select(func.count()).select_from(Need).where(scope, Need.status == "open", proposed()))).scalar_one())
    if matched:
        stored["matched"] = matched
        stored["open"] -= matched
        if not stored["open"]:
            del stored["open"]
    return stored


async def by_service(session: AsyncSession, scope: Any) -> list[tuple[str, int, int]]:
    delivered = func.sum(case((Need.status == "delivered", 1), else_=0))
    stmt = (select(Need.service_code, func.count(), delivered).where(scope)
            .group_by(Need.service_code).order_by(func.count().desc(), Need.service_code))
    return [(s, int(t), int(d or 0)) for s, t, d in (await session.execute(stmt)).all()]


async def by_area(session: AsyncSession, scope: Any, digits: int) -> list[tuple[str, dict[str, int]]]:
    area = func.substr(Need.area_code, 1, digits)
    shown = case(((Need.status == "open") & proposed(), "matched"), else_=Need.status)
    stmt = select(area, shown, func.count()).where(scope).group_by(area, shown).order_by(area)
    out: dict[str, dict[str, int]] = {}
    for code, status, n in (await session.execute(stmt)).all():
        out.setdefault(code, {})[status] = int(n)
    return list(out.items())


async def delivery_times(session: AsyncSession, scope: Any) -> list[tuple[datetime, datetime]]:
    stmt = (select(Need.created_at, Match.delivered_at).join(Match, Match.need_id == Need.id)
            .where(scope, Match.status == "delivered", Match.delivered_at.is_not(None)))
    return [(c, d) for c, d in (await session.execute(stmt)).all()]


async def partners(session: AsyncSession, scope: Any, organisation: str | None) -> list[tuple]:
    def n(*statuses: str) -> Any:
        return func.sum(case((Match.status.in_(statuses), 1), else_=0))

    stmt = (
        select(Match.organisation_id, Organisation.name, func.count(), n("accepted", "delivered"), n("declined"),
               n("delivered"), n("revoked"), func.count(Match.feedback_score), func.avg(Match.feedback_score))
        .join(Need, Need.id == Match.need_id).join(Organisation, Organisation.id == Match.organisation_id, isouter=True)
        .where(scope).group_by(Match.organisation_id, Organisation.name).order_by(Match.organisation_id)
    )
    if organisation is not None:
        stmt = stmt.where(Match.organisation_id == organisation)
    return list((await session.execute(stmt)).all())


async def accounts(session: AsyncSession, scope: Any) -> tuple[int, int, int]:
    active = func.sum(case((PointsAccount.status == "active", 1), else_=0))
    stmt = select(func.count(), active, func.coalesce(func.sum(PointsAccount.balance), 0)).where(scope)
    total, act, balance = (await session.execute(stmt)).one()
    return int(total), int(act or 0), int(balance)


async def points_by_kind(session: AsyncSession, scope: Any) -> dict[str, int]:
    stmt = (select(PointsEntry.kind, func.sum(PointsEntry.amount))
            .join(PointsAccount, PointsAccount.id == PointsEntry.account_id).where(scope).group_by(PointsEntry.kind))
    return {k: int(v) for k, v in (await session.execute(stmt)).all()}


async def points_by_month(session: AsyncSession, scope: Any, timezone: str, since: datetime) -> list[tuple]:
    month = month_of(session, PointsEntry.created_at, timezone)
    issued = func.sum(case((PointsEntry.amount > 0, PointsEntry.amount), else_=0))
    redeemed = -func.sum(case((PointsEntry.amount < 0, PointsEntry.amount), else_=0))
    stmt = (select(month, issued, redeemed).join(PointsAccount, PointsAccount.id == PointsEntry.account_id)
            .where(scope, PointsEntry.created_at >= since).group_by(month).order_by(month))
    return list((await session.execute(stmt)).all())
