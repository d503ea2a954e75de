"""Every query on matches and their steps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import column, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from matching.matches.tables import LIVE, SPENT, Match, MatchingRun, MatchStep
from matching.needs.tables import Need
from matching.offers.tables import Offer
from matching.sql import for_update, is_postgres


async def get(session: AsyncSession, match_id: str, *, lock: bool = False) -> Match | None:
    stmt = select(Match).where(Match.id == match_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


# Kept by triggers on matches (PostgreSQL, migration 0007): live and spent matches per offer and period.
OFFER_SLOTS = table("offer_slots", column("offer_id"), column("period_key"), column("live"), column("spent"))
COUNTED = {LIVE: "live", SPENT: "spent"}


async def held(session: AsyncSession, keys: Iterable[tuple[str, str]], statuses: tuple[str, ...] = LIVE) -> dict[str, int]:
    """Slots held per offer in the given (offer id, period key) pairs: on PostgreSQL read from the
    counters the database keeps, on SQLite counted."""
    pairs = list(keys)
    if not pairs:
        return {}
    wanted = dict(pairs)
    if is_postgres(session) and statuses in COUNTED:
        count = OFFER_SLOTS.c[COUNTED[statuses]]
        stmt = select(OFFER_SLOTS.c.offer_id, OFFER_SLOTS.c.period_key, count).where(count > 0)
        offer_id_column = OFFER_SLOTS.c.offer_id
    else:
        stmt = (select(Match.offer_id, Match.period_key, func.count()).where(Match.status.in_(statuses))
                .group_by(Match.offer_id, Match.period_key))
        offer_id_column = Match.offer_id
    if len(wanted) <= 1000:  # a page of offers; the engine asks for all of them at once
        stmt = stmt.where(offer_id_column.in_(list(wanted)))
    rows = await session.execute(stmt)
    out = {offer_id: 0 for offer_id in wanted}
    for offer_id, key, count in rows:
        if wanted.get(offer_id) == key:
            out[offer_id] += count
    return out


async def close_proposals(session: AsyncSession, *, offer_id: str | None = None, need_ids: list[str] | None = None,
                          status: str, reason: str, at: datetime) -> list[str]:
    """Close the proposed matches of an offer or of needs; returns their need ids."""
    stmt = update(Match).where(Match.status == "proposed")
    if offer_id is not None:
        stmt = stmt.where(Match.offer_id == offer_id)
    if need_ids is not None:
        stmt = stmt.where(Match.need_id.in_(need_ids))
    stmt = stmt.values(status=status, closed_at=at, close_reason=reason, version=Match.version + 1)
    rows = await session.execute(stmt.returning(Match.need_id))
    return list(rows.scalars())


async def steps(session: AsyncSession, match_id: str) -> list[MatchStep]:
    stmt = select(MatchStep).where(MatchStep.match_id == match_id).order_by(MatchStep.id)
    return list((await session.execute(stmt)).scalars())


async def run(session: AsyncSession, run_id: str) -> MatchingRun | None:
    return (await session.execute(select(MatchingRun).where(MatchingRun.id == run_id))).scalar_one_or_none()


async def page(session: AsyncSession, *, organisation: str | None, scope: Any, status: str | None,
               offer_id: str | None, after: tuple[datetime, str] | None, limit: int) -> list[tuple[Match, Need]]:
    stmt = (select(Match, Need).join(Need, Need.id == Match.need_id)
            .order_by(Match.proposed_at.desc(), Match.id.desc()).limit(limit + 1))
    if organisation is not None:  # through the partner's offers: matches are indexed by offer
        stmt = stmt.where(Match.offer_id.in_(select(Offer.id).where(Offer.organisation_id == organisation)))
    if scope is not None:
        stmt = stmt.where(scope)
    if status is not None:
        stmt = stmt.where(Match.status == status)
    if offer_id is not None:
        stmt = stmt.where(Match.offer_id == offer_id)
    if after is not None:
        at, last = after
        stmt = stmt.where((Match.proposed_at < at) | ((Match.proposed_at == at) & (Match.id < last)))
    return [(m, n) for m, n in (await session.execute(stmt)).all()]


async def with_need(session: AsyncSession, match_id: str, *, lock: bool = False) -> tuple[Match, Need] | None:
    stmt = select(Match, Need).join(Need, Need.id == Match.need_id).where(Match.id == match_id)
    if lock:
        stmt = for_update(session, stmt)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def count_in_period(session: AsyncSession, offer_id: str, key: str, statuses: tuple[str, ...]) -> int:
    stmt = select(func.count()).select_from(Match).where(
        Match.offer_id == offer_id, Match.period_key == key, Match.status.in_(statuses))
    return int((await session.execute(stmt)).scalar_one())


async def current_of_needs(session: AsyncSession, need_ids: list[str]) -> dict[str, Match]:
    """The live match of each need, if any."""
    if not need_ids:
        return {}
    stmt = select(Match).where(Match.need_id.in_(need_ids), Match.status.in_(LIVE))
    return {m.need_id: m for m in (await session.execute(stmt)).scalars()}


async def runs(session: AsyncSession, after: tuple[datetime, str] | None, limit: int) -> list[MatchingRun]:
    stmt = select(MatchingRun).order_by(MatchingRun.started_at.desc(), MatchingRun.id.desc()).limit(limit + 1)
    if after is not None:
        at, last = after
        stmt = stmt.where((MatchingRun.started_at < at) | ((MatchingRun.started_at == at) & (MatchingRun.id < last)))
    return list((await session.execute(stmt)).scalars())
