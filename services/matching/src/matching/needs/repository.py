"""Every query on needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller

from matching.matches.tables import Match
from matching.needs.tables import Need
from matching.sql import for_update


async def get(session: AsyncSession, need_id: str, *, lock: bool = False) -> Need | None:
    stmt = select(Need).where(Need.id == need_id)
    return (await session.execute(for_update(session, stmt) if lock else stmt)).scalar_one_or_none()


async def reopen(session: AsyncSession, need_ids: list[str], at: datetime) -> None:
    """Needs whose accepted match was revoked are open again, for the next run."""
    if need_ids:
        await session.execute(
            update(Need).where(Need.id.in_(need_ids), Need.status == "accepted")
            .values(status="open", unmatched_reason=None, updated_at=at, version=Need.version + 1)
        )


async def open_of_households(session: AsyncSession, household_ids: list[str]) -> list[Need]:
    """Needs still open (a proposal waiting or none) of these households, locked."""
    if not household_ids:
        return []
    stmt = select(Need).where(Need.household_id.in_(household_ids), Need.status == "open")
    return list((await session.execute(for_update(session, stmt))).scalars())


def proposed() -> Any:
    """The need has a proposal waiting for the partner (it shows as ``matched``)."""
    return exists().where(Match.need_id == Need.id, Match.status == "proposed")


def with_status(status: str) -> Any:
    """Stored statuses, and the shown one: ``matched`` is open with a proposal."""
    if status == "matched":
        return (Need.status == "open") & proposed()
    if status == "open":
        return (Need.status == "open") & ~proposed()
    return Need.status == status


async def page(session: AsyncSession, *, scope: Any, requester: str | None, status: str | None,
               service: str | None, source: str | None, area: str | None, after: tuple[datetime, str] | None,
               limit: int) -> list[Need]:
    stmt = select(Need).order_by(Need.created_at.desc(), Need.id.desc()).limit(limit + 1)
    if scope is not None:
        stmt = stmt.where(scope)
    if requester is not None:
        stmt = stmt.where(Need.requester_digest == requester)
    if status is not None:
        stmt = stmt.where(with_status(status))
    if service is not None:
        stmt = stmt.where(Need.service_code == service)
    if source is not None:
        stmt = stmt.where(Need.source == source)
    if area is not None:
        stmt = stmt.where(Need.area_code.startswith(area, autoescape=True))
    if after is not None:
        created, last_id = after
        stmt = stmt.where((Need.created_at < created) | ((Need.created_at == created) & (Need.id < last_id)))
    return list((await session.execute(stmt)).scalars())


def in_scope(caller: Caller) -> Any:
    return caller.scope(Need.area_code)


async def existing_referrals(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    wanted = list(pairs)
    if not wanted:
        return set()
    rows = await session.execute(
        select(Need.alert_id, Need.service_code).where(tuple_(Need.alert_id, Need.service_code).in_(wanted))
    )
    return {(a, s) for a, s in rows}


async def add_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Need), rows)
