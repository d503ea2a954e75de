"""Every query on matches and their steps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from matching.matches.tables import LIVE, Match, MatchingRun, MatchStep
from matching.sql import for_update


async def get(session: AsyncSession, match_id: str, *, lock: bool = False) -> Match | None:
    stmt = select(Match).where(Match.id == match_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def held(session: AsyncSession, keys: Iterable[tuple[str, str]], statuses: tuple[str, ...] = LIVE) -> dict[str, int]:
    """Slots held per offer in the given (offer id, period key) pairs."""
    pairs = list(keys)
    if not pairs:
        return {}
    wanted = dict(pairs)
    rows = await session.execute(
        select(Match.offer_id, Match.period_key, func.count())
        .where(Match.offer_id.in_(list(wanted)), Match.status.in_(statuses))
        .group_by(Match.offer_id, Match.period_key)
    )
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
